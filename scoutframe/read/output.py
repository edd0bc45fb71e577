"""What a read hands back: one pandas/Arrow/Polars object, or an iterator of chunks.

Every output carries its :class:`~scoutframe.models.Provenance`, made from the plan and the
source's facts. A whole read fixes it once the source is exhausted; each chunk carries the
facts known when it was made (an export's are all known before its first chunk).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from .._version import __version__
from ..models import Provenance
from ..tables import frames
from ..tables.schema import empty_table

if TYPE_CHECKING:
    from .plan import Planned
    from .request import ReadRequest
    from .sources import Source

__all__ = ["chunks", "deliver", "deliver_chunks", "provenance", "whole"]


def provenance(request: ReadRequest, planned: Planned, source: Source) -> Provenance:
    """Return the provenance of this read, from the plan and what the source knows now."""
    from datetime import UTC, datetime

    facts = source.facts()
    plan = planned.plan
    filters = planned.filters
    return Provenance(
        filters=filters.to_dict() if filters is not None else {},
        search_id=facts.search_id,
        total_count=facts.total_count,
        method=plan.method,
        credits_spent=facts.credits_spent,
        task_id=facts.task_id,
        history_id=facts.history_id,
        fetched_at=datetime.now(UTC).isoformat(timespec="seconds"),
        api_origin=request.client.base_url,
        library_version=__version__,
        emails_masked=plan.method == "pages",
        reason=plan.why + facts.note,
        history_ids=() if facts.history_id is None else (facts.history_id,),
    )


def whole(request: ReadRequest, planned: Planned, source: Source) -> Any:
    """Read everything, then convert once (provenance fixed after the source is exhausted).

    The source learns that its rows were delivered only once the result exists, so a paid
    file stays until then.
    """
    parts = list(source.tables(None))
    try:
        if not parts:
            table = empty_table(request.columns)
        elif len(parts) == 1:
            table = parts[0]
        else:
            table = pa.concat_tables(parts, promote_options="default").combine_chunks()
        del parts
        result = deliver(request, table, provenance(request, planned, source))
    except KeyboardInterrupt as exc:
        source.note_interrupt(exc)
        raise
    source.delivered()
    return result


def chunks(request: ReadRequest, planned: Planned, source: Source) -> Iterator[Any]:
    """Yield chunks of ``request.chunksize`` rows; close a client built for this read after.

    Each chunk carries the provenance known when it was made.
    """
    assert request.chunksize is not None
    try:
        tables = source.tables(request.chunksize)
        yield from _converted(request, tables, lambda: provenance(request, planned, source), True)
        source.delivered()  # the caller took the last chunk: a paid file may go
    finally:
        if request.own_client:
            request.client.close()


def deliver_chunks(request: ReadRequest, table: pa.Table, fixed: Provenance) -> Iterator[Any]:
    """Yield a table in chunks of ``request.chunksize`` rows (a cached read's chunks)."""
    size = request.chunksize
    assert size is not None
    try:
        parts = (table.slice(start, size) for start in range(0, table.num_rows, size))
        yield from _converted(request, parts, lambda: fixed, False)  # slices share buffers
    finally:
        if request.own_client:
            request.client.close()


def deliver(
    request: ReadRequest,
    table: pa.Table,
    fixed: Provenance,
    *,
    index_start: int = 0,
    owned: bool = True,
) -> Any:
    """Convert one table to what the read returns (pandas, Arrow or Polars), with its provenance.

    ``owned``: the table is handed over, so pandas may free its buffers while converting.
    """
    if request.return_type == "arrow":
        return frames.with_provenance(table, fixed)
    if request.return_type == "polars":
        return frames.to_polars(table)
    return frames.to_pandas(
        table,
        dtype_backend=request.dtype_backend,
        provenance=fixed,
        index_start=index_start,
        self_destruct=owned,
    )


def _converted(
    request: ReadRequest,
    tables: Iterable[pa.Table],
    known: Callable[[], Provenance],
    owned: bool,
) -> Iterator[Any]:
    """Convert tables one by one, each frame's index continuing the one before."""
    start = 0
    for table in tables:
        rows = table.num_rows
        yield deliver(request, table, known(), index_start=start, owned=owned)
        start += rows
