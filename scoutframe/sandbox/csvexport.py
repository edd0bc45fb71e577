"""The export CSV format of the contract (section 6), written by pyarrow without Python loops.

Every step is a vectorised Arrow kernel: list columns are joined with ``"; "`` by
``binary_join``, timestamps are formatted by ``strftime`` and the writer is
:func:`pyarrow.csv.write_csv`. Its ``"needed"`` quoting style quotes every non-empty string
field (doubling embedded quotes), which is valid RFC 4180; empty strings are turned into nulls
first so that empty values are empty fields, as the contract asks.
"""

from __future__ import annotations

import io
import os
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from scoutframe.sandbox.atomic import atomic_write
from scoutframe.sandbox.columns import CONTACT_COLUMNS

__all__ = ["export_csv_bytes", "to_export_table", "write_export_csv"]

LIST_SEPARATOR = "; "
# Rows per slice encoded by one writer thread: small enough to spread over the cores and keep
# memory bounded, large enough to amortise the per-call overhead.
_SLICE_ROWS = 65_536
_MAX_WORKERS = 4


def _iso_utc(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Format a timestamp column as ``2025-03-04T12:34:56Z`` (UTC, whole seconds)."""
    # Arrow stores instants as UTC; dropping the zone keeps the UTC wall time. Casting a naive
    # timestamp to string is ~25x faster than strftime or a zoned cast (no tz database lookups).
    naive = pc.cast(column, pa.timestamp(column.type.unit), safe=False)
    text = pc.cast(pc.cast(naive, pa.timestamp("s"), safe=False), pa.string())
    text = pc.utf8_replace_slice(text, start=10, stop=11, replacement="T")
    return pc.binary_join_element_wise(text, "Z", "")


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Return ``column`` as strings in the CSV's text form (lists joined, times formatted)."""
    kind = column.type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        column = pc.binary_join(column, LIST_SEPARATOR)
    elif pa.types.is_timestamp(kind):
        column = _iso_utc(column)
    elif pa.types.is_dictionary(kind):
        column = pc.cast(column, pa.string())
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        # Empty strings become nulls, written as empty unquoted fields.
        column = pc.if_else(pc.equal(column, ""), pa.scalar(None, column.type), column)
    return column


def to_export_table(contacts: pa.Table) -> pa.Table:
    """Select and convert the contract's CSV columns from a contacts table.

    Parameters
    ----------
    contacts
        Contacts with (at least) the 20 contract columns; list columns are ``list<string>``
        and ``collected_at`` a timestamp (UTC).

    Returns
    -------
    pyarrow.Table
        Exactly `CONTACT_COLUMNS`, in contract order: ``email``, ``phone`` and ``categories``
        joined with ``"; "``, ``collected_at`` as ``2025-03-04T12:34:56Z`` and empty strings
        as nulls; numbers keep their numeric types.
    """
    _check_columns(contacts)
    columns = []
    for name in CONTACT_COLUMNS:
        column = contacts.column(name)
        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
            column = _as_text(column)
        columns.append(column)
    return pa.Table.from_arrays(columns, names=list(CONTACT_COLUMNS))


def _encode(table: pa.Table, *, header: bool) -> pa.Buffer:
    """Encode ``table`` as CSV text (the Arrow writer releases the GIL while it works)."""
    options = pacsv.WriteOptions(
        include_header=header,
        delimiter=",",
        eol="\n",
        null_string="",
        quoting_style="needed",
        quoting_header="none",
    )
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, write_options=options)
    return sink.getvalue()


Indices: TypeAlias = npt.NDArray[np.integer[Any]] | pa.Array | pa.ChunkedArray | Sequence[int]


def _check_columns(contacts: pa.Table) -> None:
    missing = [name for name in CONTACT_COLUMNS if name not in contacts.column_names]
    if missing:
        raise ValueError(f"contacts table lacks export columns: {', '.join(missing)}")


def _as_index_array(indices: Indices) -> npt.NDArray[np.int64]:
    if isinstance(indices, pa.ChunkedArray):
        indices = indices.combine_chunks()
    if isinstance(indices, pa.Array):
        return np.asarray(indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    return np.asarray(indices, dtype=np.int64)


class _Source:
    """The CSV columns of the contacts, with row selection that avoids chunked ``take``.

    ``Table.take`` on a many-chunk table (as Parquet loads it) costs about three times a take
    from one contiguous batch; ascending indices (the export order) are therefore mapped to
    the record batches that hold them and taken batch by batch, without copying the table.
    """

    def __init__(self, contacts: pa.Table, indices: npt.NDArray[np.int64] | None) -> None:
        self.base = contacts.select(list(CONTACT_COLUMNS))
        self.indices = indices
        self.batches = self.base.to_batches()
        self.starts = np.cumsum([0, *(batch.num_rows for batch in self.batches)])
        self.num_rows = self.base.num_rows if indices is None else int(indices.size)

    def rows(self, offset: int) -> pa.Table:
        """Rows ``offset : offset + _SLICE_ROWS`` of the export."""
        if self.indices is None:
            return self.base.slice(offset, _SLICE_ROWS)
        part = self.indices[offset : offset + _SLICE_ROWS]
        if not part.size:
            return self.base.slice(0, 0)
        steps = np.diff(part)
        if part[-1] - part[0] == part.size - 1 and bool(np.all(steps == 1)):
            return self.base.slice(int(part[0]), part.size)  # contiguous: zero-copy
        if not bool(np.all(steps >= 0)):
            return self.base.take(pa.array(part))
        first = int(np.searchsorted(self.starts, part[0], side="right")) - 1
        last = int(np.searchsorted(self.starts, part[-1], side="right")) - 1
        pieces = []
        for b in range(first, last + 1):
            lo, hi = np.searchsorted(part, self.starts[b : b + 2])
            if hi > lo:
                local = pa.array(part[lo:hi] - self.starts[b])
                pieces.append(self.batches[b].take(local))
        return pa.Table.from_batches(pieces, schema=self.base.schema)


def _encode_part(source: _Source, offset: int, *, header: bool) -> pa.Buffer:
    """Select, convert and encode one slice (Arrow kernels release the GIL: slices overlap)."""
    return _encode(to_export_table(source.rows(offset)), header=header)


def _write(contacts: pa.Table, indices: Indices | None, out: BinaryIO) -> int:
    """Encode the export slice by slice on several threads and write the slices in order.

    Each slice is taken, converted and encoded by one worker, so the whole pipeline runs in
    parallel and no full-size intermediate table is ever built.
    """
    _check_columns(contacts)
    source = _Source(contacts, None if indices is None else _as_index_array(indices))
    offsets = range(0, max(source.num_rows, 1), _SLICE_ROWS)
    workers = max(1, min(_MAX_WORKERS, os.cpu_count() or 1, len(offsets)))
    written = 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="csvexport") as pool:
        pending: deque[Future[pa.Buffer]] = deque()
        for offset in offsets:
            pending.append(pool.submit(_encode_part, source, offset, header=offset == 0))
            # A bounded window keeps at most a few encoded slices in memory.
            if len(pending) > 2 * workers:
                written += out.write(pending.popleft().result())
        while pending:
            written += out.write(pending.popleft().result())
    return written


def write_export_csv(contacts: pa.Table, path: Path, *, indices: Indices | None = None) -> int:
    """Write contacts to ``path`` in the export CSV format, atomically.

    The file is written through `scoutframe.sandbox.atomic.atomic_write`, so a reader never
    sees a partial export.

    Parameters
    ----------
    contacts
        Contacts table with the contract columns (see :func:`to_export_table`).
    path
        Destination file.
    indices
        Row positions to export, in export order. Passing the whole table with ``indices``
        is faster than taking the rows first: only the CSV columns are taken, slice by slice,
        on the writer threads (and contiguous runs are sliced, not copied).

    Returns
    -------
    int
        Number of bytes written.
    """
    path = Path(path)
    _check_columns(contacts)
    with atomic_write(path) as temp, open(temp, "wb") as out:
        return _write(contacts, indices, out)


def export_csv_bytes(contacts: pa.Table, *, indices: Indices | None = None) -> bytes:
    """Return contacts in the export CSV format, in memory (used for delta downloads).

    Parameters
    ----------
    contacts
        Contacts table with the contract columns (see :func:`to_export_table`).
    indices
        Row positions to export, in export order (default: every row).

    Returns
    -------
    bytes
        The UTF-8 CSV document, header included.
    """
    out = io.BytesIO()
    _write(contacts, indices, out)
    return out.getvalue()
