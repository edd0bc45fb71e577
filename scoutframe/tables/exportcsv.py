"""The API's export CSV, both ways: read into the contacts schema, and written back.

Reading: :func:`read_csv` (whole) and :func:`iter_csv` (bounded chunks) parse the file
column-wise with pyarrow; :class:`ContractCheck` checks it against the contract as it is read;
:func:`check_not_list_repr` refuses files of ``DataFrame.to_csv`` (``['a@b.fr']``).
Writing: :func:`to_csv` writes the API's format, which ``read_export_csv`` reads back exactly;
by default text cells a spreadsheet would run as formulas are made inert
(:mod:`scoutframe.tables.formulas`), and the reader takes the escape off again.

The schema's conventions hold both ways: an empty string is a missing value, a missing list
an empty list; list fields are joined with ``"; "``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ..errors import ArgumentError
from ..files import PathLike, atomic_path, output_target
from . import formulas, frames
from .schema import (
    CONTACT_COLUMNS,
    CONTACT_SCHEMA,
    LIST_COLUMNS,
    LIST_SEPARATOR,
    announce_drift,
    empty_table,
    is_list_type,
    normalise_table,
)

__all__ = [
    "CSV_SLICE_ROWS",
    "ContractCheck",
    "check_not_list_repr",
    "iter_csv",
    "join_lists",
    "lists_joined",
    "read_csv",
    "to_csv",
]

#: Rows converted to text at a time by :func:`to_csv` (bounds its extra memory).
CSV_SLICE_ROWS = 65_536
# A list cell of DataFrame.to_csv: a Python list (['a', 'b']), a NumPy array (['a' 'b']), [].
_LIST_REPR = r"(?s)^\[\s*(\]|['\"].*['\"]\s*\])$"


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
    unescape_formulas: bool = False,
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
    unescape_formulas
        Take off the apostrophe :func:`to_csv` put in front of cells a spreadsheet would
        run (:func:`scoutframe.tables.formulas.unescape`); ``False`` reads every cell as it is.

    Returns
    -------
    pyarrow.Table
    """
    path = Path(path)
    if nrows is not None:
        parts = list(
            iter_csv(
                path,
                chunksize=max(nrows, 1),
                columns=columns,
                nrows=nrows,
                warn_drift=warn_drift,
                unescape_formulas=unescape_formulas,
            )
        )
        return parts[0] if parts else empty_table(columns)
    read, convert, extra = _csv_options(path, columns, None)
    if warn_drift and columns is None:
        announce_drift(extra)
    raw = pacsv.read_csv(path, read_options=read, parse_options=PARSE, convert_options=convert)
    return _checked(normalise_table([_raw_text(raw, unescape_formulas)]))


def _raw_text(table: pa.Table, unescape_formulas: bool) -> pa.Table:
    """Return the table as read (lists still text), the formula escape taken off if asked."""
    return formulas.unescape_table(table) if unescape_formulas else table


def iter_csv(
    path: str | Path,
    *,
    chunksize: int,
    columns: Sequence[str] | None = None,
    nrows: int | None = None,
    warn_drift: bool = True,
    unescape_formulas: bool = False,
) -> Iterator[pa.Table]:
    """Stream an export CSV as tables of exactly *chunksize* rows (the last may be shorter).

    Memory stays bounded by a few chunks: the file is parsed block by block, with a block size
    sized from the file's average row length. ``unescape_formulas`` as in :func:`read_csv`.
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
                yield _checked(
                    normalise_table([_raw_text(table.slice(0, take), unescape_formulas)])
                )
                rest = table.slice(take)
                pending = rest.to_batches() if rest.num_rows else []
                pending_rows = rest.num_rows
                remaining = -1 if remaining < 0 else remaining - take
            if remaining == 0:
                return
        if pending_rows and remaining != 0:
            table = pa.Table.from_batches(pending)
            take = pending_rows if remaining < 0 else min(pending_rows, remaining)
            yield _checked(normalise_table([_raw_text(table.slice(0, take), unescape_formulas)]))
    finally:
        reader.close()


# --------------------------------------------------------------------------------------------
# Writing


def check_not_list_repr(table: pa.Table) -> pa.Table:
    """Refuse a table read from a CSV whose list cells are Python/NumPy list reprs.

    ``DataFrame.to_csv`` writes lists as ``['a@b.fr', 'c@d.fr']``, which would read back as
    one-element lists holding the repr. Takes the raw table (list columns as strings) or the
    converted one (``list<string>``); cheap when nothing is wrong.

    Parameters
    ----------
    table
        A table read from an export CSV.

    Returns
    -------
    pyarrow.Table
        *table*, unchanged.

    Raises
    ------
    ArgumentError
        Naming the column and row, and how to write the file properly.
    """
    for name in sorted(LIST_COLUMNS & set(table.column_names)):
        found = _first_list_repr(table.column(name))
        if found is not None:
            raise ArgumentError(
                f"Column {name!r}, row {found[0]} (counting from 0 after the header) holds "
                f"{found[1]!r}, a Python list: the file was written by DataFrame.to_csv, not "
                "in the export format (lists joined with '; '). Write the frame with "
                "df.spherescout.to_csv(path), or keep it in Parquet: "
                "df.spherescout.to_parquet(path)"
            )
    return table


def join_lists(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Join each list of a list column with ``"; "``, as the export CSV writes it.

    The one spelling of a list as text: :func:`to_csv`, Excel sheets and the command line's
    tables all use it (a null list stays null).
    """
    return pc.binary_join(column, LIST_SEPARATOR)


def lists_joined(frame: pd.DataFrame) -> pd.DataFrame:
    """Join list columns with ``"; "``, as SphereScout's own CSV exports do.

    Parameters
    ----------
    frame
        A contacts frame (either dtype backend).

    Returns
    -------
    pandas.DataFrame
        A shallow copy whose list columns are strings.
    """
    joined = frame.copy(deep=False)
    for name, dtype in frame.dtypes.items():
        if isinstance(dtype, pd.ArrowDtype) and pa.types.is_list(dtype.pyarrow_dtype):
            joined[name] = pd.Series(
                join_lists(pa.chunked_array([pa.array(frame[name])])),
                index=frame.index,
                dtype=pd.ArrowDtype(pa.string()),
            )
        elif pd.api.types.is_object_dtype(dtype):
            joined[name] = frame[name].map(_join_if_sequence)
    return joined


def _join_if_sequence(value: object) -> object:
    if isinstance(value, list | tuple) or hasattr(value, "tolist"):
        return LIST_SEPARATOR.join(map(str, list(value)))  # type: ignore[call-overload]
    return value


def _first_list_repr(column: pa.ChunkedArray) -> tuple[int, str] | None:
    """Return the row and text of the first cell that looks like a list repr, if any."""
    if is_list_type(column.type):
        # Elements first (a cheap prefix test); join back only when one starts with "[".
        if not pc.any(pc.starts_with(pc.list_flatten(column), "[")).as_py():
            return None
        column = join_lists(column)
    elif not pc.any(pc.starts_with(column, "[")).as_py():
        return None
    hits = pc.fill_null(pc.match_substring_regex(column, _LIST_REPR), False)
    if not pc.any(hits).as_py():
        return None
    row = pc.index(hits, True).as_py()
    return row, column[row].as_py()


def _check_list_elements(
    name: str, column: pa.ChunkedArray, offset: int, index: pd.Index | None
) -> None:
    """Refuse list elements the export CSV cannot hold (they would read back differently)."""
    values = pc.list_flatten(column)
    bad = pc.or_kleene(
        pc.is_null(values), pc.or_(pc.equal(values, ""), pc.match_substring(values, LIST_SEPARATOR))
    )
    if not pc.any(bad).as_py():
        return
    at = pc.index(bad, True).as_py()
    row = frames.row_label(index, offset + pc.list_parent_indices(column)[at].as_py())
    value = values[at].as_py()
    why = (
        "is empty or missing, and the CSV drops empty elements"
        if not value
        else f"contains the list separator {LIST_SEPARATOR!r}, and would read back "
        "as several elements"
    )
    raise ArgumentError(
        f"to_csv: column {name!r}, row {row!r}: the list element {value!r} "
        f"{why}. Fix or drop that element, or write Parquet instead "
        "(df.spherescout.to_parquet), which keeps lists exactly"
    )


def _iso_utc(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Format timestamps as ``2025-03-04T12:34:56Z`` (``.ffffff`` when there is a fraction)."""
    kind = column.type
    naive = column.cast(pa.timestamp(kind.unit))  # the UTC wall time (instants are UTC)
    text = pc.replace_substring_regex(pc.cast(naive, pa.string()), r"\.0+$", "")
    text = pc.utf8_replace_slice(text, start=10, stop=11, replacement="T")
    return pc.binary_join_element_wise(text, "Z" if kind.tz else "", "")


def _csv_text(
    name: str, column: pa.ChunkedArray, offset: int, index: pd.Index | None
) -> pa.ChunkedArray:
    """Return a column in the export's text form; refuse values that would not read back."""
    kind = column.type
    if is_list_type(kind):
        _check_list_elements(name, column, offset, index)
        column = join_lists(column)
        found = _first_list_repr(column)
        if found is not None:
            row = frames.row_label(index, offset + found[0])
            raise ArgumentError(
                f"to_csv: column {name!r}, row {row!r}"
                f": {found[1]!r} looks like a Python list, which the CSV reader "
                "refuses; write Parquet instead (df.spherescout.to_parquet)"
            )
    elif pa.types.is_timestamp(kind):
        column = _iso_utc(column)
    elif pa.types.is_dictionary(kind) or pa.types.is_temporal(kind):
        column = column.cast(pa.string())
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        column = pc.if_else(pc.equal(column, ""), pa.scalar(None, column.type), column)
    return column


def to_csv(df: pd.DataFrame | pa.Table, path: PathLike, *, escape_formulas: bool = True) -> Path:
    """Write contacts in the API's export CSV format, atomically.

    ``scoutframe.read_export_csv(path)`` reads back the same frame (values and dtypes; a CSV
    has no place for ``df.attrs``).

    Parameters
    ----------
    df
        A contacts frame (either dtype backend) or table.
    path
        The file to (re)place; its directory must exist.
    escape_formulas
        Put an apostrophe in front of text cells a spreadsheet would run as a formula (they
        start with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return; numbers and phone
        numbers such as ``+33 1 23 45 67 89`` are left as they are): see
        :mod:`scoutframe.tables.formulas`. ``read_export_csv`` takes it off again.
        ``False`` writes every cell as it is (for programs that are not spreadsheets).

    Returns
    -------
    pathlib.Path
        *path*: the contract's columns in its order (then any others, read back as strings),
        lists joined with ``"; "``, empty values as empty fields, UTC timestamps in ISO-8601
        with ``Z``.

    Raises
    ------
    ArgumentError
        A list element the format cannot hold (containing ``"; "``, empty or missing), with
        its column and row; nothing is written.
    """
    target = output_target(path, "to_csv")
    index = df.index if isinstance(df, pd.DataFrame) else None
    table = frames.table_from_pandas(df) if isinstance(df, pd.DataFrame) else df
    names = [c for c in CONTACT_COLUMNS if c in table.column_names]
    table = table.select(names + [c for c in table.column_names if c not in names])
    quote_header = any(re.search(r'[,"\r\n]', n) for n in table.column_names)
    options = pacsv.WriteOptions(
        include_header=True,
        delimiter=",",
        eol="\n",
        null_string="",
        quoting_style="needed",
        quoting_header="needed" if quote_header else "none",
    )
    with atomic_path(target) as temp:
        writer: pacsv.CSVWriter | None = None
        try:
            for offset in range(0, max(table.num_rows, 1), CSV_SLICE_ROWS):
                part = table.slice(offset, CSV_SLICE_ROWS)  # converted slice by slice
                text = pa.table(
                    {
                        name: _csv_text(name, part.column(name), offset, index)
                        for name in part.column_names
                    }
                )
                if escape_formulas:
                    text = formulas.escape_table(text)
                writer = writer or pacsv.CSVWriter(temp, text.schema, write_options=options)
                writer.write_table(text)
        finally:
            if writer is not None:
                writer.close()
    return target
