"""Reading the API's export CSV into the contacts schema, whole or in bounded chunks."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from .schema import (
    CONTACT_COLUMNS,
    CONTACT_SCHEMA,
    LIST_COLUMNS,
    announce_drift,
    empty_table,
    normalise_table,
)

__all__ = ["iter_csv", "read_csv"]


def _read_header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle), [])


def _csv_options(
    path: Path, columns: Sequence[str] | None, block_size: int | None
) -> tuple[pacsv.ReadOptions, pacsv.ConvertOptions, list[str]]:
    header = _read_header(path)
    selected = list(columns) if columns is not None else header
    # Lists and timestamps are read as strings and converted afterwards (see _normalise_column).
    types = {
        name: (
            pa.string()
            if name not in CONTACT_COLUMNS or name in LIST_COLUMNS or name == "collected_at"
            else CONTACT_SCHEMA.field(name).type
        )
        for name in set(header) | set(selected)
    }
    read = pacsv.ReadOptions(block_size=block_size) if block_size else pacsv.ReadOptions()
    convert = pacsv.ConvertOptions(
        column_types=types,
        null_values=[""],
        true_values=["true"],
        false_values=["false"],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        include_columns=selected,
        include_missing_columns=True,
    )
    return read, convert, [c for c in header if c not in CONTACT_COLUMNS]


def read_csv(
    path: str | Path,
    *,
    columns: Sequence[str] | None = None,
    nrows: int | None = None,
    warn_drift: bool = True,
) -> pa.Table:
    """Read an export CSV into a table with the contacts schema.

    Parameters
    ----------
    path
        The CSV file (the export format of the API).
    columns
        Keep only these columns, in this order.
    nrows
        Read at most this many rows (streaming, so only they are parsed).
    warn_drift
        Emit a :class:`SchemaDriftWarning` for columns the schema does not know.

    Returns
    -------
    pyarrow.Table
    """
    path = Path(path)
    if nrows is not None:
        parts = list(iter_csv(path, chunksize=max(nrows, 1), columns=columns, nrows=nrows,
                              warn_drift=warn_drift))
        return parts[0] if parts else empty_table(columns)
    read, convert, extra = _csv_options(path, columns, None)
    if warn_drift and columns is None:
        announce_drift(extra)
    return normalise_table([pacsv.read_csv(path, read_options=read, convert_options=convert)])


def iter_csv(
    path: str | Path,
    *,
    chunksize: int,
    columns: Sequence[str] | None = None,
    nrows: int | None = None,
    warn_drift: bool = True,
) -> Iterator[pa.Table]:
    """Stream an export CSV as tables of exactly *chunksize* rows (the last may be shorter).

    Memory stays bounded by a few chunks: the file is parsed block by block, with a block size
    sized from the file's average row length.
    """
    if chunksize < 1:
        raise ValueError("chunksize must be a positive integer")
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as handle:
        sample = handle.read(1 << 16)
    lines = max(sample.count(b"\n") - 1, 1)
    row_bytes = max(len(sample) // lines, 64) if size > len(sample) else max(size // lines, 64)
    # pyarrow's streaming reader keeps a few dozen blocks in flight (measured: ~35 blocks of
    # memory), so blocks of 1/32 of a chunk hold the reader near one chunk's worth of memory.
    chunk_bytes = row_bytes * chunksize * 1.1
    block_size = int(min(max(chunk_bytes / 32, 1 << 18), 1 << 26))
    read, convert, extra = _csv_options(path, columns, block_size)
    if warn_drift and columns is None:
        announce_drift(extra)
    reader = pacsv.open_csv(path, read_options=read, convert_options=convert)
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    remaining = nrows if nrows is not None else -1
    try:
        for batch in reader:
            pending.append(batch)
            pending_rows += batch.num_rows
            while pending_rows >= chunksize and remaining != 0:
                table = pa.Table.from_batches(pending)
                take = chunksize if remaining < 0 else min(chunksize, remaining)
                yield normalise_table([table.slice(0, take)])
                rest = table.slice(take)
                pending = rest.to_batches() if rest.num_rows else []
                pending_rows = rest.num_rows
                remaining = -1 if remaining < 0 else remaining - take
            if remaining == 0:
                return
        if pending_rows and remaining != 0:
            table = pa.Table.from_batches(pending)
            take = pending_rows if remaining < 0 else min(pending_rows, remaining)
            yield normalise_table([table.slice(0, take)])
    finally:
        reader.close()
