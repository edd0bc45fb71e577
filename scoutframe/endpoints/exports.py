"""Starting CSV exports (``/api/download-csv``) without ever paying twice: ``client.exports``.

An export start spends credits, so it goes through the transport's *charging* policy (retried
only when the request surely never reached the server). After an ambiguous failure (read
timeout, connection dropped after sending, 5xx) the job is looked up before anything is
started again: the account's balance and the export history (documented flavour) or the
status by search id (live flavour) tell whether the first attempt took effect; if it did, the
job is adopted; only when it surely did not is the start sent once more. When the request
may still be running on the server (a read timeout, a gateway's 502/504), the client watches
for the charge for a while and, if none shows, raises rather than sending it again.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

import requests

from ..errors import (
    APIError,
    BadRequestError,
    BudgetError,
    ExportError,
    FilterError,
    InsufficientCreditsError,
    NotFoundError,
    RateLimitError,
    ServerError,
    TransportError,
)
from ..filters import Filters
from ..jobs import ExportJob, Flavor, JobStore, poll_delays

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["Exports"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


class Exports:
    """Start CSV exports and find the ones started earlier: ``client.exports``.

    Parameters
    ----------
    client
        The client whose transport, credentials and ``state_dir`` are used.
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    def __repr__(self) -> str:
        return "Exports()"

    @property
    def store(self) -> JobStore:
        """The directory of persisted job handles (``client.state_dir / "jobs"``)."""
        return JobStore.of(self._client)

    # -- public --------------------------------------------------------------------------

    def start(
        self,
        filters_or_search_id: Filters | str | Mapping[str, Any],
        *,
        max_credits: int | None = None,
    ) -> ExportJob:
        """Start a CSV export of every contact matching the filters (1 credit a contact).

        The contact count is looked up first (a free search), then checked against
        ``max_credits`` and the account's balance, so a refusal spends nothing. The job's
        handle is saved under ``client.state_dir`` as soon as the server answers, so it can be
        resumed with ``client.export_job(job.job_id)`` after an interruption.

        Parameters
        ----------
        filters_or_search_id
            :class:`~scoutframe.filters.Filters`, a mapping of filter keywords, or the
            ``search_id`` of an earlier search.
        max_credits
            Refuse (``BudgetError``) if the export would cost more.

        Returns
        -------
        ExportJob
            The started job; call ``wait()`` then ``download(path)``.

        Raises
        ------
        BudgetError
            The count is above ``max_credits``, or it cannot be known beforehand (a bare
            search id whose filters this client has no record of).
        InsufficientCreditsError
            The balance does not cover the export; nothing is spent.

        Examples
        --------
        >>> job = client.exports.start({"countries": "FR", "category": "Plumber"})  # doctest: +SKIP
        >>> job.wait(); job.download("plumbers.csv")  # doctest: +SKIP
        """
        client = self._client
        filters: Filters | None
        count: int | None
        search_id: str | None = None
        filters = None
        count = None
        if isinstance(filters_or_search_id, str):
            search_id = filters_or_search_id
            filters = self._known_filters(filters_or_search_id)
        else:
            filters = Filters.from_any(filters_or_search_id).resolve(client)
        if filters is not None:  # count it now (free), so budget and balance are checked first
            page = client.search(filters)
            if search_id is not None and page.search_id not in (None, search_id):
                filters = None  # not the same search after all: its cost stays unknown
            else:
                search_id, count = page.search_id or search_id, page.total_count
        if max_credits is not None and count is None:
            raise BudgetError(
                f"the cost of exporting search {search_id!r} cannot be checked against "
                "max_credits beforehand; pass the filters instead of the search id"
            )
        balance = ensure_affordable(client, count, max_credits, what="this export",
                                    hint="Narrow the filters or raise max_credits.")  # fmt: skip
        job = self._start(search_id, filters, count, balance)
        try:
            job.save()
        except OSError as exc:  # the export is running and paid for: hand it over anyway
            logger.warning("could not save the handle of export %s under %s: %s",
                           job.job_id, self.store.directory, exc)  # fmt: skip
        return job

    def resume(self, job_id: str) -> ExportJob:
        """Return the job ``job_id`` (task id or search id), started earlier, to wait on.

        Uses the handle saved under ``client.state_dir`` when there is one (filters, lead
        count, flavour); otherwise builds one from the id alone. Nothing is charged.
        """
        client = self._client
        handle = self.store.find(job_id, origin=client.base_url)
        if handle is not None:
            job = ExportJob.from_dict(client, handle)
            _remember_flavor(client, job.flavor)
            return job
        # No record here: a task id is the documented flavour's, anything else a search id.
        is_task = job_id.startswith("task_") and client.flavor != "live"
        unknown_age = datetime(1970, 1, 1, tzinfo=UTC)  # no 404 grace
        if is_task or client.flavor == "live":
            return ExportJob(
                client,
                search_id="" if is_task else job_id,
                task_id=job_id if is_task else None,
                flavor="docs" if is_task else "live",
                created_at=unknown_age,
            )
        return self._from_search_id(job_id, unknown_age)

    def _from_search_id(self, search_id: str, created_at: datetime) -> ExportJob:
        """Find the export of ``search_id`` when the flavour is documented (or not known yet).

        The documented API has no status by search id: the newest full export of that search
        in the history is followed instead. An unknown flavour first tries the live status.
        """
        client = self._client
        if client.flavor != "docs":
            live = ExportJob(client, search_id=search_id, flavor="live", created_at=created_at)
            try:
                live.refresh()
            except NotFoundError:
                pass  # a documented server (or no such live export): look in the history
            else:
                _remember_flavor(client, "live")
                return live
        for entry in client.history.entries():  # newest first
            if entry.search_id == search_id and entry.kind == "full":
                filters = None
                with contextlib.suppress(FilterError, TypeError, ValueError):
                    filters = Filters.from_any(entry.filters) if entry.filters else None
                return ExportJob(
                    client, search_id=search_id, task_id=None, lead_count=entry.row_count,
                    filters=filters, flavor="docs", created_at=entry.created_at or created_at,
                    history_id=entry.id,
                )  # fmt: skip
        raise NotFoundError(
            404,
            f"no export of search {search_id!r} was found: no handle is saved under "
            "client.state_dir and the export history has no full export of it; resume with "
            "the task id (client.export_job('task_...')), see client.history.list(), or start "
            "one with client.exports.start(...)",
        )

    def list_saved(self, *, include_done: bool = False) -> list[ExportJob]:
        """Return the jobs whose handles are saved under ``client.state_dir``, newest first.

        Parameters
        ----------
        include_done
            Also list jobs already downloaded (or failed).
        """
        handles = self.store.handles_for(self._client.base_url)
        jobs = [ExportJob.from_dict(self._client, h) for h in handles]
        return jobs if include_done else [j for j in jobs if j.state == "active"]

    # -- start, both flavours ------------------------------------------------------------

    def _known_filters(self, search_id: str) -> Filters | None:
        """Return the filters of a search exported before (saved handle, else the history)."""
        handle = self.store.find(search_id, origin=self._client.base_url)
        if handle is not None and handle.get("filters"):
            return ExportJob.from_dict(self._client, handle).filters
        try:
            entries = self._client.history.entries()
        except (APIError, TransportError):
            return None
        for entry in entries:
            if entry.search_id == search_id and entry.filters:
                try:
                    return Filters.from_any(entry.filters)
                except (FilterError, TypeError, ValueError):
                    return None  # filters this client cannot express: treat as unknown
        return None

    def _start(
        self, search_id: str | None, filters: Filters | None, count: int | None, balance: int
    ) -> ExportJob:
        live_form = None if filters is None else ("/api/download-csv/", filters.to_params())
        if filters is None:
            if self._client.flavor == "live":
                raise ExportError(
                    "this server starts exports from filters (live flavour) and the filters "
                    f"of search {search_id!r} are unknown here; pass the filters instead",
                    job=None,
                )
            # Only the documented flavour starts from a bare search_id (the sandbox's live
            # flavour refuses it with 400; a server that ignored it would export everything).
            first = ("/api/download-csv", [("search_id", str(search_id))])
        elif search_id is None or self._client.flavor == "live":
            first = cast(tuple[str, list[tuple[str, str]]], live_form)
        else:
            # The documented form plus the filters: a documented server reads search_id, a
            # live one re-reads the filters (ignoring search_id), so one request is right for
            # both and its answer (task_id or not) tells which one answered.
            first = ("/api/download-csv", [("search_id", search_id), *filters.to_params()])
        try:
            return self._attempt(first, search_id, filters, count, balance)
        except (NotFoundError, BadRequestError):
            if live_form is None or first == live_form:
                raise
        # The documented form was refused (404/400): try the live one.
        return self._attempt(live_form, search_id, filters, count, balance)

    def _attempt(
        self,
        request: tuple[str, list[tuple[str, str]]],
        search_id: str | None,
        filters: Filters | None,
        count: int | None,
        balance: int,
    ) -> ExportJob:
        started = datetime.now(UTC)
        path, params = request
        refusals = 0
        attempt = 0
        while True:
            sent = time.monotonic()
            try:
                response = self._client.transport.request("GET", path, params=params, charging=True)
                data = response.json()
            except RateLimitError as exc:
                # A 429 is refused before anything runs: wait and send the start again.
                refusals += 1
                wait = self._rate_limit_wait(exc, refusals)
                if wait is None:
                    raise
                logger.info("export start refused with 429; retrying in %.2f s", wait)
                time.sleep(wait)
                continue
            except APIError as exc:
                if not isinstance(exc, ServerError):
                    if exc.status == 403 and _is_insufficient(exc):
                        raise _insufficient_from(exc) from exc
                    raise
                error: Exception = exc
            except _AMBIGUOUS_LOCAL as exc:
                error = exc
            else:
                if not isinstance(data, Mapping):
                    raise ExportError("the export start answered something other than an "
                                      "object", job=None)  # fmt: skip
                return self._job_from_answer(data, search_id, filters, count, started)
            # Ambiguous: the start may or may not have happened. Look before starting again.
            in_flight = may_still_run(self._client, error, time.monotonic() - sent)
            patience = self._settle_seconds() if in_flight else 0.0
            job, charged = self._look_for_start(search_id, filters, count, balance, started,
                                                patience)  # fmt: skip
            if job is not None:
                return job
            if charged is None:
                raise ExportError(
                    "the export start broke off and the account's balance could not be read "
                    "afterwards, so whether it was charged is unknown; check "
                    "client.profile().credits and client.history.list() before starting again",
                    job=None,
                ) from error
            if charged:
                raise ExportError(
                    "the export start broke off after the server charged it, and the job "
                    "could not be found; check client.history.list() before starting again",
                    job=None,
                ) from error
            if in_flight:
                raise ExportError(
                    "the export start got no answer in time and nothing shows it was charged "
                    f"after {patience:g} s; the server may still run it, so it was not sent "
                    "again: check client.profile().credits and client.history.list() before "
                    "starting again",
                    job=None,
                ) from error
            if attempt:
                raise ExportError(
                    "the export start failed twice without taking effect; nothing was charged",
                    job=None,
                ) from error
            # The server answered, and neither balance nor jobs moved: nothing happened (a
            # zero-contact export is free anyway). One more start is safe.
            attempt += 1

    def _rate_limit_wait(self, exc: RateLimitError, refusals: int) -> float | None:
        """Seconds to wait before re-sending a start refused with 429; ``None``: give up."""
        transport = self._client.transport
        policy = getattr(transport, "charging_policy", None)
        max_retries = int(getattr(policy, "total", None) or 5)
        if refusals > max_retries:
            return None
        cap = float(getattr(transport, "retry_after_cap", 60.0))
        backoff = float(getattr(transport, "backoff_factor", 0.5) or 0.5)
        wait = exc.retry_after if exc.retry_after is not None else backoff * 2 ** (refusals - 1)
        if wait > cap:
            return None  # longer than the client is willing to wait: let the caller decide
        return max(0.0, wait)

    def _job_from_answer(
        self,
        data: Mapping[str, Any],
        search_id: str | None,
        filters: Filters | None,
        count: int | None,
        started: datetime,
    ) -> ExportJob:
        task_id = data.get("task_id") or None
        flavor: Flavor = "docs" if task_id else "live"
        _remember_flavor(self._client, flavor)
        lead_count = data.get("lead_count")
        sid = str(data.get("search_id") or search_id or "")
        if not sid and task_id is None:
            raise ExportError("the export start answered neither a task id nor a search id",
                              job=None)  # fmt: skip
        job = ExportJob(
            self._client,
            search_id=sid,
            task_id=None if task_id is None else str(task_id),
            lead_count=count if lead_count is None else int(lead_count),
            filters=filters,
            flavor=flavor,
            created_at=started,
        )
        history_id = data.get("history_id")
        if history_id is not None:
            job.history_id = int(history_id)
        return job

    # -- after an ambiguous failure ------------------------------------------------------

    def _settle_seconds(self) -> float:
        """How long to watch for a start that may still be running: at least 5 s, at most 60."""
        return min(max(5.0, _read_timeout(self._client) or 0.0), 60.0)

    def _look_for_start(
        self,
        search_id: str | None,
        filters: Filters | None,
        count: int | None,
        balance: int,
        started: datetime,
        patience: float,
    ) -> tuple[ExportJob | None, bool | None]:
        """Watch up to ``patience`` s for the charge and the job of a start that lost its answer.

        Returns the adopted job (or ``None``) and whether the balance shows the charge
        (``None`` when the balance could not be read).
        """
        deadline = time.monotonic() + patience
        delays = poll_delays(self._client.poll_interval)
        while True:
            charged = self._charged_since(balance)
            if charged and search_id is not None:
                adopt = functools.partial(self._adopt, search_id, filters, count, started)
                try:
                    job = _retry_free(adopt)
                except (APIError, TransportError, requests.RequestException, ValueError):
                    job = None  # not readable now: look again until the deadline
                if job is not None:
                    return job, True
            if charged is None or time.monotonic() >= deadline:
                return None, charged
            time.sleep(min(next(delays), max(0.0, deadline - time.monotonic())))

    def _charged_since(self, balance: int) -> bool | None:
        """Whether the balance dropped since ``balance`` was read; ``None`` if unknowable."""
        try:
            credits = _retry_free(lambda: self._client.profile().credits)
        except (APIError, TransportError):
            return None
        return credits < balance

    def _adopt(
        self, search_id: str, filters: Filters | None, count: int | None, started: datetime
    ) -> ExportJob | None:
        """Find the job a start that lost its answer created (the balance shows the charge).

        Raises the lookup's ``APIError``/``TransportError`` (the caller retries them).
        """
        client = self._client
        if client.flavor != "docs":
            live = ExportJob(client, search_id=search_id, lead_count=count,
                             filters=filters, flavor="live", created_at=started)  # fmt: skip
            try:
                live.refresh()
            except NotFoundError:
                pass  # not a live server (or no such export): look in the history
            else:
                _remember_flavor(client, "live")
                return live
        for entry in client.history.entries():  # newest first
            if entry.search_id == search_id and entry.kind == "full":
                if entry.status == "failed":
                    return None
                return ExportJob(
                    client, search_id=search_id, task_id=None,
                    lead_count=entry.row_count if entry.row_count is not None else count,
                    filters=filters, flavor="docs", created_at=started,
                    history_id=entry.id,
                )  # fmt: skip
        return None


#: Tries of a free lookup (profile, history, status) after a start lost its answer.
_LOOKUP_TRIES = 5


def _retry_free(lookup: Callable[[], _T]) -> _T:
    """Run a free, read-only lookup, retrying transient failures a few times (short backoff).

    A 4xx other than 429 is final and raised at once; so is the last failure.
    """
    for attempt in range(_LOOKUP_TRIES):
        try:
            return lookup()
        except (APIError, TransportError, requests.RequestException, ValueError) as exc:
            final = isinstance(exc, APIError) and not isinstance(exc, (ServerError, RateLimitError))
            if final or attempt == _LOOKUP_TRIES - 1:
                raise
            time.sleep(min(0.1 * 2**attempt, 1.0))
    raise AssertionError("unreachable")  # pragma: no cover


def check_budget(cost: int | None, max_credits: int | None, *, what: str, hint: str) -> None:
    """Raise :class:`BudgetError` when ``cost`` credits are known to exceed ``max_credits``."""
    if max_credits is not None and cost is not None and cost > max_credits:
        raise BudgetError(
            f"{what} would cost {cost} credits, more than max_credits={max_credits}; nothing "
            f"was spent. {hint}"
        )


def ensure_affordable(
    client: Client, cost: int | None, max_credits: int | None, *, what: str, hint: str
) -> int:
    """Refuse a charging request before it is sent; return the balance it was checked against.

    ``BudgetError`` above ``max_credits``, then :class:`InsufficientCreditsError` above the
    account's balance (one free profile request). An unknown ``cost`` passes both.
    """
    check_budget(cost, max_credits, what=what, hint=hint)
    balance = client.profile().credits
    if cost is not None and cost > balance:
        raise InsufficientCreditsError.from_counts(cost, balance)
    return balance


# Local failures of a charging request that leave its effect unknown (5xx is an APIError).
_AMBIGUOUS_LOCAL = (TransportError, requests.RequestException, ValueError)


def may_still_run(client: Client, error: BaseException, elapsed: float) -> bool:
    """Whether a failed charging request may still be running on the server.

    A read timeout (the failure took about the read timeout) or a gateway's 502/504 leave the
    request possibly in flight upstream; a broken answer or a 500/503 mean the server has
    already decided, so the balance and the history show whether it took effect.
    """
    if isinstance(error, ServerError):
        return error.status in (502, 504)
    read_timeout = _read_timeout(client)
    return read_timeout is not None and elapsed >= 0.9 * read_timeout


def _read_timeout(client: Client) -> float | None:
    timeout = getattr(client.transport, "timeout", None)
    if isinstance(timeout, tuple) and len(timeout) == 2:
        return float(timeout[1])
    return None


def _remember_flavor(client: Client, flavor: str) -> None:
    """Tell the client which API flavour the server has shown."""
    client._set_flavor(flavor)


def _is_insufficient(exc: APIError) -> bool:
    if isinstance(exc, InsufficientCreditsError):
        return True
    body = exc.body if isinstance(exc.body, Mapping) else {}
    return body.get("validation_code") == "insufficient_credits"


def _insufficient_from(exc: APIError) -> InsufficientCreditsError:
    if isinstance(exc, InsufficientCreditsError):
        return exc
    body = exc.body if isinstance(exc.body, Mapping) else {}
    return InsufficientCreditsError.from_counts(
        int(body.get("required_credits") or 0), int(body.get("available_credits") or 0)
    )
