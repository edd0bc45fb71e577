"""Where a read's rows come from: the search's pages, or an export. Each yields Arrow tables.

A source is made from a :class:`~scoutframe.read.plan.Planned` read; :meth:`tables` runs it
(nothing happens before the first table is asked for) and :meth:`facts` tells what it learnt
(search id, count, credits, task, history entry), final once the tables are exhausted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from ..tables import frames
from ..tables.schema import SchemaDriftWarning, drift_columns, drift_message, warn_from_caller
from .pages import PageWalker, batched_tables

if TYPE_CHECKING:
    from .plan import Planned
    from .request import ReadRequest

__all__ = ["DriftWatch", "Facts", "PagesSource", "Source"]

logger = logging.getLogger("scoutframe.read")


@dataclass(frozen=True)
class Facts:
    """What a source knows of the data it produced (for the provenance)."""

    search_id: str | None
    total_count: int | None
    credits_spent: int = 0
    task_id: str | None = None
    history_id: int | None = None
    note: str = ""


class Source(Protocol):
    """A read's rows as Arrow tables."""

    def tables(self, rows: int | None) -> Iterator[pa.Table]:
        """Yield tables of ``rows`` rows (the last may be shorter); ``None``: any size."""
        ...

    def facts(self) -> Facts:
        """Return what is known so far (final once :meth:`tables` is exhausted)."""
        ...

    def delivered(self) -> None:
        """Learn that the rows reached the caller (a paid file may go now)."""
        ...

    def note_interrupt(self, exc: BaseException) -> None:
        """Add to a Ctrl-C that came outside :meth:`tables` what to do next."""
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
        self.walker = PageWalker(
            request.client,
            planned.filters,
            nrows=request.nrows,
            concurrency=request.concurrency,
            progress=request.progress,
        )
        if planned.first_page is not None:  # the planner fetched page 1 already
            self.walker.total_count = planned.first_page.total_count
        self.total_count = planned.plan.total_count
        self.drift = DriftWatch()

    def tables(self, rows: int | None) -> Iterator[pa.Table]:
        """Yield the pages' records as tables of ``rows`` rows."""
        walker = self.walker
        to_table = self._records_table
        for table in batched_tables(
            walker.records(self.planned.first_page), rows or PAGE_TABLE_ROWS, to_table
        ):
            self.total_count = walker.total_count  # a later pass may have seen a new count
            yield table
        self.total_count = walker.total_count

    def _records_table(self, records: list[dict[str, Any]]) -> pa.Table:
        table = frames.records_to_table(records, columns=self.request.columns, warn_drift=False)
        return self.drift.check(table)

    def facts(self) -> Facts:
        """Return the search and its latest count."""
        return Facts(search_id=self.planned.plan.search_id, total_count=self.total_count)

    def delivered(self) -> None:
        """Nothing to clean up: pages cost nothing and leave no file."""

    def note_interrupt(self, exc: BaseException) -> None:
        """Nothing was paid: a re-run simply reads the pages again."""
