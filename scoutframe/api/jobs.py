"""Export jobs: the state machine of one server-side CSV export (poll, wait, download).

An :class:`ExportJob` is a handle on one export. Its facts (ids, filters, lead count, creation
time; never a credential or a signed URL) are saved as a
:class:`~scoutframe.models.JobHandle` by the :class:`~scoutframe.api.jobstore.JobStore` as soon as
they are known, so an interrupted notebook picks the job up again with
``client.export_job(job_id)`` without paying twice.

Two retry scopes, as in google-cloud-bigquery: the transport retries single free requests; the
job runs the poll loop (``client.retry.polling``) with its own deadline, and the download's
resume loop (:class:`~scoutframe.api.downloads.RangedDownload`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

from ..clock import clock, sleep
from ..errors import (
    APIError,
    AuthenticationError,
    DownloadExpiredError,
    ExportError,
    ExportFailedError,
    ExportTimeoutError,
    NotFoundError,
    RateLimitError,
    ServerError,
    TransportError,
)
from ..files import promote
from ..models import (
    ExportStatus,
    Flavor,
    HandleState,
    JobHandle,
    link_is_valid,
    optional_int,
    parse_datetime,
)
from . import retry
from .bodies import paid_bytes
from .downloads import OnBytes, RangedDownload
from .filters import Filters
from .jobstore import JobStore, _safe_name

if TYPE_CHECKING:
    from .client import Client

__all__ = ["ExportJob", "naming_paid_exports"]


def path_segment(value: str | None) -> str:
    """Return an id from the server as one URL path segment: it never steers the request.

    ``/``, ``?``, ``#``, NUL and the rest are percent-encoded, and a bare ``.``/``..`` too
    (requests would resolve it), so ``/api/download-status/{id}`` stays that endpoint.
    """
    quoted = quote(str(value), safe="")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


logger = logging.getLogger(__name__)


class ExportJob:
    """A server-side CSV export: poll it, wait for it, download it.

    Get one from ``client.exports.start(...)`` or, to resume a job started earlier (even in
    another process), from ``client.export_job(task_id_or_search_id)``.

    Attributes
    ----------
    task_id
        The documented API's task id; ``None`` for exports of the live flavour.
    search_id
        The search the export was made from.
    lead_count
        Number of contacts (credits charged), when known.
    filters
        The filters of the search, when known.
    flavor
        ``"docs"`` (status by task id) or ``"live"`` (status by search id).
    created_at
        When the job was started or first seen by this client (UTC).
    history_id
        The export's history entry, once known.
    state
        The handle's life on this machine (``"active"``, ``"done"``, ``"failed"``), not the
        server's status: that is :attr:`last_status`.
    last_status
        The server's status as last observed, or ``None``.
    """

    #: Seconds after creation during which a 404 from the status endpoint means "not yet".
    not_found_grace: float = retry.STATUS_NOT_FOUND_GRACE

    def __init__(
        self,
        client: Client,
        *,
        search_id: str,
        task_id: str | None = None,
        lead_count: int | None = None,
        filters: Filters | None = None,
        flavor: Flavor = "docs",
        created_at: datetime | None = None,
        history_id: int | None = None,
        state: HandleState = "active",
    ) -> None:
        self._client = client
        self.search_id = search_id
        self.task_id = task_id
        self.lead_count = lead_count
        self.filters = filters
        self.flavor: Flavor = flavor
        self.created_at = created_at or clock().now()
        self.history_id = history_id
        self.state: HandleState = state
        self.origin = client.base_url
        self.last_status: ExportStatus | None = None
        self._download: RangedDownload | None = None

    def __repr__(self) -> str:
        return (
            f"ExportJob(task_id={self.task_id!r}, search_id={self.search_id!r}, "
            f"lead_count={self.lead_count!r}, flavor={self.flavor!r}, state={self.state!r})"
        )

    @property
    def job_id(self) -> str:
        """The id that names this job: the task id, else the search id."""
        return self.task_id or self.search_id

    def _repr_html_(self) -> str:
        from ..models._display import card, number

        status = self.last_status.status if self.last_status is not None else "not asked yet"
        steps = {
            "active": f"Paid for: job.wait(), then job.download(path); from another process: "
            f"client.export_job({self.job_id!r}).",
            "done": "Downloaded. A re-run of the same read downloads it again for free while "
            "nothing is new.",
            "failed": "Failed on the server; its credits are refunded.",
            "provisional": "Its start may have been charged: the same read adopts it.",
        }
        return card(
            f"Export {self.job_id}",
            [
                ("search", self.search_id),
                ("contacts (credits)", number(self.lead_count)),
                ("server status", status),
                ("here", self.state),
                ("flavour", self.flavor),
                ("history entry", self.history_id),
                ("started", self.created_at),
            ],
            steps[self.state],
        )

    # -- persistence ---------------------------------------------------------------------

    def to_handle(self) -> JobHandle:
        """Return the saved form of this job."""
        return JobHandle(
            search_id=self.search_id,
            task_id=self.task_id,
            lead_count=self.lead_count,
            filters=None if self.filters is None else self.filters.to_dict(),
            flavor=self.flavor,
            origin=self.origin,
            created_at=self.created_at,
            history_id=self.history_id,
            state=self.state,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the persisted handle as JSON: ids, filters, counts and times, no credentials."""
        return self.to_handle().to_json()

    @classmethod
    def from_handle(cls, client: Client, handle: JobHandle) -> ExportJob:
        """Rebuild a job from its saved handle."""
        filters = None
        if handle.filters:
            with contextlib.suppress(ValueError, TypeError):
                filters = Filters.from_any(handle.filters)
        job = cls(
            client,
            search_id=handle.search_id,
            task_id=handle.task_id,
            lead_count=handle.lead_count,
            filters=filters,
            flavor=handle.flavor,
            created_at=handle.created_at,
            history_id=handle.history_id,
            state="active" if handle.state == "provisional" else handle.state,
        )
        if handle.origin:
            job.origin = handle.origin
        return job

    @classmethod
    def from_dict(cls, client: Client, data: Mapping[str, Any]) -> ExportJob:
        """Rebuild a job from a handle written by :meth:`to_dict`."""
        return cls.from_handle(client, JobHandle.from_json(data))

    @property
    def store(self) -> JobStore:
        """Where this job's handle is saved."""
        return self._client.job_store

    def save(self) -> Path:
        """Persist the handle now (atomic write, mode 0600)."""
        return self.store.save(self.to_handle())

    def set_state(self, state: HandleState) -> None:
        """Record the handle's life on this machine (saved at once; a failed save is ignored)."""
        self.state = state
        with contextlib.suppress(OSError):  # the handle is a convenience; never fail the job
            self.save()

    # -- status --------------------------------------------------------------------------

    def refresh(self) -> ExportStatus:
        """Ask the server for the job's status once (free).

        Raises
        ------
        AuthenticationError
            The credential stopped working (revoked, expired): the message names this paid
            export and how to resume it with a valid one.
        """
        try:
            return self._refresh()
        except AuthenticationError as exc:
            raise naming_paid_exports(exc, [self.job_id]) from exc

    def _refresh(self) -> ExportStatus:
        transport = self._client.transport
        if self.task_id is not None and self.flavor == "docs":
            status = ExportStatus.from_json(
                transport.get_json(f"/api/download-status/{path_segment(self.task_id)}")
            )
        elif self.flavor == "live":
            status = ExportStatus.from_json(
                transport.get_json(f"/api/download-status/{path_segment(self.search_id)}/")
            )
            if status.status == "ready" and status.download_url is None:
                status = self._with_live_url(status)
        elif self.history_id is not None:
            entry = self.store.entry(self.history_id)
            if entry is None:
                raise NotFoundError(404, f"history entry {self.history_id} not found", None, None)
            status = entry.as_status()
        else:
            raise ExportError(
                f"export {self.job_id} has neither a task id nor a history entry to follow",
                job=self,
            )
        if status.lead_count is not None:
            self.lead_count = status.lead_count
        if not self.search_id and status.extra.get("search_id"):
            self.search_id = str(status.extra["search_id"])
        history_id = optional_int(status.extra.get("history_id"))
        if history_id is not None:
            self.history_id = history_id
        self.last_status = status
        return status

    def _with_live_url(self, status: ExportStatus) -> ExportStatus:
        try:
            data = self._client.transport.get_json(
                f"/api/download-completed-csv/{path_segment(self.search_id)}/"
            )
        except NotFoundError:
            return status  # completed but no URL any more (expired): download() says so
        return dataclasses.replace(
            status,
            download_url=data.get("download_url") or None,
            expires_at=parse_datetime(data.get("expires_at")) or status.expires_at,
        )

    def _within_grace(self) -> bool:
        age = (clock().now() - self.created_at).total_seconds()
        return age < self.not_found_grace

    def wait(
        self,
        *,
        timeout: float | None = 600.0,
        on_status: Callable[[ExportStatus], None] | None = None,
    ) -> ExportStatus:
        """Poll until the export is ready.

        Polls with exponential backoff between the bounds of ``client.poll_interval``. A 404
        within :attr:`not_found_grace` seconds of creation counts as "not visible yet".

        Parameters
        ----------
        timeout
            Wall-clock seconds to wait; ``None`` waits for ever.
        on_status
            Called with every status observed.

        Returns
        -------
        ExportStatus
            The ready status (with ``download_url``).

        Raises
        ------
        ExportFailedError
            The server reports the export failed (its credits are refunded).
        ExportTimeoutError
            ``timeout`` passed; the job (``exc.job``) can be resumed later.
        """
        unknown: str | None = None
        for pause in self._client.retry.polling(timeout).pauses():
            sleep(pause)
            try:
                status = self.refresh()
            except NotFoundError:
                if not self._within_grace():
                    raise
                continue
            if status.unknown_word is not None and unknown is None:
                unknown = status.unknown_word
                logger.warning(
                    "export %s: the server answers a status word this version "
                    "does not know (%r); waiting as if it were 'processing'",
                    self.job_id,
                    unknown,
                )
            if on_status is not None:
                on_status(status)
            if status.status == "ready":
                return status
            if status.status == "failed":
                self.set_state("failed")
                message = status.error or "the server reported the export as failed"
                raise ExportFailedError(
                    f"export {self.job_id} failed: {message} (its credits are refunded)",
                    job=self,
                )
        last = self.last_status.word if self.last_status is not None else None
        seen = (
            f" (the server kept answering {last!r}, a status this version does not know)"
            if unknown is not None and last == unknown
            else (f" (its last status: {last!r})" if last else "")
        )
        raise ExportTimeoutError(
            f"export {self.job_id} not ready after {timeout} s{seen}; resume it later "
            f"with client.export_job({self.job_id!r})",
            job=self,
        )

    # -- download ------------------------------------------------------------------------

    def part_path(self, path: str | os.PathLike[str]) -> Path:
        """Return the temporary file a download to ``path`` writes into (beside ``path``)."""
        target = Path(path)
        return target.with_name(f".{target.name}.{_safe_name(self.job_id)}.part")

    def _ready_status(self) -> ExportStatus:
        status = self.last_status
        if status is None or not status.has_valid_link:
            status = self.refresh()
        if status.status != "ready":
            status = self.wait()
        if status.download_url is None:
            raise DownloadExpiredError(
                f"export {self.job_id} is ready but the server offers no download link (it "
                "has expired); start a new export",
                job=self,
            )
        return status

    def _fresh_url(self, stale_url: str, expired: bool) -> str:
        """Ask the server for the signed URL again.

        After a 403 (``expired``) the URL must be a new one; after repeated connection
        failures the URL the server gives now is taken, the same one included.
        """
        if not expired:
            try:
                status = self.refresh()
            except (APIError, TransportError):
                return stale_url  # cannot ask now: keep trying the old one
            return (
                status.download_url
                if status.has_valid_link and status.download_url
                else (stale_url)
            )
        try:
            status = self.refresh()
        except APIError as exc:
            raise DownloadExpiredError(
                f"the download link of export {self.job_id} expired and the server gave no "
                f"new one ({exc.status}); start a new export",
                job=self,
            ) from exc
        url = status.download_url
        if url == stale_url or not link_is_valid(url, status.expires_at):
            raise DownloadExpiredError(
                f"the download link of export {self.job_id} expired and the server offers no "
                "fresh one; start a new export",
                job=self,
            )
        return cast(str, url)

    def download(
        self,
        path: str | os.PathLike[str],
        *,
        on_bytes: OnBytes | None = None,
        chunk_size: int = 1 << 20,
        mark_done: bool = True,
    ) -> Path:
        """Download the export's CSV to ``path`` (waiting for it first if needed).

        The body streams into a temporary file beside ``path`` (see :meth:`part_path`); a
        dropped connection or a short body resumes with a ``Range`` request; an expired signed
        URL (403 from storage) is replaced by a fresh one when the server offers it. The byte
        count is checked against ``Content-Length`` / ``Content-Range`` before the file is
        moved into place with :func:`os.replace`, so ``path`` never holds a partial file. On
        failure the temporary file stays, and the next call resumes from it.

        Parameters
        ----------
        path
            Destination file.
        on_bytes
            Called as ``on_bytes(bytes_so_far, total_or_None)`` after each chunk.
        chunk_size
            Bytes per read.
        mark_done
            Mark the handle ``"done"`` once the file is in place (``read_spherescout`` passes
            ``False``: its job is done only when the rows reached the caller).

        Returns
        -------
        pathlib.Path
            ``path``.

        Raises
        ------
        DownloadExpiredError
            The signed URL expired and no fresh one could be had.
        TransportError
            The download kept failing without progress.
        """
        target = Path(path)
        part = self.part_path(target)
        url = cast(str, self._ready_status().download_url)
        if self._download is None or self._download.part != part:
            self._download = RangedDownload(
                self._client.transport,
                part,
                name=f"export {self.job_id}",
                fresh_url=self._fresh_url,
                max_bytes=paid_bytes(self.lead_count),
            )
        try:
            url = self._download.run(url, on_bytes=on_bytes, chunk_size=chunk_size)
        except DownloadExpiredError:
            raise
        except APIError as exc:
            if exc.status != 403:
                raise
            raise DownloadExpiredError(
                f"the storage refused the fresh download link of export {self.job_id}",
                job=self,
            ) from None
        promote(part, target)
        if self.history_id is None:
            self.history_id = self._find_history_id(url)
        self.set_state("done" if mark_done else self.state)
        return target

    def _find_history_id(self, url: str) -> int | None:
        """Find this export's history entry (the parent of later deltas); free.

        A few tries (``retry.LOOKUP``): a cache entry without it could not be refreshed by
        delta. ``None`` when the history stays unreadable or does not list it.
        """

        def again(exc: Exception) -> float | None:
            return 0.0 if isinstance(exc, TransportError | ServerError | RateLimitError) else None

        try:
            entry = retry.call_with_retries(
                retry.LOOKUP,
                lambda: self.store.newest_export(
                    self.search_id, url=url, row_count=self.lead_count
                ),
                again,
            )
        except (APIError, TransportError):
            return None
        return None if entry is None else entry.id


def naming_paid_exports(exc: AuthenticationError, job_ids: Sequence[str]) -> AuthenticationError:
    """Return ``exc`` saying which paid exports wait and how to resume them once signed in.

    A credential revoked or expired between an export's start and its download must not look
    like money lost: the export is paid, its handle is saved, and any valid credential of the
    account resumes it.
    """
    ids = list(dict.fromkeys(job_ids))
    if not ids or any(f"client.export_job({i!r})" in str(exc) for i in ids):
        return exc
    shown = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
    which = "export" if len(ids) == 1 else "exports"
    waiting = (
        f"The paid {which} {shown} waits for it on this machine: with a valid credential of "
        f"the account (a new API key, or logged in again), client.export_job({ids[0]!r}), or "
        "the same read, resumes it without paying again"
    )
    hint = f"{exc.hint.rstrip('.')}. {waiting}" if exc.hint else waiting
    return AuthenticationError(
        exc.status, exc.detail, exc.body, exc.request_id, hint=hint, method=exc.method, url=exc.url
    )
