"""Starting CSV exports (``/api/download-csv``) without ever paying twice: ``client.exports``.

An export start spends credits: it is sent through :func:`scoutframe.api.billing.charge_once`
(looked up before it is ever sent again). A job that lost its answer is found again by the
:class:`~scoutframe.api.jobstore.JobStore`: the status by search id (live flavour) or the newest
full export of the search in the history (documented flavour).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ...clock import clock, sleep
from ...errors import (
    APIError,
    BadRequestError,
    BudgetError,
    ExportError,
    NotFoundError,
    ScoutError,
    TransportError,
)
from ...models import Flavor, HandleState, HistoryEntry, JobHandle, optional_int
from ..billing import AmbiguousAnswerError, ChargingCall, charge_once, ensure_affordable
from ..filters import Filters
from ..jobs import ExportJob
from ..jobstore import JobStore, filters_from

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["Exports"]

logger = logging.getLogger(__name__)

Request = tuple[str, list[tuple[str, str]]]


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
        """The saved job handles and the history (``client.job_store``)."""
        return self._client.job_store

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
            :class:`~scoutframe.api.filters.Filters`, a mapping of filter keywords, or the
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
        search_id: str | None = None
        count: int | None = None
        if isinstance(filters_or_search_id, str):
            search_id = filters_or_search_id
            filters = self.store.filters_of(search_id)
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
        balance = ensure_affordable(
            client,
            count,
            max_credits,
            what="this export",
            hint="Narrow the filters or raise max_credits.",
        )
        provisional = self._provisional(search_id, filters, count)
        try:
            job = self._start(search_id, filters, count, balance)
        except ScoutError as exc:
            # Kept only while the start may have been charged (the protocol could not tell);
            # a refusal, a redirect or a failure without effect made nothing.
            maybe = isinstance(exc, ExportError) and exc.charged is not False
            if provisional is not None and not maybe:
                self.store.remove(provisional.job_id)
            raise
        self._keep(job, replacing=provisional)
        return job

    def _provisional(
        self, search_id: str | None, filters: Filters | None, count: int | None
    ) -> JobHandle | None:
        """Save what is about to be charged, so a start that dies in flight is found again.

        The newest history entry now is the baseline: an export of this search newer than it,
        found after a crash, is the one this start made (:meth:`settle`).
        """
        if search_id is None:
            return None
        try:
            newest = self.store.newest_id()
        except (APIError, TransportError):
            newest = None  # settle() then compares times instead
        client = self._client
        handle = JobHandle(
            search_id=search_id,
            lead_count=count,
            filters=None if filters is None else filters.to_dict(),
            flavor="live" if client.flavor == "live" else "docs",
            origin=client.base_url,
            created_at=clock().now(),
            state="provisional",
            newest_history_id=newest,
        )
        try:
            self.store.save(handle)
        except OSError as exc:
            logger.warning(
                "could not save a provisional handle under %s: %s", self.store.directory, exc
            )
            return None
        return handle

    def _keep(self, job: ExportJob, *, replacing: JobHandle | None) -> None:
        """Save the started job's handle; drop the provisional one it replaces."""
        try:
            job.save()
        except OSError as exc:  # the export is running and paid for: hand it over anyway
            logger.warning(
                "could not save the handle of export %s under %s: %s",
                job.job_id,
                self.store.directory,
                exc,
            )
            return
        if replacing is not None and replacing.job_id != job.job_id:
            self.store.remove(replacing.job_id)

    def settle(self, handle: JobHandle) -> ExportJob | None:
        """Resolve a provisional handle: a start whose answer this machine never saw.

        The export history tells: an export of the same search newer than the handle's
        baseline is the one that start made, and is adopted (saved as active, nothing paid);
        none means the start never took effect, and the handle is dropped. A start younger
        than the settle time may still be in flight: it is watched for that long first.

        Returns
        -------
        ExportJob or None
            The adopted job, or ``None`` when the start made nothing.
        """
        client = self._client
        age = (clock().now() - handle.created_at).total_seconds()
        patience = max(0.0, client.retry.settle_seconds(client.transport.timeout[1]) - age)
        entry = None
        for pause in client.retry.polling(patience).pauses():
            sleep(pause)
            entry = self._made_by(handle)
            if entry is not None:
                break
        if entry is None or entry.status == "failed":
            self.store.remove(handle.job_id)
            return None
        filters = filters_from(handle.filters)
        live = handle.flavor == "live" or client.flavor == "live"
        job = ExportJob(
            client,
            search_id=handle.search_id,
            lead_count=entry.row_count,
            filters=filters,
            flavor="live" if live else "docs",
            created_at=entry.created_at or handle.created_at,
            history_id=entry.id,
        )
        if not live and client.flavor == "unknown":
            probe = ExportJob(
                client, search_id=handle.search_id, flavor="live", created_at=job.created_at
            )
            try:
                probe.refresh()
            except NotFoundError:
                pass  # the documented flavour: followed by its history entry
            else:
                client._set_flavor("live")
                job.flavor = "live"
        logger.info(
            "adopted export %s (history entry %d) that an interrupted start made",
            job.job_id,
            entry.id,
        )
        self._keep(job, replacing=handle)
        return job

    def _made_by(self, handle: JobHandle) -> HistoryEntry | None:
        """Find the full export that the handle's start made, if the history has it."""
        if handle.newest_history_id is not None:
            return self.store.newest_export(handle.search_id, after_id=handle.newest_history_id)
        # No baseline: an export of that search made since the start (a minute of clock skew).
        entry = self.store.newest_export(handle.search_id)
        made = entry.created_at if entry is not None else None
        if made is not None and (handle.created_at - made).total_seconds() <= 60:
            return entry
        return None

    def resume(self, job_id: str) -> ExportJob:
        """Return the job ``job_id`` (task id or search id), started earlier, to wait on.

        Uses the handle saved under ``client.state_dir`` when there is one (filters, lead
        count, flavour); otherwise builds one from the id alone. Nothing is charged.
        """
        client = self._client
        handle = self.store.find(job_id)
        if handle is not None:
            client._set_flavor(handle.flavor)
            return ExportJob.from_handle(client, handle)
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
        job = self.find(job_id, created_at=unknown_age)
        if job is None:
            raise NotFoundError(
                404,
                f"no export of search {job_id!r} was found: no handle is saved under "
                "client.state_dir and the export history has no full export of it; resume "
                "with the task id (client.export_job('task_...')), see client.history.list(), "
                "or start one with client.exports.start(...)",
            )
        return job

    def find(
        self,
        search_id: str,
        *,
        created_at: datetime,
        filters: Filters | None = None,
        lead_count: int | None = None,
        after_id: int | None = None,
    ) -> ExportJob | None:
        """Find the export of ``search_id`` on the server, without a saved handle.

        A server of the live flavour (or one not known yet) is asked for the status by search
        id; the documented flavour has none, so the newest full export of that search in the
        history (newer than ``after_id``, if given) is followed instead. A failed export is
        not returned. Free.
        """
        client = self._client
        if client.flavor != "docs":
            live = ExportJob(
                client,
                search_id=search_id,
                lead_count=lead_count,
                filters=filters,
                flavor="live",
                created_at=created_at,
            )
            try:
                live.refresh()
            except NotFoundError:
                pass  # a documented server (or no such live export): look in the history
            else:
                client._set_flavor("live")
                return live
        entry = self.store.newest_export(search_id, after_id=after_id)
        if entry is None or entry.status == "failed":
            return None
        return ExportJob(
            client,
            search_id=search_id,
            task_id=None,
            lead_count=entry.row_count if entry.row_count is not None else lead_count,
            filters=filters if filters is not None else filters_from(entry.filters),
            flavor="docs",
            created_at=entry.created_at or created_at,
            history_id=entry.id,
        )

    def list_saved(self, *, include_done: bool = False) -> list[ExportJob]:
        """Return the jobs whose handles are saved under ``client.state_dir``, newest first.

        Parameters
        ----------
        include_done
            Also list jobs already downloaded (or failed).
        """
        states: tuple[HandleState, ...] = (
            ("active", "done", "failed") if include_done else ("active",)
        )
        return [ExportJob.from_handle(self._client, h) for h in self.store.handles(states=states)]

    # -- start, both flavours ------------------------------------------------------------

    def _start(
        self, search_id: str | None, filters: Filters | None, count: int | None, balance: int
    ) -> ExportJob:
        live_form: Request | None = None
        if filters is not None:
            live_form = ("/api/download-csv/", filters.to_params())
        if filters is None:
            if self._client.flavor == "live":
                raise ExportError(
                    "this server starts exports from filters (live flavour) and the filters "
                    f"of search {search_id!r} are unknown here; pass the filters instead",
                    job=None,
                )
            # Only the documented flavour starts from a bare search_id (the sandbox's live
            # flavour refuses it with 400; a server that ignored it would export everything).
            first: Request = ("/api/download-csv", [("search_id", str(search_id))])
        elif search_id is None or self._client.flavor == "live":
            assert live_form is not None
            first = live_form
        else:
            # The documented form plus the filters: a documented server reads search_id, a
            # live one re-reads the filters (ignoring search_id), so one request is right for
            # both and its answer (task_id or not) tells which one answered.
            first = ("/api/download-csv", [("search_id", search_id), *filters.to_params()])
        try:
            return self._charge(first, search_id, filters, count, balance)
        except (NotFoundError, BadRequestError):
            if live_form is None or first == live_form:
                raise
        # The documented form was refused (404/400): try the live one.
        return self._charge(live_form, search_id, filters, count, balance)

    def _charge(
        self,
        request: Request,
        search_id: str | None,
        filters: Filters | None,
        count: int | None,
        balance: int,
    ) -> ExportJob:
        started = clock().now()
        path, params = request

        def send() -> ExportJob:
            # A refusal for want of credits arrives as InsufficientCreditsError (the transport
            # maps the 403): nothing was charged, and it goes to the caller as it is.
            response = self._client.transport.request("GET", path, params=params, charging=True)
            try:
                data = self._client.transport.json_of(response)
            except APIError as exc:  # a 2xx that is not JSON: it may have charged
                raise AmbiguousAnswerError(exc.detail) from exc
            if not isinstance(data, Mapping):
                raise AmbiguousAnswerError(f"the export start answered {type(data).__name__}")
            return self._job_from_answer(data, search_id, filters, count, started)

        def adopt() -> ExportJob | None:
            if search_id is None:
                return None
            return self.find(search_id, created_at=started, filters=filters, lead_count=count)

        call = ChargingCall(
            what="the export start",
            send=send,
            adopt=adopt,
            error=lambda message, charged: ExportError(message, job=None, charged=charged),
        )
        return charge_once(self._client, call, balance=balance)

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
        self._client._set_flavor(flavor)
        lead_count = optional_int(data.get("lead_count"))
        sid = str(data.get("search_id") or search_id or "")
        if not sid and task_id is None:
            raise AmbiguousAnswerError(
                "the export start answered neither a task id nor a search id"
            )
        return ExportJob(
            self._client,
            search_id=sid,
            task_id=None if task_id is None else str(task_id),
            lead_count=count if lead_count is None else lead_count,
            filters=filters,
            flavor=flavor,
            created_at=started,
            history_id=optional_int(data.get("history_id")),
        )
