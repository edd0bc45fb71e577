"""The search form's view: ipywidgets controls bound to a :class:`SearchModel`.

The view holds no logic of its own: each control's change calls one model method, and each
model change re-renders the parts it names. Every callback runs under a guard that writes any
error into the form's message area (a widget callback's exception would otherwise vanish into
the browser console); the model does the same for its own work.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ..api.filters import CONTACT_METHODS
from . import _html
from .model import SearchModel
from .state import LEVEL_WORDS

if TYPE_CHECKING:
    import pandas as pd

    from ..api.client import Client
    from ..api.filters import Filters
    from ..models import ReadPlan

__all__ = ["SearchForm", "search_form"]

#: The choices of a contact-method toggle, and the filter value each one means.
FLAG_CHOICES: dict[str, bool | None] = {"either": None, "with": True, "without": False}
_FLAG_OF_VALUE = {value: label for label, value in FLAG_CHOICES.items()}
_ANY = 0  # the "(any)" choice of the location dropdowns (location ids are positive)
_WIDE = {"description_width": "110px"}


class SearchForm:
    """An ipywidgets form for a contact search: pick, watch the count and cost, load.

    Parameters
    ----------
    client
        The client to use; default ``scoutframe.Client()`` (from the environment).
    debounce
        Seconds of quiet before the count, cost and suggestions are looked up again.
    progress
        Progress bars (shown inside the form) while loading; ``False`` for none.

    Attributes
    ----------
    model : SearchModel
        The state and logic; the form only binds widgets to it.
    controls : dict
        The input widgets by filter name: ``"countries"``, ``"category"``,
        ``"level1_locations"``, ``"level2_locations"``, ``"level3_locations"``,
        ``"location_search"``, ``"location_matches"``, ``"email"``, ``"phone_number"``,
        ``"website"``, ``"instagram"``, ``"facebook"``, ``"main_activity_only"``,
        ``"max_credits"``. Setting a control's ``value`` is the same as a user's edit.
    buttons : dict
        ``"preview"``, ``"pages"``, ``"export"`` (what :meth:`load` does) and ``"code"``.
    widget : ipywidgets.VBox
        The whole form (displaying the form displays it).

    Examples
    --------
    >>> form = SearchForm(client)  # doctest: +SKIP
    >>> form.controls["countries"].value = ("FR",)  # doctest: +SKIP
    >>> form.controls["category"].value = "Plumber"  # doctest: +SKIP
    >>> form.settle(); form.count, form.cost  # doctest: +SKIP
    (11, 11)
    >>> df = form.load(method="pages")  # doctest: +SKIP
    >>> print(form.code())  # doctest: +SKIP
    """

    def __init__(
        self, client: Client | None = None, *, debounce: float = 0.3, progress: bool | None = None
    ) -> None:
        self.model = SearchModel(client, debounce=debounce, progress=progress)
        self._local = threading.local()
        self.controls: dict[str, Any] = {}
        self.buttons: dict[str, widgets.Button] = {}
        #: The warnings of the last successful load, as text (shown in the form, not on stderr).
        self.notes: tuple[str, ...] = ()
        self._build()
        self.model.subscribe(self._on_model)
        self._render(frozenset({"state", "figures", "message", "result"}))

    # -- building ----------------------------------------------------------------------------
    def _build(self) -> None:
        c = self.controls
        c["countries"] = widgets.SelectMultiple(
            options=self.model.country_options(), rows=6, description="Countries", style=_WIDE
        )
        c["category"] = widgets.Combobox(
            description="Category",
            placeholder="type a category, e.g. Plumber",
            ensure_option=False,
            continuous_update=True,
            style=_WIDE,
        )
        for level in (1, 2, 3):
            c[f"level{level}_locations"] = widgets.Dropdown(
                options=[("(any)", _ANY)],
                value=_ANY,
                style=_WIDE,
                description=LEVEL_WORDS[level].capitalize(),
            )
        c["location_search"] = widgets.Text(
            description="Find a place",
            placeholder="e.g. Paris",
            continuous_update=True,
            style=_WIDE,
        )
        c["location_matches"] = widgets.Dropdown(
            options=[("(type a place name)", _ANY)], value=_ANY, description="Matches", style=_WIDE
        )
        for name in CONTACT_METHODS:
            c[name] = widgets.ToggleButtons(
                options=list(FLAG_CHOICES),
                value="either",
                description=name,
                style={**_WIDE, "button_width": "70px"},
            )
        c["main_activity_only"] = widgets.Checkbox(description="main activity only", value=False)
        c["max_credits"] = widgets.Text(
            description="max_credits", placeholder="no limit", continuous_update=False, style=_WIDE
        )
        for name, control in c.items():
            control.add_class(f"scoutframe-{name.replace('_', '-')}")
            control.observe(
                self._callback(functools.partial(self._on_control, name)), names="value"
            )

        b = self.buttons
        b["preview"] = widgets.Button(description="Preview (free)", icon="eye")
        b["pages"] = widgets.Button(description="Load by pages (free)", icon="download")
        b["export"] = widgets.Button(
            description="Load by export", icon="shopping-cart", button_style="warning"
        )
        b["code"] = widgets.Button(description="Show code", icon="code")
        for name, button in b.items():
            button.add_class(f"scoutframe-button-{name}")
            button.layout.width = "auto"
        for method in ("preview", "pages", "export"):
            b[method].on_click(self._callback(functools.partial(self._on_button, method)))
        b["code"].on_click(self._callback(self._on_code))

        self._figures = widgets.HTML().add_class("scoutframe-count")
        self._message = widgets.HTML().add_class("scoutframe-message")
        self._status = widgets.HTML().add_class("scoutframe-status")
        self._progress = widgets.Output().add_class("scoutframe-progress")
        self._table = widgets.HTML().add_class("scoutframe-table-area")
        self._code = widgets.HTML().add_class("scoutframe-code")
        flags = widgets.VBox([c[name] for name in CONTACT_METHODS])
        self.widget = widgets.VBox(
            [
                widgets.HTML("<b>SphereScout search</b>"),
                widgets.HBox(
                    [
                        c["countries"],
                        widgets.VBox([c["category"], c["max_credits"], c["main_activity_only"]]),
                    ]
                ),
                widgets.HBox([c["level1_locations"], c["level2_locations"], c["level3_locations"]]),
                widgets.HBox([c["location_search"], c["location_matches"]]),
                flags,
                self._figures,
                self._message,
                widgets.HBox([b["preview"], b["pages"], b["export"], b["code"]]),
                self._progress,
                self._status,
                self._table,
                self._code,
            ]
        ).add_class("scoutframe-search-form")

    # -- callbacks (user → model) ------------------------------------------------------------
    def _callback(self, action: Callable[..., None]) -> Callable[..., None]:
        """Wrap a widget callback: skip echoes of our own updates; report any error."""

        def run(*args: Any) -> None:
            if getattr(self._local, "syncing", False):
                return
            try:
                action(*args)
            except Exception as exc:  # shown in the form, never lost in the browser console
                self.model.report(exc)

        return run

    def _on_control(self, name: str, change: dict[str, Any]) -> None:
        value = change["new"]
        m = self.model
        if name == "countries":
            m.set_countries(tuple(value))
        elif name == "category":
            m.set_category(value)
        elif name.startswith("level"):
            m.set_location(int(name[5]), int(value or 0) or None)
        elif name == "location_search":
            m.search_locations(value)
        elif name == "location_matches":
            if value:
                m.pick_location(int(value))
                self._local.syncing = True  # back to "(pick a match)": the chain shows the pick
                try:
                    self.controls["location_matches"].value = _ANY
                finally:
                    self._local.syncing = False
        elif name == "main_activity_only":
            m.set_flag(name, True if value else None)
        elif name == "max_credits":
            m.set_max_credits(value)
        else:
            m.set_flag(name, FLAG_CHOICES[value])

    def _on_button(self, method: str, _button: widgets.Button) -> None:
        self.load(method)

    def _on_code(self, _button: widgets.Button) -> None:
        self._code.value = _html.code_html(self.code())

    # -- rendering (model → widgets) ---------------------------------------------------------
    def _on_model(self, what: frozenset[str]) -> None:
        try:
            self._render(what)
        except Exception as exc:  # shown in the form, not lost in a timer thread
            self.model.report(exc, notify=False)
            self._message.value = _html.message_html(self.model.message)

    def _render(self, what: frozenset[str]) -> None:
        self._local.syncing = True
        try:
            if "state" in what:
                self._sync_controls()
            if "categories" in what:
                self.controls["category"].options = self.model.category_suggestions
            if "locations" in what:
                self._set_options(
                    self.controls["location_matches"],
                    [
                        ("(pick a match)" if self.model.location_matches else "(no match)", _ANY),
                        *((p.label, p.id) for p in self.model.location_matches),
                    ],
                    _ANY,
                )
            if what & {"state", "figures", "message", "result"}:
                self._figures.value = _html.figures_html(self.model)
                self._message.value = _html.message_html(self.model.message)
            if "result" in what:
                self._status.value = _html.status_html(self.model.status, self.notes)
                self._table.value = self._table_html()
        finally:
            self._local.syncing = False

    def _table_html(self) -> str:
        m = self.model
        if m.showing == "frame" and m.df is not None:
            return _html.table_html(m.df, caption="The loaded frame (form.df)")
        if m.showing == "preview" and m.preview is not None:
            return _html.table_html(m.preview, caption="Preview (form.preview)")
        return str(self._table.value)

    def _sync_controls(self) -> None:
        state, c = self.model.state, self.controls
        if tuple(c["countries"].value) != state.countries:
            known = {code for _, code in c["countries"].options}
            c["countries"].value = tuple(code for code in state.countries if code in known)
        for level in (1, 2, 3):
            place = getattr(state, f"level{level}")
            options = [("(any)", _ANY), *((p.name, p.id) for p in self.model.level_options(level))]
            self._set_options(
                c[f"level{level}_locations"], options, place.id if place is not None else _ANY
            )
            c[f"level{level}_locations"].disabled = len(options) == 1
        for name in CONTACT_METHODS:
            c[name].value = _FLAG_OF_VALUE[state.toggle(name)]
        c["main_activity_only"].value = bool(state.toggle("main_activity_only"))
        if c["category"].value.strip() != state.category:
            c["category"].value = state.category

    @staticmethod
    def _set_options(control: Any, options: list[tuple[str, int]], value: int) -> None:
        if tuple(control.options) != tuple(options):
            control.options = options
        if value in {v for _, v in options} and control.value != value:
            control.value = value

    # -- the public surface ------------------------------------------------------------------
    def load(self, method: str = "pages") -> pd.DataFrame | None:
        """Do what a button does: ``"preview"``, ``"pages"`` or ``"export"``.

        Progress bars and notes appear inside the form; a failure is shown in the form and
        kept in :attr:`message`, not raised. Warnings of the read (such as
        ``MaskedEmailWarning``) are shown in the form and kept in :attr:`notes` instead of
        going to standard error.

        Returns
        -------
        pandas.DataFrame or None
            The preview or the loaded frame; ``None`` when it failed.
        """
        self._progress.outputs = ()  # not clear_output(): that prints escapes outside Jupyter
        with self._progress, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = self.model.load(method)
        if result is not None:  # a failed load leaves the status and notes of the last one
            self.notes = tuple(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
        self._render(frozenset({"result"}))
        return result

    def code(self, method: str | None = None) -> str:
        """Return the equivalent ``pd.read_spherescout(...)`` call (:meth:`SearchModel.code`)."""
        return self.model.code(method)

    def settle(self) -> None:
        """Run pending (debounced) lookups now: the count, cost and suggestions are current."""
        self.model.settle()

    def refresh(self) -> None:
        """Recount now (pending lookups first)."""
        self.model.refresh()

    def close(self) -> None:
        """Stop pending lookups and close the widgets."""
        self.model.close()
        self.widget.close()

    @property
    def count(self) -> int | None:
        """Contacts matching the filters (free ``totalCount``)."""
        return self.model.count

    @property
    def cost(self) -> int | None:
        """Credits an export of them would spend (from a free dry-run plan)."""
        return self.model.cost

    @property
    def balance(self) -> int | None:
        """The account's credits."""
        return self.model.balance

    @property
    def plan(self) -> ReadPlan | None:
        """The latest plan (a dry run while editing; the load's own after a load)."""
        return self.model.plan

    @property
    def df(self) -> pd.DataFrame | None:
        """The latest loaded frame."""
        return self.model.df

    @property
    def preview(self) -> pd.DataFrame | None:
        """The latest free preview (<= 10 contacts, emails masked)."""
        return self.model.preview

    @property
    def filters(self) -> Filters:
        """The current filters."""
        return self.model.filters

    @property
    def message(self) -> str:
        """The errors the form shows, as text; ``""`` when there are none."""
        return self.model.message

    @property
    def status(self) -> str:
        """What the last action did."""
        return self.model.status

    def __repr__(self) -> str:
        return f"<SearchForm {self.filters!r}: count={self.count}, cost={self.cost}>"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def search_form(client: Client | None = None, **options: Any) -> SearchForm:
    """Build a :class:`SearchForm`, display it, and return it (``form = search_form()``).

    Parameters
    ----------
    client
        The client to use; default ``scoutframe.Client()``.
    **options
        ``debounce``, ``progress``: as :class:`SearchForm` takes them.

    Returns
    -------
    SearchForm
    """
    from IPython.display import display

    form = SearchForm(client, **options)
    display(form)  # type: ignore[no-untyped-call]
    return form
