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
import tempfile
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

__all__ = ["CSV_COLUMNS", "export_csv_bytes", "to_export_table", "write_export_csv"]

CSV_COLUMNS: tuple[str, ...] = (
    "place_id",
    "name",
    "email",
    "phone",
    "website",
    "instagram",
    "facebook",
    "address",
    "city",
    "zipcode",
    "level1_location",
    "level2_location",
    "level3_location",
    "country",
    "categories",
    "rating",
    "review_count",
    "latitude",
    "longitude",
    "collected_at",
)

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
        Exactly :data:`CSV_COLUMNS`, in contract order: ``email``, ``phone`` and ``categories``
        joined with ``"; "``, ``collected_at`` as ``2025-03-04T12:34:56Z`` and empty strings
        as nulls; numbers keep their numeric types.
    """
    missing = [name for name in CSV_COLUMNS if name not in contacts.column_names]
    if missing:
        raise ValueError(f"contacts table lacks export columns: {', '.join(missing)}")
    columns = []
    for name in CSV_COLUMNS:
        column = contacts.column(name)
        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
            column = _as_text(column)
        columns.append(column)
    return pa.Table.from_arrays(columns, names=list(CSV_COLUMNS))


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


def _write(table: pa.Table, out: BinaryIO) -> int:
    """Encode ``table`` slice by slice on several threads and write the slices in order."""
    offsets = range(0, max(table.num_rows, 1), _SLICE_ROWS)
    workers = max(1, min(_MAX_WORKERS, os.cpu_count() or 1, len(offsets)))
    written = 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="csvexport") as pool:
        pending: deque[Future[pa.Buffer]] = deque()
        for offset in offsets:
            piece = table.slice(offset, _SLICE_ROWS)
            pending.append(pool.submit(_encode, piece, header=offset == 0))
            # A bounded window keeps at most a few encoded slices in memory.
            if len(pending) > 2 * workers:
                written += out.write(pending.popleft().result())
        while pending:
            written += out.write(pending.popleft().result())
    return written


def write_export_csv(contacts: pa.Table, path: Path) -> int:
    """Write ``contacts`` to ``path`` in the export CSV format, atomically.

    The file is written to a temporary name in the same directory and moved into place with
    :func:`os.replace`, so a reader never sees a partial export.

    Parameters
    ----------
    contacts
        Contacts table (see :func:`to_export_table`), already in the export's row order.
    path
        Destination file.

    Returns
    -------
    int
        Number of bytes written.
    """
    path = Path(path)
    table = to_export_table(contacts)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        with open(temp_name, "wb") as out:
            size = _write(table, out)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return size


def export_csv_bytes(contacts: pa.Table) -> bytes:
    """Return ``contacts`` in the export CSV format, in memory (used for delta downloads).

    Parameters
    ----------
    contacts
        Contacts table (see :func:`to_export_table`).

    Returns
    -------
    bytes
        The UTF-8 CSV document, header included.
    """
    out = io.BytesIO()
    _write(to_export_table(contacts), out)
    return out.getvalue()
