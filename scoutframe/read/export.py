"""A read by export that never pays twice for the same data.

Before anything is bought, the saved handles of the same search are asked, newest first:

* a *provisional* handle (a start that died in flight) is settled: the export it made is
  adopted from the history, for free;
* an *active* handle (paid, not yet delivered) is resumed: its file, if it was downloaded,
  is read again; else it is waited for and downloaded;
* a *done* handle whose link is still valid, and whose history entry ``freshness`` says has
  nothing new, is downloaded again for free.

Only then is an export started (the read has the caller's consent by now). The paid file
waits under ``client.state_dir / "downloads"`` until the rows reached the caller (the whole
frame returned, or the chunk iterator exhausted); an interrupt or an error at any point leaves
the handle and the file, and the next identical call resumes them without paying again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from ..api.jobs import ExportJob
from ..errors import (
    APIError,
    AuthenticationError,
    ExportParseError,
    InsufficientCreditsError,
    NotFoundError,
    PermissionDeniedError,
    TransportError,
)
from ..progress import Bar, notify
from ..tables import exportcsv
from ..tables.exportcsv import ContractCheck
from .consent import check_spending
from .sources import DriftWatch, Facts

if TYPE_CHECKING:
    from ..api.filters import Filters
    from ..models import ExportStatus, JobHandle
    from .plan import Planned
    from .request import ReadRequest

__all__ = ["ExportSource"]

logger = logging.getLogger("scoutframe.read")

#: What pyarrow, the codecs and the OS raise on a file that cannot be parsed.
_PARSE_ERRORS = (pa.ArrowInvalid, UnicodeDecodeError, ValueError, OSError)


class ExportSource:
    """An export (adopted, resumed, downloaded again or started), parsed by pyarrow."""

    def __init__(self, request: ReadRequest, planned: Planned) -> None:
        self.request = request
        self.planned = planned
        self.drift = DriftWatch()
        self.search_id = planned.plan.search_id
        self.total_count = planned.plan.total_count
        self.job: ExportJob | None = None
        self.paid_now = False
        self.note = ""
        self.path: Path | None = None
        self._delivered = False

    # -- what the read knows ------------------------------------------------------------------

    def facts(self) -> Facts:
        """Return the search, the job and what this read paid for it."""
        job = self.job
        if job is None:
            return Facts(search_id=self.search_id, total_count=self.total_count)
        return Facts(
            search_id=job.search_id or self.search_id,
            total_count=self.total_count if self.total_count is not None else job.lead_count,
            credits_spent=(job.lead_count or 0) if self.paid_now else 0,
            task_id=job.task_id,
            history_id=job.history_id,
            note=self.note,
        )

    # -- the rows ---------------------------------------------------------------------------

    def _search_lock(self) -> AbstractContextManager[None]:
        return self.request.client.job_store.search_lock(self.planned.filters, self.search_id)

    def tables(self, rows: int | None) -> Iterator[pa.Table]:
        """Find or buy the export, fetch its file, yield tables (one when ``rows`` is None).

        Under the search's lock (:meth:`JobStore.search_lock
        <scoutframe.api.jobstore.JobStore.search_lock>`) from the decision to buy to the last
        table: a second read of the same search waits, then reads this export for free.
        """
        try:
            with self._search_lock():
                job = self.job = self._find_or_start()
                path = self.path = self._fetch(job)
                yield from self._parse(job, path, rows)
        except KeyboardInterrupt as exc:
            self.note_interrupt(exc)
            raise
        except GeneratorExit:
            if self.job is not None and not self._delivered:
                notify(self._resume_hint())
            raise

    def delivered(self) -> None:
        """Learn that the rows reached the caller: remove the paid file, mark the job done.

        Under the search's lock: a read of the same search that took the file meanwhile
        finishes reading it first.
        """
        self._delivered = True
        job = self.job
        if job is None:
            return
        with self._search_lock():
            if self.path is not None:
                self.path.unlink(missing_ok=True)
            job.set_state("done")

    def note_interrupt(self, exc: BaseException) -> None:
        """Add to a Ctrl-C what happened to the money and how to go on."""
        if self.job is None:
            sid = self.search_id or "?"
            exc.add_note(
                f"scoutframe: the export start of search {sid} was interrupted; it may have "
                "been charged. Run the same call again: it finds that export in the history "
                "and adopts it without paying again (a provisional handle is saved)"
            )
        elif not self._delivered:
            exc.add_note(f"scoutframe: {self._resume_hint()}")

    def _resume_hint(self) -> str:
        job = self.job
        assert job is not None
        where = ""
        if self.path is not None and self.path.exists():
            where = f"; its file is kept at {self.path}"
        return (
            f"export {job.job_id} is paid for and its handle is saved{where}; run the same "
            "read_spherescout call again to read it without paying again (or "
            f"client.export_job({job.job_id!r}).download(path))"
        )

    # -- steps --------------------------------------------------------------------------------

    def _find_or_start(self) -> ExportJob:
        client = self.request.client
        job = self._reuse()
        if job is not None:
            return job  # paid for already: free, whatever the budget
        check_spending(self.request, self.planned.plan)  # consent and budget, before paying
        target: Filters | str
        if self.planned.filters is not None:
            target = self.planned.filters
        else:
            assert self.search_id is not None  # one of the two is always set
            target = self.search_id
        try:
            job = client.exports.start(target, max_credits=self.request.max_credits)
        except InsufficientCreditsError as exc:
            raise _with_pages_hint(exc) from exc
        self.paid_now = True
        notify(
            f"export {job.job_id} of search {job.search_id} started: "
            f"{job.lead_count or 0:,} credits charged ({self.planned.plan.why})"
        )
        return job

    def _reuse(self) -> ExportJob | None:
        """Return an export of this search this client holds already (read without paying)."""
        client = self.request.client
        client.job_store.prune()
        candidates = client.job_store.same_search(
            self.planned.filters, self.search_id, states=("provisional", "active", "done")
        )
        checked_done = False
        for handle in candidates:  # newest first
            if handle.state == "provisional":
                job = client.exports.settle(handle)
                if job is not None:
                    self.note = f"; adopted export {job.job_id}, paid by an interrupted start"
                    return job
            elif handle.state == "active":
                job = self._resumable(handle)
                if job is not None:
                    self.note = f"; resumed export {job.job_id}, paid by an earlier read"
                    return job
            elif not checked_done:
                checked_done = True  # only the newest delivered export is worth a look
                job = self._unchanged(handle)
                if job is not None:
                    return job
        return None

    def _resumable(self, handle: JobHandle) -> ExportJob | None:
        client = self.request.client
        job = ExportJob.from_handle(client, handle)
        if client.job_store.download_path(job.job_id).exists():
            return job  # downloaded whole before the interruption: read it again
        try:
            status = job.refresh()
        except (NotFoundError, AuthenticationError, PermissionDeniedError):
            return None  # a definite answer: gone, or not this account's: start afresh
        except (APIError, TransportError) as exc:
            # A passing failure says nothing about the export: never buy it again for that.
            exc.add_note(
                f"scoutframe: export {job.job_id} of this search is paid for and its handle "
                "is kept; run the same call again in a moment to resume it without paying again"
            )
            raise
        if status.status == "failed":
            return None
        if status.status == "ready" and not status.has_valid_link:
            job.set_state("done")  # paid, but its link expired: nothing left to fetch
            return None
        return job

    def _unchanged(self, handle: JobHandle) -> ExportJob | None:
        """Return the newest delivered export when nothing is new (downloaded again for free)."""
        client = self.request.client
        job = ExportJob.from_handle(client, handle)
        if job.history_id is None:
            return None
        try:
            if not job.refresh().has_valid_link:
                return None
            fresh = client.history.freshness(job.history_id)
        except (NotFoundError, AuthenticationError, PermissionDeniedError):
            return None  # a definite answer: that export is gone for this account
        except (APIError, TransportError) as exc:
            # Whether it could be downloaded again for free is unknown: ask again, don't buy.
            exc.add_note(
                f"scoutframe: export {job.job_id} of this search may still be downloadable for "
                "free; run the same call again in a moment rather than buying a new one"
            )
            raise
        if fresh.is_fresh:
            self.note = f"; nothing is new since export {job.job_id}: downloaded again for free"
            job.state = "active"
            return job
        notify(
            f"{fresh.new_count:,} contacts are new or updated since export {job.job_id} of this "
            "search, so this read buys a new export; read_spherescout(..., cache=True) keeps "
            "the result and pays only for what changed"
        )
        return None

    def _fetch(self, job: ExportJob) -> Path:
        """Wait for the export and download it into the state directory (if not there yet)."""
        request = self.request
        path = request.client.job_store.download_path(job.job_id)
        if path.exists():
            return path
        job.set_state("active")
        with Bar.export(request.progress) as bar:
            job.wait(on_status=_export_status_callback(bar))
        with Bar.download(request.progress) as bar:

            def on_bytes(done: int, total: int | None) -> None:
                bar.set_total(total)
                bar.set_progress(done)

            return job.download(path, on_bytes=on_bytes, mark_done=False)

    def _parse(self, job: ExportJob, path: Path, rows: int | None) -> Iterator[pa.Table]:
        request = self.request
        paid = job.lead_count if request.nrows is None else None
        try:
            check = ContractCheck(path, expected_rows=paid)
        except _PARSE_ERRORS as exc:
            raise _parse_error(job, path, exc) from exc
        if check.header_problems():
            raise _broken(job, path, check.header_problems())
        with Bar.rows(request.progress, self.facts().total_count, "parsing") as bar:
            try:
                if rows is None:
                    parts: Iterator[pa.Table] = iter(
                        [
                            exportcsv.read_csv(
                                path, columns=request.columns, nrows=request.nrows, warn_drift=False
                            )
                        ]
                    )
                else:
                    parts = exportcsv.iter_csv(
                        path,
                        chunksize=rows,
                        columns=request.columns,
                        nrows=request.nrows,
                        warn_drift=False,
                    )
                for table in _guarded(parts, job, path):
                    bar.update(table.num_rows)
                    check.feed(table)
                    yield self.drift.check(table)
            except ExportParseError:
                raise
            except _PARSE_ERRORS as exc:
                raise _parse_error(job, path, exc) from exc
        if check.problems():
            raise _broken(job, path, check.problems())


def _guarded(parts: Iterator[pa.Table], job: ExportJob, path: Path) -> Iterator[pa.Table]:
    """Turn a parse failure into :class:`ExportParseError` (the file stays for a re-read)."""
    while True:
        try:
            table = next(parts)
        except StopIteration:
            return
        except _PARSE_ERRORS as exc:
            raise _parse_error(job, path, exc) from exc
        yield table


def _parse_error(job: ExportJob, path: Path, exc: BaseException) -> ExportParseError:
    reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return ExportParseError(
        f"the file of export {job.job_id} could not be read ({type(exc).__name__}: {reason}). "
        f"It is paid for and kept at {path}: read it with scoutframe.read_export_csv(path) "
        "once the cause is fixed, or run the same call again (it will not pay again)",
        job=job,
        path=path,
    )


def _broken(job: ExportJob, path: Path, problems: list[str]) -> ExportParseError:
    return ExportParseError(
        f"the file of export {job.job_id} does not match the export format: "
        f"{'; '.join(problems)}. The server sent a broken export; it is kept at {path}. Run "
        "the same call again later (it will not pay again), and report it to SphereScout "
        "support if it persists",
        job=job,
        path=path,
    )


def _with_pages_hint(exc: InsufficientCreditsError) -> InsufficientCreditsError:
    hint = (
        "Nothing was charged. Buy credits, narrow the filters, or read the same contacts "
        "for free by pages: method='pages' (emails masked)"
    )
    return InsufficientCreditsError(exc.status, exc.detail, exc.body, exc.request_id, hint=hint)


def _export_status_callback(bar: Bar) -> Callable[[ExportStatus], None]:
    def on_status(status: ExportStatus) -> None:
        if status.progress is not None:
            bar.set_progress(status.progress * 100 if status.progress <= 1 else status.progress)
        if status.status == "ready":
            bar.set_progress(100)
        bar.status(status.status)

    return on_status
