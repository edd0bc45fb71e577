"""The search form's model: its state, reference lookups, live count and cost, and loading.

It knows nothing of ipywidgets (the view, :mod:`scoutframe.widgets.view`, only binds
controls to it), so it is driven and tested from plain Python. Every operation that can fail
reports the failure in :attr:`SearchModel.message` instead of raising: a widget callback's
exception would otherwise vanish into the browser console.

Only free calls are made while the user edits: the search's ``totalCount``, a dry-run
:class:`~scoutframe.models.ReadPlan` and the reference endpoints. Credits are spent only by
:meth:`SearchModel.load` with ``method="export"``, within ``max_credits``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from .. import checks
from ..api.filters import BOOLEAN_FIELDS, Filters
from ..errors import ArgumentError, FilterError, ScoutError
from ..read import read_spherescout
from . import codegen
from ._debounce import Debouncer
from .state import LEVEL_WORDS, FormState, Place, short_message

if TYPE_CHECKING:
    from ..api.client import Client
    from ..models import ReadPlan

__all__ = ["LOAD_METHODS", "SearchModel"]

#: What the result area of the form holds.
Showing = Literal["nothing", "preview", "frame"]

logger = logging.getLogger("scoutframe.widgets")

LoadMethod = Literal["preview", "pages", "export"]
#: What :meth:`SearchModel.load` can do: the buttons of the form.
LOAD_METHODS: tuple[LoadMethod, ...] = ("preview", "pages", "export")
# Where errors are kept, in the order the message lists them.
_SLOTS = ("input", "reference", "categories", "locations", "figures", "load")
_TASK_ORDER = ("categories", "locations", "figures")


class SearchModel:
    """State and logic of the search form, without any widget.

    Parameters
    ----------
    client
        The client to use; default ``scoutframe.Client()`` (from the environment).
    debounce
        Seconds of quiet before the count, the cost and the suggestions are looked up again
        (``0``: at once, in the caller's thread). :meth:`settle` runs pending lookups now.
    progress
        Progress bars for loads (``read_spherescout``'s ``progress``).
    category_limit
        How many category suggestions to ask for.

    Attributes
    ----------
    count : int or None
        Contacts matching the filters (the search's ``totalCount``, free).
    cost : int or None
        Credits an export of them would spend (from a dry-run plan, free).
    balance : int or None
        The account's credits.
    plan : ReadPlan or None
        The latest plan: a dry run of an export while editing; the load's own after a load.
    df : pandas.DataFrame or None
        The latest loaded frame (by pages or export).
    preview : pandas.DataFrame or None
        The latest free preview (at most 10 contacts, emails masked).
    status : str
        What the last successful action did, in words (a failed one leaves it as it was and
        says why in :attr:`message`).
    showing : {"nothing", "preview", "frame"}
        What the result area holds: nothing yet, :attr:`preview` or :attr:`df` (views decide
        by this, never by the words of :attr:`status`).
    category_suggestions : tuple of str
        Category names matching the typed text (``/api/categories?q=``).
    location_matches : tuple of Place
        Places matching the location search text.
    """

    def __init__(
        self,
        client: Client | None = None,
        *,
        debounce: float = 0.3,
        progress: bool | None = None,
        category_limit: int = 20,
    ) -> None:
        self._own_client = client is None
        if client is None:
            from ..api.client import Client

            client = Client()
        self.client: Client = client
        self.progress = progress
        self.category_limit = checks.whole_number("category_limit", category_limit, minimum=1)
        self._lock = threading.RLock()
        self._state = FormState()
        self._version = 0
        self._errors: dict[str, str] = {}
        self._listeners: list[Callable[[frozenset[str]], None]] = []
        self._countries: tuple[tuple[str, str], ...] | None = None
        self._last_method: str | None = None  # of the last load by pages or export
        self.count: int | None = None
        self.cost: int | None = None
        self.balance: int | None = None
        self.plan: ReadPlan | None = None
        self.df: pd.DataFrame | None = None
        self.preview: pd.DataFrame | None = None
        self.status = "Pick a country, a category or a location."
        self.showing: Showing = "nothing"
        self.category_suggestions: tuple[str, ...] = ()
        self.location_matches: tuple[Place, ...] = ()
        self._debouncer = Debouncer(self._run_task, debounce)

    def __repr__(self) -> str:
        return f"<SearchModel {self.filters!r}: count={self.count}, cost={self.cost}>"

    # -- reading the state -------------------------------------------------------------------
    @property
    def state(self) -> FormState:
        """The current choices."""
        return self._state

    @property
    def filters(self) -> Filters:
        """The current filters (a :class:`~scoutframe.api.filters.Filters`)."""
        return self._state.filters()

    @property
    def message(self) -> str:
        """Every current error, one short line each; ``""`` when all is well."""
        with self._lock:
            return "\n".join(self._errors[s] for s in _SLOTS if self._errors.get(s))

    @property
    def pending(self) -> set[str]:
        """Lookups waiting for their debounce delay (``"figures"``, ``"categories"``, ...)."""
        return self._debouncer.pending

    def subscribe(self, listener: Callable[[frozenset[str]], None]) -> None:
        """Call ``listener(what)`` after every change.

        ``what`` names the parts that changed (``"state"``, ``"figures"``, ``"categories"``,
        ``"locations"``, ``"result"``, ``"message"``). It may be called from a timer thread.
        """
        self._listeners.append(listener)

    def _notify(self, *what: str) -> None:
        parts = frozenset(what)
        for listener in list(self._listeners):
            try:
                listener(parts)
            except Exception:  # a broken listener must not break the model
                logger.debug("search form listener failed", exc_info=True)

    # -- errors ------------------------------------------------------------------------------
    def _set_error(self, slot: str, text: str) -> None:
        with self._lock:
            if text:
                self._errors[slot] = text
            else:
                self._errors.pop(slot, None)

    def report(self, exc: BaseException, *, notify: bool = True) -> None:
        """Show an error raised outside the model (by the view's glue) in :attr:`message`.

        Parameters
        ----------
        exc
            The error; anything but a ``ScoutError`` is logged at DEBUG with its traceback.
        notify
            Tell the listeners (``False`` from a listener itself, to avoid a loop).
        """
        if not isinstance(exc, ScoutError):
            logger.debug("search form: a control's callback failed", exc_info=exc)
        self._set_error("input", short_message(exc))
        if notify:
            self._notify("message")

    @contextlib.contextmanager
    def _guard(self, slot: str) -> Iterator[None]:
        """Report any exception in ``slot`` of the message; clear the slot on success."""
        try:
            yield
        except Exception as exc:  # every error goes to the message, never up a callback
            if not isinstance(exc, ScoutError):
                logger.debug("search form: %s failed", slot, exc_info=True)
            self._set_error(slot, short_message(exc))
            self._notify("message")
        else:
            self._set_error(slot, "")

    # -- reference lookups -------------------------------------------------------------------
    def country_options(self) -> tuple[tuple[str, str], ...]:
        """``(label, code)`` pairs of the countries with contacts, by name (cached)."""
        if self._countries is None:
            with self._guard("reference"):
                table = self.client.countries()
                pairs = sorted(
                    ((str(n), str(c)) for c, n in zip(table["code"], table["name"], strict=True)),
                    key=lambda p: p[0].casefold(),
                )
                self._countries = tuple((f"{name} ({code})", code) for name, code in pairs)
        return self._countries or ()

    def level_options(self, level: int) -> tuple[Place, ...]:
        """Return the places of ``level`` (1 to 3) inside the current country and parent.

        Empty unless exactly one country is chosen (and, for levels 2 and 3, the level above).
        """
        state = self._state
        if level not in (1, 2, 3) or len(state.countries) != 1:
            return ()
        country = state.countries[0]
        parent = {1: None, 2: state.level1, 3: state.level2}[level]
        if level > 1 and parent is None:
            return ()
        places: tuple[Place, ...] = ()
        with self._guard("reference"):
            browse = self.client.locations
            if parent is None:
                frame = browse.level1(country)
            elif level == 2:
                frame = browse.level2(country, parent.id)
            else:
                frame = browse.level3(country, parent.id)
            rows = (Place.from_row(r) for r in frame.to_dict("records"))
            places = tuple(
                sorted((p for p in rows if p.level == level), key=lambda p: p.name.casefold())
            )
        return places  # noqa: RET504 - () when the guard caught an error

    # -- editing -----------------------------------------------------------------------------
    def _update(self, changes: Mapping[str, Any], tasks: tuple[str, ...] = ("figures",)) -> None:
        with self._lock:
            self._state = dataclasses.replace(self._state, **changes)
            self._version += 1
            self._errors.pop("load", None)  # about choices that are gone
        self._notify("state")
        for task in tasks:
            self._debouncer.schedule(task)

    def set_countries(self, countries: str | Iterable[str] | None) -> None:
        """Choose countries (ISO codes or names); a location outside them is dropped."""
        with self._guard("input"):
            codes = Filters.from_any(countries=countries).resolve(self.client).countries
            changes: dict[str, Any] = {"countries": codes}
            place = self._state.place
            if place is not None and codes != (place.country,):
                changes.update(level1=None, level2=None, level3=None)
            self._update(changes)

    def set_category(self, text: str | None) -> None:
        """Set the category by name (as typed); suggestions and the count follow, debounced."""
        with self._guard("input"):
            if text is not None and not isinstance(text, str):
                raise ArgumentError(f"the category is a name, not {type(text).__name__}")
            self._update({"category": (text or "").strip()}, ("categories", "figures"))

    def set_location(self, level: int, place_id: int | None) -> None:
        """Pick the place ``place_id`` of ``level`` among :meth:`level_options`.

        ``None`` or 0 means any place; the levels below are cleared.
        """
        with self._guard("input"):
            if level not in (1, 2, 3):
                raise ArgumentError(f"level must be 1, 2 or 3, not {level!r}")
            changes: dict[str, Any] = {f"level{n}": None for n in range(level, 4)}
            if place_id:
                found = [p for p in self.level_options(level) if p.id == place_id]
                if not found:
                    raise FilterError(
                        f"location {place_id} is not a {LEVEL_WORDS[level]} of the current "
                        "choice; pick one country, then the levels in order"
                    )
                changes[f"level{level}"] = found[0]
            self._update(changes)

    def search_locations(self, text: str | None) -> None:
        """Look places up by name (free text, debounced); results in :attr:`location_matches`."""
        with self._guard("input"):
            self._update({"location_query": (text or "").strip()}, ("locations",))

    def pick_location(self, place_id: int) -> None:
        """Choose a place of :attr:`location_matches`: its country and its parents follow."""
        with self._guard("input"):
            found = [p for p in self.location_matches if p.id == place_id]
            if not found:
                raise FilterError(f"location {place_id} is not among the search results")
            place = found[0]
            chain = {place.level: place}
            parent, level = place.parent_id, place.level - 1
            while parent is not None and level >= 1:
                rows = self.client.locations.lookup([parent]).to_dict("records")
                above = [Place.from_row(r) for r in rows if int(r["id"]) == parent]
                if not above:
                    break
                chain[level] = above[0]
                parent, level = above[0].parent_id, level - 1
            self._update(
                {
                    "countries": (place.country,),
                    "level1": chain.get(1),
                    "level2": chain.get(2),
                    "level3": chain.get(3),
                }
            )

    def set_flag(self, name: str, value: bool | None) -> None:
        """Set a contact-method filter (or ``main_activity_only``): True, False or None."""
        with self._guard("input"):
            if name not in BOOLEAN_FIELDS:
                raise ArgumentError(f"unknown toggle {name!r}; one of {', '.join(BOOLEAN_FIELDS)}")
            if value is not None and not isinstance(value, bool):
                raise ArgumentError(f"{name} must be True, False or None, not {value!r}")
            self._update({"toggles": self._state.with_toggle(name, value)})

    def set_max_credits(self, value: int | str | None) -> None:
        """Set the budget of loads: a whole number of credits, or ``None``/``""``: no limit."""
        with self._guard("input"):
            if isinstance(value, str):
                text = value.replace(",", "").replace("_", "").strip()
                if text and not text.isdigit():
                    raise ArgumentError(
                        f"max_credits must be a whole number of credits (empty: no limit), "
                        f"not {value!r}"
                    )
                value = int(text) if text else None
            budget = checks.optional_whole_number("max_credits", value, minimum=0)
            self._update({"max_credits": budget})

    # -- the debounced lookups ---------------------------------------------------------------
    def settle(self) -> None:
        """Run the pending (debounced) lookups now and wait for those already running."""
        self._debouncer.flush(_TASK_ORDER)

    def refresh(self) -> None:
        """Recount now: run pending lookups, then the count and the cost again."""
        self.settle()
        self._run_task("figures")

    def _run_task(self, name: str) -> None:
        task = {
            "figures": self._refresh_figures,
            "categories": self._suggest_categories,
            "locations": self._find_locations,
        }[name]
        try:
            task()
        except Exception as exc:  # the tasks report their own errors; this is a last resort
            logger.debug("search form task %s failed", name, exc_info=True)
            self._set_error(name, short_message(exc))
            self._notify("message")

    def _refresh_figures(self) -> None:
        with self._lock:
            state, version = self._state, self._version
        filters = state.filters()
        count = cost = balance = None
        plan: ReadPlan | None = None
        error = ""
        if not filters.is_empty():
            try:
                count = self.client.search(filters).total_count
                plan = read_spherescout(
                    filters,
                    client=self.client,
                    method="export",
                    max_credits=state.max_credits,
                    dry_run=True,
                    progress=False,
                )
                cost, balance = plan.credits_needed, plan.credits_available
            except Exception as exc:
                if not isinstance(exc, ScoutError):
                    logger.debug("search form: counting failed", exc_info=True)
                error, count = short_message(exc), None
        with self._lock:
            if version != self._version:
                return  # the choices changed meanwhile: a newer count is on its way
            self.count, self.cost, self.balance, self.plan = count, cost, balance, plan
            self._set_error("figures", error)
        self._notify("figures", "message")

    def _suggest_categories(self) -> None:
        text = self._state.category
        names: tuple[str, ...] = ()
        with self._guard("categories"):
            if text and not text.isdigit():
                table = self.client.categories(text, limit=self.category_limit)
                names = tuple(dict.fromkeys(str(n) for n in table["name"]))
        with self._lock:
            if text != self._state.category:
                return
            self.category_suggestions = names
        self._notify("categories")

    def _find_locations(self) -> None:
        state = self._state
        text = state.location_query
        found: tuple[Place, ...] = ()
        with self._guard("locations"):
            if text:
                country = state.countries[0] if len(state.countries) == 1 else None
                frame = self.client.locations.search(text, country=country)
                rows = (Place.from_row(r) for r in frame.to_dict("records"))
                found = tuple(p for p in rows if p.level in (1, 2, 3))
        with self._lock:
            if text != self._state.location_query:
                return
            self.location_matches = found
        self._notify("locations")

    # -- loading -----------------------------------------------------------------------------
    def load(self, method: str = "pages") -> pd.DataFrame | None:
        """Do what a button does, reporting any failure in :attr:`message`.

        ``"preview"``: free, <= 10 rows; ``"pages"``: free, emails masked; ``"export"``:
        1 credit a contact, within ``max_credits``.

        Returns
        -------
        pandas.DataFrame or None
            The preview or the loaded frame (also in :attr:`preview` / :attr:`df`); ``None``
            when it failed, with the reason in :attr:`message` (nothing is raised).
        """
        self.settle()
        result: pd.DataFrame | None = None
        before = self.status, self.showing  # what the table still shows if this load fails
        with self._guard("load"):
            checks.one_of("method", method, LOAD_METHODS)
            state = self._state
            filters = state.filters()
            if method == "preview":
                result = self._load_preview(filters)
            else:
                result = self._load_frame(filters, method, state.max_credits)
        if result is None:
            with self._lock:
                self.status, self.showing = before
        self._notify("result", "message")
        return result

    def _load_preview(self, filters: Filters) -> pd.DataFrame:
        if filters.is_empty():
            raise ArgumentError(
                "Pick a country, a category or a location first: a preview needs a filter"
            )
        page = self.client.search(filters)
        frame = pd.DataFrame.from_records(page.contacts)
        with self._lock:
            self.preview, self.showing = frame, "preview"
            self.status = (
                f"Preview: {len(frame)} of {page.total_count:,} contacts (free, emails masked)."
            )
        return frame

    def _load_frame(self, filters: Filters, method: str, max_credits: int | None) -> pd.DataFrame:
        options: dict[str, Any] = {
            "client": self.client,
            "method": method,
            "max_credits": max_credits,
        }
        plan = read_spherescout(filters, dry_run=True, progress=False, **options)
        with self._lock:
            self.status = f"Loading {plan.rows or 0:,} rows by {method}…"
        self._notify("result")
        df: pd.DataFrame = read_spherescout(filters, progress=self.progress, **options)
        spent = int(df.attrs.get("scoutframe", {}).get("credits_spent") or 0)
        with self._lock:
            self.df, self.plan = df, plan
            self._last_method = method
            how = "free, emails masked" if method == "pages" else f"{spent:,} credits spent"
            self.status = f"Loaded {len(df):,} rows by {method} ({how})."
            self.showing = "frame"
        if method == "export":
            self._refresh_figures()  # the balance moved
            with self._lock:
                self.plan = plan
        return df

    # -- code --------------------------------------------------------------------------------
    def code(self, method: str | None = None) -> str:
        """Return the ``pd.read_spherescout(...)`` call that loads the same frame, as text.

        Parameters
        ----------
        method
            ``"pages"`` or ``"export"``; default: the method of the last load, else
            ``"pages"``. The form's ``max_credits`` goes with it.

        Returns
        -------
        str
            Python code assigning ``df``; it expects ``pd``, ``scoutframe`` and ``client``.
            Names are used where they resolve to the places and category picked; ids (with
            the name in a comment) where a name is ambiguous.
        """
        state = self._state
        method = method or self._last_method or "pages"
        checks.one_of("method", method, ("pages", "export"))
        arguments = codegen.filter_arguments(state, self.client)
        return codegen.render_call(
            arguments, method=method, max_credits=state.max_credits, progress=self.progress
        )

    def close(self) -> None:
        """Stop pending lookups; close the client if the model made it (not one passed in)."""
        self._debouncer.cancel()
        if self._own_client:
            self.client.close()
