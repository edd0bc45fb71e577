"""Export jobs: status, job-level polling, resumable downloads and persisted handles.

An :class:`ExportJob` is a handle on one server-side CSV export. The handle (ids, filters,
lead count, creation time; never a credential or a signed URL) is written as JSON under
``client.state_dir / "jobs"`` as soon as it is known, so an interrupted notebook can pick the
job up again with ``client.export_job(job_id)`` without paying twice.

Two retry scopes, as in google-cloud-bigquery: the transport retries single free requests; this
module runs the job-level poll loop with its own deadline and the download's resume loop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import requests
import urllib3.exceptions

from .errors import (
    APIError,
    DownloadExpiredError,
    ExportError,
    ExportFailedError,
    ExportTimeoutError,
    NotFoundError,
    PermissionDeniedError,
    TransportError,
)
from .filters import Filters
from .models import parse_datetime

if TYPE_CHECKING:
    from .client import Client

__all__ = ["ExportJob", "ExportStatus", "JobStore", "poll_delays"]

_T = TypeVar("_T")
StatusName = Literal["pending", "processing", "ready", "failed"]
Flavor = Literal["docs", "live"]

# Spellings seen for each state; the live API says "completed" where the docs say "ready".
_STATUS_ALIASES: dict[str, StatusName] = {
    "pending": "pending",
    "queued": "pending",
    "processing": "processing",
    "running": "processing",
    "in_progress": "processing",
    "ready": "ready",
    "completed": "ready",
    "complete": "ready",
    "done": "ready",
    "success": "ready",
    "failed": "failed",
    "failure": "failed",
    "error": "failed",
}
_STATUS_FIELDS = ("status", "progress", "lead_count", "download_url", "expires_at", "error")
_HANDLE_VERSION = 1


class _RangeMismatchError(Exception):
    """The storage answered a different byte range than the one asked for."""


#: What a broken body stream raises (requests, urllib3 underneath, or the transport's own).
STREAM_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, TransportError)
_DOWNLOAD_ERRORS = (_RangeMismatchError, *STREAM_ERRORS)


def normalize_status(value: object) -> StatusName:
    """Map a server status word to one of the four documented states.

    Unknown words count as ``"processing"`` (keep polling until the deadline) rather than
    failing a job the server may still finish.
    """
    return _STATUS_ALIASES.get(str(value or "").strip().lower(), "processing")


def parse_timestamp(value: object) -> datetime | None:
    """Parse an ISO-8601 timestamp (``Z``, offset or naive as UTC) to a UTC datetime."""
    moment = parse_datetime(value)
    return None if moment is None else moment.astimezone(UTC)


def optional_int(value: object) -> int | None:
    """Return ``value`` as an int; ``None`` when absent or not a number (lenient JSON)."""
    return _optional(int, value)


def _optional(kind: Callable[[Any], _T], value: object) -> _T | None:
    if value is None or value == "":
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class ExportStatus:
    """One observation of an export's state.

    Attributes
    ----------
    status
        ``"pending"``, ``"processing"``, ``"ready"`` or ``"failed"`` (the live API's
        ``"completed"`` is reported as ``"ready"``).
    progress
        The server's progress figure, when it sends one.
    lead_count
        Number of contacts in the export (the credits it cost).
    download_url
        Pre-signed URL of the CSV once ready; hidden from ``repr`` because it grants access.
    expires_at
        When the signed URL stops working (UTC).
    error
        The server's message when the export failed.
    extra
        Every other field of the answer, as sent.
    """

    status: StatusName
    progress: float | None = None
    lead_count: int | None = None
    download_url: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None
    error: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExportStatus:
        """Build a status leniently from a status answer of either API flavour."""
        error = data.get("error")
        return cls(
            status=normalize_status(data.get("status")),
            progress=_optional(float, data.get("progress")),
            lead_count=optional_int(data.get("lead_count")),
            download_url=data.get("download_url") or None,
            expires_at=parse_timestamp(data.get("expires_at")),
            error=None if error is None else str(error),
            extra={k: v for k, v in data.items() if k not in _STATUS_FIELDS},
        )

    @property
    def is_finished(self) -> bool:
        """Whether the job will not change any more (ready or failed)."""
        return self.status in ("ready", "failed")


def poll_delays(bounds: tuple[float, float], factor: float = 1.5) -> Iterator[float]:
    """Yield the pauses between status polls: exponential from ``bounds[0]``, capped at ``[1]``.

    The documentation recommends polling every 2-5 s with exponential backoff.
    """
    low, high = (max(0.0, float(b)) for b in bounds)
    high = max(low, high)
    delay = low
    while True:
        yield min(delay, high)
        delay = max(delay * factor, 1e-3)


def _safe_name(job_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", job_id)[:120] or "job"


def write_private_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON atomically, readable by the owner only (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # mkstemp creates the file with mode 0600; os.replace makes the write atomic.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o600)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


class JobStore:
    """The directory of persisted export-job handles (one JSON file per job).

    Parameters
    ----------
    directory
        Usually ``client.state_dir / "jobs"``.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"JobStore({str(self.directory)!r})"

    @classmethod
    def of(cls, client: Client) -> JobStore:
        """Return the store of ``client``: ``client.state_dir / "jobs"``."""
        return cls(Path(client.state_dir) / "jobs")

    def path_for(self, job_id: str) -> Path:
        """Return the file that holds the handle of ``job_id``."""
        return self.directory / f"{_safe_name(job_id)}.json"

    def save(self, handle: Mapping[str, Any]) -> Path:
        """Write one handle (as produced by :meth:`ExportJob.to_dict`)."""
        job_id = str(handle.get("task_id") or handle["search_id"])
        path = self.path_for(job_id)
        write_private_json(path, handle)
        return path

    def handles(self) -> list[dict[str, Any]]:
        """Every readable handle, newest first."""
        found: list[dict[str, Any]] = []
        if not self.directory.is_dir():
            return found
        for path in self.directory.glob("*.json"):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # a foreign or damaged file: not ours to fix
            if isinstance(data, dict) and (data.get("search_id") or data.get("task_id")):
                found.append(data)
        found.sort(key=lambda h: str(h.get("created_at") or ""), reverse=True)
        return found

    def handles_for(self, origin: str | None) -> list[dict[str, Any]]:
        """Return the handles of jobs started against ``origin`` (all when it is None).

        A state directory may be shared by clients of several servers (a sandbox and the
        real API); a job only means something to the server that started it.
        """
        found = self.handles()
        if origin is None:
            return found
        return [h for h in found if h.get("origin") in (None, "", origin)]

    def find(self, job_id: str, *, origin: str | None = None) -> dict[str, Any] | None:
        """Return the newest handle (of ``origin``) whose task id or search id is ``job_id``."""
        for handle in self.handles_for(origin):
            if job_id in (handle.get("task_id"), handle.get("search_id")):
                return handle
        return None


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
    """

    #: Seconds after creation during which a 404 from the status endpoint means "not yet".
    not_found_grace: float = 30.0
    #: Consecutive download attempts without progress before giving up.
    max_download_attempts: int = 6

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
        state: str = "active",
    ) -> None:
        self._client = client
        self.search_id = search_id
        self.task_id = task_id
        self.lead_count = lead_count
        self.filters = filters
        self.flavor: Flavor = flavor
        self.created_at = created_at or datetime.now(UTC)
        self.history_id = history_id
        self.state = state
        self.origin = str(getattr(client, "base_url", "") or "")
        self.last_status: ExportStatus | None = None
        self._validator: str | None = None  # ETag of the file being downloaded (If-Range)

    def __repr__(self) -> str:
        return (
            f"ExportJob(task_id={self.task_id!r}, search_id={self.search_id!r}, "
            f"lead_count={self.lead_count!r}, flavor={self.flavor!r}, state={self.state!r})"
        )

    @property
    def job_id(self) -> str:
        """The id that names this job: the task id, else the search id."""
        return self.task_id or self.search_id

    # -- persistence ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Return the persisted handle: ids, filters, counts and times, no credentials."""
        filters = None
        if self.filters is not None:
            filters = {
                k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self.filters).items()
            }
        return {
            "version": _HANDLE_VERSION,
            "task_id": self.task_id,
            "search_id": self.search_id,
            "lead_count": self.lead_count,
            "filters": filters,
            "flavor": self.flavor,
            "origin": self.origin,
            "created_at": self.created_at.isoformat(),
            "history_id": self.history_id,
            "state": self.state,
        }

    @classmethod
    def from_dict(cls, client: Client, data: Mapping[str, Any]) -> ExportJob:
        """Rebuild a job from a handle written by :meth:`to_dict`."""
        raw_filters = data.get("filters")
        filters = Filters.from_any(raw_filters) if isinstance(raw_filters, Mapping) else None
        flavor: Flavor = "live" if data.get("flavor") == "live" else "docs"
        job = cls(
            client,
            search_id=str(data.get("search_id") or ""),
            task_id=data.get("task_id") or None,
            lead_count=optional_int(data.get("lead_count")),
            filters=filters,
            flavor=flavor,
            created_at=parse_timestamp(data.get("created_at")),
            history_id=optional_int(data.get("history_id")),
            state=str(data.get("state") or "active"),
        )
        if data.get("origin"):
            job.origin = str(data["origin"])
        return job

    @property
    def store(self) -> JobStore:
        """Where this job's handle is persisted."""
        return JobStore.of(self._client)

    def save(self) -> Path:
        """Persist the handle now (atomic write, mode 0600)."""
        return self.store.save(self.to_dict())

    def _set_state(self, state: str) -> None:
        self.state = state
        with contextlib.suppress(OSError):  # the handle is a convenience; never fail the job
            self.save()

    # -- status --------------------------------------------------------------------------

    def refresh(self) -> ExportStatus:
        """Ask the server for the job's status once (free)."""
        if self.task_id is not None and self.flavor == "docs":
            data = self._client.transport.get_json(f"/api/download-status/{self.task_id}")
            status = ExportStatus.from_json(data)
        elif self.flavor == "live":
            data = self._client.transport.get_json(f"/api/download-status/{self.search_id}/")
            status = ExportStatus.from_json(data)
            if status.status == "ready" and status.download_url is None:
                status = self._with_live_url(status)
        elif self.history_id is not None:
            status = self._status_from_history(self.history_id)
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
            data = self._client.transport.get_json(f"/api/download-completed-csv/{self.search_id}/")
        except NotFoundError:
            return status  # completed but no URL any more (expired): download() says so
        return dataclasses.replace(
            status,
            download_url=data.get("download_url") or None,
            expires_at=parse_timestamp(data.get("expires_at")) or status.expires_at,
        )

    def _status_from_history(self, history_id: int) -> ExportStatus:
        """Status of a job known only by its history entry (adopted after a lost answer)."""
        for entry in self._client.history.entries():
            if entry.id == history_id:
                return ExportStatus(
                    status=normalize_status(entry.status),
                    lead_count=entry.row_count,
                    download_url=entry.download_url,
                    expires_at=entry.expires_at,
                    extra={"history_id": entry.id, "search_id": entry.search_id},
                )
        raise NotFoundError(404, f"history entry {history_id} not found", None, None)

    def _within_grace(self) -> bool:
        age = (datetime.now(UTC) - self.created_at).total_seconds()
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
        deadline = None if timeout is None else time.monotonic() + timeout
        delays = poll_delays(self._client.poll_interval)
        while True:
            try:
                status: ExportStatus | None = self.refresh()
            except NotFoundError:
                if not self._within_grace():
                    raise
                status = None
            if status is not None:
                if on_status is not None:
                    on_status(status)
                if status.status == "ready":
                    return status
                if status.status == "failed":
                    self._set_state("failed")
                    message = status.error or "the server reported the export as failed"
                    raise ExportFailedError(
                        f"export {self.job_id} failed: {message} (its credits are refunded)",
                        job=self,
                    )
            pause = next(delays)
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ExportTimeoutError(
                        f"export {self.job_id} not ready after {timeout} s; resume it later "
                        f"with client.export_job({self.job_id!r})",
                        job=self,
                    )
                pause = min(pause, remaining)
            time.sleep(pause)

    # -- download ------------------------------------------------------------------------

    def part_path(self, path: str | os.PathLike[str]) -> Path:
        """Return the temporary file a download to ``path`` writes into (beside ``path``)."""
        target = Path(path)
        return target.with_name(f".{target.name}.{_safe_name(self.job_id)}.part")

    def _ready_status(self) -> ExportStatus:
        status = self.last_status
        fresh = (
            status is not None
            and status.status == "ready"
            and status.download_url is not None
            and (status.expires_at is None or status.expires_at > datetime.now(UTC))
        )
        if status is None or not fresh:
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

    def _fresh_url(self, stale_url: str) -> str:
        """Ask the server for a new signed URL after the storage answered 403."""
        try:
            status = self.refresh()
        except APIError as exc:
            raise DownloadExpiredError(
                f"the download link of export {self.job_id} expired and the server gave no "
                f"new one ({exc.status}); start a new export",
                job=self,
            ) from exc
        url = status.download_url
        expired = status.expires_at is not None and status.expires_at <= datetime.now(UTC)
        if url is None or url == stale_url or expired:
            raise DownloadExpiredError(
                f"the download link of export {self.job_id} expired and the server offers no "
                "fresh one; start a new export",
                job=self,
            )
        return url

    def download(
        self,
        path: str | os.PathLike[str],
        *,
        on_bytes: Callable[[int, int | None], None] | None = None,
        chunk_size: int = 1 << 20,
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
        refreshed = False
        failures = 0
        while True:
            offset = part.stat().st_size if part.exists() else 0
            try:
                done, total = self._fetch_into(url, part, offset, on_bytes, chunk_size)
            except PermissionDeniedError:
                if refreshed:
                    raise DownloadExpiredError(
                        f"the storage refused the fresh download link of export {self.job_id}",
                        job=self,
                    ) from None
                url = self._fresh_url(url)
                refreshed = True
                continue
            except (*_DOWNLOAD_ERRORS, APIError) as exc:
                if isinstance(exc, APIError):
                    if exc.status == 416:
                        part.unlink(missing_ok=True)  # our part file does not fit: start over
                    elif exc.status < 500:
                        raise
                done_now = part.stat().st_size if part.exists() else 0
                failures = 0 if done_now > offset else failures + 1
                if failures >= self.max_download_attempts:
                    raise TransportError(
                        f"download of export {self.job_id} failed {failures} times in a row "
                        f"({type(exc).__name__}); call download() again to resume from "
                        f"{done_now} bytes"
                    ) from exc
                time.sleep(min(0.1 * 2**failures, 2.0))
                continue
            if total is None or done == total:
                break
            # A body shorter than announced without an error, or a stale longer part file.
            if done > total:
                part.unlink(missing_ok=True)
            failures = 0 if done > offset else failures + 1
            if failures >= self.max_download_attempts:
                raise TransportError(
                    f"download of export {self.job_id} stopped at {done} of {total} bytes"
                )
        os.replace(part, target)
        if self.history_id is None:
            self.history_id = self._find_history_id(url)
        self._set_state("done")
        return target

    def _find_history_id(self, url: str) -> int | None:
        """Find this export's history entry (the parent of later deltas); free, best effort."""
        try:
            entries = self._client.history.entries()
        except (APIError, TransportError):
            return None
        # The history lists the same signed URL as the status; else the newest matching entry.
        for entry in entries:
            if entry.download_url == url:
                return entry.id
        for entry in entries:
            same_count = self.lead_count is None or entry.row_count == self.lead_count
            if entry.kind == "full" and entry.search_id == self.search_id and same_count:
                return entry.id
        return None

    def _fetch_into(
        self,
        url: str,
        part: Path,
        offset: int,
        on_bytes: Callable[[int, int | None], None] | None,
        chunk_size: int,
    ) -> tuple[int, int | None]:
        """One GET of the signed URL from ``offset``; return (bytes in ``part``, total)."""
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        if offset and self._validator:
            # If the object changed since our first part, the storage sends all of it (200).
            headers["If-Range"] = self._validator
        response = self._client.transport.download(url, headers=headers)
        with contextlib.closing(response):
            validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
            if validator and (response.status_code == 200 or not self._validator):
                self._validator = validator
            total: int | None
            mode: Literal["wb", "ab"]
            if response.status_code == 206:
                start, total = _content_range(response.headers.get("Content-Range"))
                if start != offset:
                    part.unlink(missing_ok=True)  # not the range we asked for: start over
                    raise _RangeMismatchError(f"asked for byte {offset}, got {start}")
                mode = "ab"
            else:
                offset, mode = 0, "wb"  # the server ignored Range: whole body
                total = optional_int(response.headers.get("Content-Length"))
            report = on_bytes
            progress = None if report is None else (lambda n: report(n, total))
            done = write_body(response, part, mode=mode, start=offset, chunk_size=chunk_size,
                              on_bytes=progress)  # fmt: skip
        return done, total


def write_body(
    response: requests.Response,
    path: Path,
    *,
    mode: Literal["wb", "ab"] = "wb",
    start: int = 0,
    chunk_size: int = 1 << 20,
    on_bytes: Callable[[int], None] | None = None,
) -> int:
    """Stream a response body into ``path`` (a part file) and fsync it.

    Returns ``start`` plus the bytes written; ``on_bytes`` gets that running figure after
    each piece. The caller moves the part file into place once it checked the count.
    """
    done = start
    with open(path, mode, buffering=chunk_size) as sink:
        for chunk in _body_pieces(response, chunk_size):
            sink.write(chunk)
            done += len(chunk)
            if on_bytes is not None:
                on_bytes(done)
        sink.flush()
        os.fsync(sink.fileno())
    return done


def _body_pieces(response: requests.Response, chunk_size: int) -> Iterator[bytes]:
    """Yield the body as it arrives, at most ``chunk_size`` bytes at a time.

    ``read1`` hands over whatever has arrived, so the bytes received before a connection
    drops reach the part file (``iter_content`` would lose a partly filled chunk).
    """
    raw = response.raw
    read1 = getattr(raw, "read1", None)
    if read1 is None:  # not urllib3 underneath: fall back to requests' iterator
        yield from (c for c in response.iter_content(chunk_size=chunk_size) if c)
        return
    while True:
        piece = read1(chunk_size, decode_content=True)
        if not piece:
            return
        yield piece


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """Parse ``bytes START-END/TOTAL`` into (start, total)."""
    match = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*", value or "")
    if match is None:
        return None, None
    total = None if match.group(2) == "*" else int(match.group(2))
    return int(match.group(1)), total
