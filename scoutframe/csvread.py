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

__all__ = ["ContractCheck", "iter_csv", "read_csv"]


class ContractCheck:
    """Checks an export file against the contract as it is read.

    A broken file must not be mistaken for data: the contract's columns in the header, each
    ``place_id`` once, and as many rows as were paid for.

    Parameters
    ----------
    path
        The CSV file (its header is read at once).
    expected_rows
        The rows the export was charged for (``lead_count``); ``None``: not checked (a read
        with ``nrows``, a file of unknown origin).
    """

    def __init__(self, path: str | Path, expected_rows: int | None = None) -> None:
        header = _read_header(Path(path))
        self.missing = [name for name in CONTACT_COLUMNS if name not in header]
        self.expected_rows = expected_rows
        self.rows = 0
        self.repeated = 0
        self._last: str | None = None

    def header_problems(self) -> list[str]:
        """Return what is wrong with the header (known before any row is read)."""
        if not self.missing:
            return []
        return [f"the columns {self.missing} of the export format are missing"]

    def feed(self, table: pa.Table) -> None:
        """Count a table's rows and its repeated ``place_id`` values (the file is sorted)."""
        import pyarrow.compute as pc

        self.rows += table.num_rows
        if "place_id" not in table.column_names or table.num_rows == 0:
            return
        ids = table.column("place_id").combine_chunks()
        if self._last is not None and ids[0].as_py() == self._last:
            self.repeated += 1
        if len(ids) > 1:
            self.repeated += pc.sum(pc.equal(ids.slice(1), ids.slice(0, len(ids) - 1))).as_py() or 0
        self._last = ids[-1].as_py()

    def problems(self) -> list[str]:
        """Everything found wrong so far (call it once the file was read whole)."""
        found = self.header_problems()
        if self.repeated:
            found.append(f"{self.repeated:,} rows repeat the place_id of the row before")
        if self.expected_rows is not None and self.rows != self.expected_rows:
            found.append(f"it has {self.rows:,} rows where {self.expected_rows:,} were paid for")
        return found


#: Quoted values may hold line breaks (a name or an address over two lines).
PARSE = pacsv.ParseOptions(newlines_in_values=True)


def _checked(table: pa.Table) -> pa.Table:
    """Refuse list cells that are Python list reprs (a file from ``DataFrame.to_csv``)."""
    from .formats import check_not_list_repr  # here: formats imports frames, frames us

    return check_not_list_repr(table)


def _read_header(path: Path) -> list[str]:
    """Return the header row (``UnicodeDecodeError`` on bytes that are not UTF-8)."""
    with path.open("rb") as handle:
        first = handle.readline(1 << 20)
    return next(csv.reader([first.decode("utf-8").rstrip("\r\n")]), [])


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
    return _checked(normalise_table([pacsv.read_csv(path, read_options=read, parse_options=PARSE,
                                                    convert_options=convert)]))  # fmt: skip


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
    reader = pacsv.open_csv(path, read_options=read, parse_options=PARSE, convert_options=convert)
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
                yield _checked(normalise_table([table.slice(0, take)]))
                rest = table.slice(take)
                pending = rest.to_batches() if rest.num_rows else []
                pending_rows = rest.num_rows
                remaining = -1 if remaining < 0 else remaining - take
            if remaining == 0:
                return
        if pending_rows and remaining != 0:
            table = pa.Table.from_batches(pending)
            take = pending_rows if remaining < 0 else min(pending_rows, remaining)
            yield _checked(normalise_table([table.slice(0, take)]))
    finally:
        reader.close()
