"""Where a read's rows come from: the search's pages, or an export. Each yields Arrow tables.

A source is made from a :class:`~scoutframe.read.plan.Planned` read; :meth:`tables` runs it
(nothing happens before the first table is asked for) and :meth:`facts` tells what it learnt
(search id, count, credits, task, history entry), final once the tables are exhausted.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from .. import frames
from ..progress import Bar
from ..schema import SchemaDriftWarning, drift_columns, drift_message, warn_from_caller
from .pages import PageWalker, batched_tables

if TYPE_CHECKING:
    from ..filters import Filters
    from ..jobs import ExportJob
    from ..models import ExportStatus
    from .plan import Planned
    from .request import ReadRequest

__all__ = ["ExportSource", "Facts", "PagesSource", "Source", "make_source"]

logger = logging.getLogger("scoutframe.read")


@dataclass(frozen=True)
class Facts:
    """What a source knows of the data it produced (for the provenance)."""

    search_id: str | None
    total_count: int | None
    credits_spent: int = 0
    task_id: str | None = None
    history_id: int | None = None


class Source(Protocol):
    """A read's rows as Arrow tables."""

    def tables(self, rows: int | None) -> Iterator[pa.Table]:
        """Yield tables of ``rows`` rows (the last may be shorter); ``None``: any size."""
        ...

    def facts(self) -> Facts:
        """Return what is known so far (final once :meth:`tables` is exhausted)."""
        ...


class DriftWatch:
    """Warns once per read about each column the schema does not know."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def check(self, table: pa.Table) -> pa.Table:
        """Warn about the table's new unknown columns; return the table."""
        new = [c for c in drift_columns(table) if c not in self._seen]
        if new:
            self._seen.update(new)
            warn_from_caller(drift_message(new), SchemaDriftWarning)
        return table


#: Rows per Arrow table built from page records when no chunk size is asked for.
PAGE_TABLE_ROWS = 5_000


class PagesSource:
    """The search's pages (free, emails masked), deduplicated and reconciled."""

    def __init__(self, request: ReadRequest, planned: Planned) -> None:
        assert planned.filters is not None  # pages are only planned with filters
        self.request = request
        self.planned = planned
        self.walker = PageWalker(request.client, planned.filters, nrows=request.nrows,
                                 concurrency=request.concurrency, progress=request.progress)
        self.total_count = planned.plan.total_count
        self.drift = DriftWatch()

    def tables(self, rows: int | None) -> Iterator[pa.Table]:
        """Yield the pages' records as tables of ``rows`` rows."""
        walker = self.walker
        to_table = self._records_table
        for table in batched_tables(walker.records(self.planned.first_page),
                                    rows or PAGE_TABLE_ROWS, to_table):  # fmt: skip
            self.total_count = walker.total_count  # a later pass may have seen a new count
            yield table
        self.total_count = walker.total_count

    def _records_table(self, records: list[dict[str, Any]]) -> pa.Table:
        table = frames.records_to_table(records, columns=self.request.columns, warn_drift=False)
        return self.drift.check(table)

    def facts(self) -> Facts:
        """Return the search and its latest count."""
        return Facts(search_id=self.planned.plan.search_id, total_count=self.total_count)


class ExportSource:
    """An export job (started, or resumed when this client saved one), parsed by pyarrow."""

    def __init__(self, request: ReadRequest, planned: Planned) -> None:
        self.request = request
        self.planned = planned
        self.drift = DriftWatch()
        self.search_id = planned.plan.search_id
        self.total_count = planned.plan.total_count
        self.job: ExportJob | None = None

    def facts(self) -> Facts:
        """Return the search, the job and what it cost."""
        job = self.job
        if job is None:
            return Facts(search_id=self.search_id, total_count=self.total_count)
        return Facts(
            search_id=job.search_id or self.search_id,
            total_count=self.total_count if self.total_count is not None else job.lead_count,
            credits_spent=job.lead_count or 0,
            task_id=job.task_id,
            history_id=job.history_id,
        )

    def tables(self, rows: int | None) -> Iterator[pa.Table]:
        """Run the export, then yield its CSV as tables (one table when ``rows`` is None)."""
        request = self.request
        with (
            self._export_csv() as path,
            Bar.rows(request.progress, self.facts().total_count, "parsing") as bar,
        ):
            if rows is None:
                parts: Iterator[pa.Table] = iter([frames.read_csv(
                    path, columns=request.columns, nrows=request.nrows, warn_drift=False)])
            else:
                parts = frames.iter_csv(path, chunksize=rows, columns=request.columns,
                                        nrows=request.nrows, warn_drift=False)  # fmt: skip
            for table in parts:
                bar.update(table.num_rows)
                yield self.drift.check(table)

    @contextlib.contextmanager
    def _export_csv(self) -> Iterator[Path]:
        """Run the export job and stream its CSV into a temporary directory, removed on exit.

        The directory goes on every exit, an error or Ctrl-C included, part file and all.
        """
        request = self.request
        job = self._saved_job()
        if job is not None:
            logger.info("read_spherescout: resuming export %s, started and paid for by an "
                        "earlier read of the same search (no new charge)", job.job_id)
        else:
            target: Filters | str
            if self.planned.filters is not None:
                target = self.planned.filters
            else:
                assert self.search_id is not None  # one of the two is always set
                target = self.search_id
            job = request.client.exports.start(target, max_credits=request.max_credits)
        self.job = job
        directory: Path | None = None
        try:
            with Bar.export(request.progress) as bar:
                job.wait(on_status=_export_status_callback(bar))
            directory = Path(tempfile.mkdtemp(prefix="scoutframe-"))
            with Bar.download(request.progress) as bar:

                def on_bytes(done: int, total: int | None) -> None:
                    bar.set_total(total)
                    bar.set_progress(done)

                path = job.download(directory / "export.csv", on_bytes=on_bytes)
        except KeyboardInterrupt as exc:
            exc.add_note(
                f"scoutframe: export {job.job_id} is paid for and its handle is saved; run the "
                "same read_spherescout call again to resume it without paying again (or "
                f"client.export_job({job.job_id!r}).wait() then .download(path))"
            )
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)
            raise
        except BaseException:
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)
            raise
        try:
            yield path
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def _saved_job(self) -> ExportJob | None:
        """Return an active export of this search saved by an earlier (interrupted) read.

        Matches on the canonical filters, else the search id, among the handles this client's
        origin saved; a job that failed, or whose download link expired, is not reused. The
        check is one free status request per candidate.
        """
        from ..errors import APIError, TransportError
        from ..jobs import ExportJob

        client = self.request.client
        for handle in client.job_store.same_search(self.planned.filters, self.search_id,
                                                   states=("active",)):  # fmt: skip
            job = ExportJob.from_handle(client, handle)
            try:
                status = job.refresh()
            except (APIError, TransportError):
                continue  # not this account's, or gone: start afresh
            if status.status == "failed" or (status.status == "ready"
                                             and not status.has_valid_link):  # fmt: skip
                continue
            return job
        return None


def _export_status_callback(bar: Bar) -> Callable[[ExportStatus], None]:
    def on_status(status: ExportStatus) -> None:
        if status.progress is not None:
            bar.set_progress(status.progress * 100 if status.progress <= 1 else status.progress)
        if status.status == "ready":
            bar.set_progress(100)
        bar.status(status.status)

    return on_status


def make_source(request: ReadRequest, planned: Planned) -> Source:
    """Return the source the plan chose."""
    if planned.plan.method == "pages":
        return PagesSource(request, planned)
    return ExportSource(request, planned)
