"""Which export is this? Saved job handles and the export history, asked in one place.

Handles are JSON files under ``client.state_dir / "jobs"`` (mode 0600, directory 0700), one
per job, written atomically (:func:`scoutframe.files.write_private_json`). A paid export file
waits in ``client.state_dir / "downloads"`` (0600 in a 0700 directory) until its rows reached
the caller, so that an interrupted read resumes it instead of paying again; nothing with
contact data goes to the system's temporary directory. A state directory
may be shared by clients of several servers (a sandbox and the real API): a handle only means
something to the origin that started it, so every question is asked for one origin.

Every caller that needs to know "which saved job or history entry is this search id or task
id" asks a :class:`JobStore`; nothing else walks the handles or the history.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..clock import clock
from ..errors import APIError, ExportError, FilterError, TransportError
from ..files import private_directory, write_private_json
from ..models import HandleState, HistoryEntry, JobHandle
from .filters import Filters

if TYPE_CHECKING:
    from .client import Client

__all__ = ["JobStore", "SearchRecord", "filters_from"]


#: A job id used as it is in file names: what the API hands out (``task_9c1f``, ``srch_…``).
_PLAIN_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,79}")


def _safe_name(job_id: str) -> str:
    """Return the file-name stem of a job id; an id from the server never steers the path.

    A plain id is used as it is. Any other (with ``/``, ``..``, NUL, a leading dot, or
    hundreds of characters) keeps a readable, sanitised prefix and gets a hash of the whole
    id, so two ids never share a file and none leaves, or hides in, its directory.
    """
    if _PLAIN_ID.fullmatch(job_id):
        return job_id
    readable = re.sub(r"[^A-Za-z0-9_-]", "_", job_id)[:40].strip("_") or "job"
    digest = hashlib.sha256(job_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{readable}-{digest}"


@dataclass(frozen=True)
class SearchRecord:
    """What this client knows of a search id: where it was found, its size and filters."""

    where: str
    row_count: int | None
    filters: Filters | None


class JobStore:
    """Saved export handles of one client (one origin), and its export history.

    Parameters
    ----------
    client
        Its ``state_dir`` holds the handles, its ``base_url`` is the origin they belong to,
        and its ``history`` answers the questions handles cannot.
    """

    #: Handles of delivered exports are kept this long: their signed links live 30 days, and
    #: a re-run of the same read downloads them again for free while nothing is new.
    KEEP_DONE_DAYS = 31
    #: Handles of failed (refunded) exports are kept this long, for ``list_saved``.
    KEEP_FAILED_DAYS = 1

    def __init__(self, client: Client) -> None:
        self._client = client
        self.directory = Path(client.state_dir) / "jobs"
        self.downloads = Path(client.state_dir) / "downloads"
        self.origin = client.base_url

    def __repr__(self) -> str:
        return f"JobStore({str(self.directory)!r})"

    # -- handles -------------------------------------------------------------------------

    def path_for(self, job_id: str) -> Path:
        """Return the file that holds the handle of ``job_id``."""
        return self.directory / f"{_safe_name(job_id)}.json"

    def save(self, handle: JobHandle) -> Path:
        """Write one handle (atomic, mode 0600)."""
        path = self.path_for(handle.job_id)
        write_private_json(path, handle.to_json())
        return path

    def remove(self, job_id: str) -> None:
        """Forget a handle (a provisional one replaced by the started job, say)."""
        self.path_for(job_id).unlink(missing_ok=True)

    #: Seconds a read waits for another read of the same search (threads or processes sharing
    #: this state directory) before giving up.
    SEARCH_LOCK_SECONDS = 3600.0

    @contextlib.contextmanager
    def search_lock(self, filters: Filters | None, search_id: str | None) -> Iterator[None]:
        """Hold the lock of one search's export reads: one at a time on this machine.

        Two reads of the same search at once (threads of one client, notebooks, processes)
        would each find no export and each buy one; under this lock the second finds the
        first one's export and reads it without paying. Reentrant within a thread.

        Raises
        ------
        ExportError
            Another read of the search held it for :attr:`SEARCH_LOCK_SECONDS`.
        """
        import filelock  # on use: only export reads need it

        key = filters.cache_key if filters is not None else f"search_id={search_id}"
        name = hashlib.sha256(f"{self.origin}\n{key}".encode()).hexdigest()[:32]
        private_directory(self.directory)
        path = self.directory / f".search-{name}.lock"
        lock = filelock.FileLock(path, mode=0o600, is_singleton=True)
        try:
            lock.acquire(timeout=self.SEARCH_LOCK_SECONDS)
        except filelock.Timeout:
            raise ExportError(
                f"another read of this search (in this process or another one using the state "
                f"directory {self._client.state_dir}) has been running for "
                f"{self.SEARCH_LOCK_SECONDS / 60:g} minutes; wait for it to finish (this read "
                "then takes its export without paying again), or end it"
            ) from None
        try:
            yield
        finally:
            lock.release()

    def download_path(self, job_id: str) -> Path:
        """Where the paid file of ``job_id`` waits until its rows reached the caller."""
        private_directory(self.downloads)
        return self.downloads / f"{_safe_name(job_id)}.csv"

    def prune(self) -> int:
        """Drop old handles of delivered or failed exports, and paid files no handle claims.

        Active and provisional handles are never dropped: they stand for money spent.
        Returns how many files were removed.
        """
        now = clock().now()
        removed = 0
        kept: set[str] = set()
        for handle in self.handles():
            age = (now - handle.created_at).days
            stale = (handle.state == "done" and age > self.KEEP_DONE_DAYS) or (
                handle.state == "failed" and age > self.KEEP_FAILED_DAYS
            )
            if stale:
                self.remove(handle.job_id)
                removed += 1
            else:
                kept.add(f"{_safe_name(handle.job_id)}.csv")
        if self.downloads.is_dir():
            for path in self.downloads.glob("*.csv"):
                if path.name not in kept and not _claimed_elsewhere(path, self.directory):
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed

    def handles(self, *, states: Iterable[HandleState] | None = None) -> list[JobHandle]:
        """Return this origin's readable handles, newest first (only in ``states``, if given)."""
        wanted = None if states is None else set(states)
        found: list[JobHandle] = []
        if not self.directory.is_dir():
            return found
        for path in self.directory.glob("*.json"):
            try:
                data: Any = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # a foreign or damaged file: not ours to fix
            if not isinstance(data, dict) or not (data.get("search_id") or data.get("task_id")):
                continue
            handle = JobHandle.from_json(data)
            if handle.origin not in ("", self.origin):
                continue
            if wanted is None or handle.state in wanted:
                found.append(handle)
        found.sort(key=lambda h: h.created_at, reverse=True)
        return found

    def find(self, job_id: str) -> JobHandle | None:
        """Return the newest handle whose task id or search id is ``job_id``."""
        for handle in self.handles():
            if job_id in (handle.task_id, handle.search_id):
                return handle
        return None

    def same_search(
        self,
        filters: Filters | None,
        search_id: str | None,
        *,
        states: Iterable[HandleState],
    ) -> list[JobHandle]:
        """Return the handles of the same search (same canonical filters, else search id)."""
        key = None if filters is None else filters.cache_key
        out = []
        for handle in self.handles(states=states):
            theirs = filters_from(handle.filters)
            if key is not None and theirs is not None:
                same = theirs.cache_key == key
            else:
                same = bool(search_id) and handle.search_id == search_id
            if same:
                out.append(handle)
        return out

    # -- history -------------------------------------------------------------------------

    def entries(self) -> list[HistoryEntry]:
        """Return the account's export history, newest first (one free request)."""
        return self._client.history.entries()

    def entry(self, history_id: int) -> HistoryEntry | None:
        """Return the history entry ``history_id``, or ``None``."""
        return next((e for e in self.entries() if e.id == history_id), None)

    def newest_export(
        self,
        search_id: str,
        *,
        after_id: int | None = None,
        url: str | None = None,
        row_count: int | None = None,
        made_by: datetime | None = None,
    ) -> HistoryEntry | None:
        """Return the newest full export of ``search_id`` in the history.

        Parameters
        ----------
        after_id
            Only entries newer than this one (made after a start whose answer was lost).
        url
            Prefer the entry that lists this signed URL (the job's own).
        row_count
            Only entries of this size, when known.
        made_by
            Only entries made no later than this time (the export a cache entry was filled
            from, when its id could not be learnt then).
        """
        entries = self.entries()
        if url is not None:
            for entry in entries:
                if entry.download_url == url:
                    return entry
        for entry in entries:
            if entry.kind != "full" or entry.search_id != search_id:
                continue
            if after_id is not None and entry.id <= after_id:
                continue
            if row_count is not None and entry.row_count not in (None, row_count):
                continue
            if made_by is not None and entry.created_at is not None and entry.created_at > made_by:
                continue
            return entry
        return None

    def newest_delta(self, parent: int) -> HistoryEntry | None:
        """Return the newest delta taken from history entry ``parent`` (a paid file's own)."""
        deltas = [e for e in self.entries() if e.kind == "delta" and e.parent_id == parent]
        return max(deltas, key=lambda e: e.id, default=None)

    def newest_id(self) -> int | None:
        """Return the newest history entry id (the baseline of a charging start), or ``None``."""
        entries = self.entries()
        return max((e.id for e in entries), default=None)

    # -- search ids ----------------------------------------------------------------------

    def describe(self, search_id: str) -> SearchRecord | None:
        """Tell what is known of ``search_id``: a saved handle first, else the history."""
        handle = self.find(search_id)
        filters = None if handle is None else filters_from(handle.filters)
        if handle is not None and filters is not None:
            return SearchRecord("a saved export handle", handle.lead_count, filters)
        try:
            entry = next((e for e in self.entries() if e.search_id == search_id), None)
        except (APIError, TransportError):
            entry = None
        if handle is not None:  # the handle names the search; the history may know its filters
            known = None if entry is None else filters_from(entry.filters)
            return SearchRecord("a saved export handle", handle.lead_count, known)
        if entry is not None:
            return SearchRecord("the export history", entry.row_count, filters_from(entry.filters))
        return None

    def filters_of(self, search_id: str) -> Filters | None:
        """Return the filters of a search exported before, or ``None`` when unknown here."""
        record = self.describe(search_id)
        return None if record is None else record.filters


def _claimed_elsewhere(path: Path, jobs: Path) -> bool:
    """Whether a handle of another origin (same state directory) claims this paid file."""
    return (jobs / f"{path.stem}.json").exists()


def filters_from(data: Any) -> Filters | None:
    """Read filters from a handle or history entry; ``None`` when absent or unreadable."""
    if not data:
        return None
    try:
        return Filters.from_any(data)
    except (FilterError, TypeError, ValueError):
        return None
