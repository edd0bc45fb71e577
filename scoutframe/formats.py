"""Contacts frames into files that come back intact: Parquet, the export CSV, Excel.

Parquet: :func:`to_parquet` / :func:`read_parquet` round-trip dtypes (both backends), list
columns and ``df.attrs`` (the provenance, also kept under the schema metadata key
``b"scoutframe"``). :func:`write_table` is the one writer of contacts tables to Parquet (for
the cache and the CLI too), so every file scoutframe writes reads back the same way.

*The upstream issue.* ``df.to_parquet(p)`` of an Arrow-backed frame records the dtype name
``list<item: string>[pyarrow]`` in the file's ``pandas`` metadata; pandas cannot parse it, so
a plain ``pd.read_parquet(p)`` (pandas 3 + pyarrow) raises ``TypeError: data type
'list<item: string>[pyarrow]' not understood``. Workarounds: ``pd.read_parquet(p,
dtype_backend="pyarrow")``, or ``scoutframe.read_parquet(p)`` (which reads such files too).
The files written here record list columns as ``object`` and Arrow strings as
``utf8[pyarrow]`` (``string[pyarrow]`` would parse as ``pd.StringDtype``): a plain
``pd.read_parquet(p)`` works, restores ``df.attrs`` and gives every scalar column its exact
dtype; list columns come back as ``object`` columns of NumPy arrays.

Export CSV: :func:`to_csv` writes the API's format, which ``read_export_csv`` reads back
exactly; :func:`check_not_list_repr` refuses files of ``DataFrame.to_csv`` (``['a@b.fr']``).
Excel (extra ``excel``): :func:`to_excel`, for people, not for reading back.

The schema's conventions hold throughout: an empty string is a missing value, a missing list
an empty list. The index is not data: it is not written; frames read back get a RangeIndex.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from . import frames
from .checks import DtypeBackend
from .checks import dtype_backend as check_dtype_backend
from .errors import ArgumentError
from .files import atomic_path
from .models import PROVENANCE_ATTR, Provenance
from .schema import CONTACT_COLUMNS, LIST_COLUMNS, LIST_SEPARATOR

__all__ = ["check_not_list_repr", "read_parquet", "to_csv", "to_excel", "to_parquet",
           "with_file_metadata", "write_table"]  # fmt: skip

PathLike = str | os.PathLike[str]
#: Rows converted to text at a time by :func:`to_csv` (bounds its extra memory).
CSV_SLICE_ROWS = 65_536
#: Rows of one Excel sheet.
EXCEL_MAX_ROWS = 1_048_576
# A list cell of DataFrame.to_csv: a Python list (['a', 'b']), a NumPy array (['a' 'b']), [].
_LIST_REPR = r"(?s)^\[\s*(\]|['\"].*['\"]\s*\])$"


# --------------------------------------------------------------------------------------------
# Parquet


def _pandas_metadata(table: pa.Table, frame: pd.DataFrame | None) -> dict[str, Any]:
    """Return the ``pandas`` metadata of *table*, with dtype names pandas can parse back."""
    sample = frame.iloc[:0] if frame is not None else frames.to_pandas(table.slice(0, 0))
    sample.attrs = {}  # attrs are stored by with_file_metadata, after its own checks
    raw = pa.Schema.from_pandas(sample, preserve_index=False).metadata[b"pandas"]
    meta: dict[str, Any] = json.loads(raw)
    for column in meta["columns"]:
        name = column["field_name"]
        if _is_list(table.schema.field(name).type):
            # pandas cannot parse "list<item: string>[pyarrow]": let it build an object column
            column.update(numpy_type="object", pandas_type="list[unicode]")
        elif column["numpy_type"] == "string[pyarrow]" and (
                frame is None or isinstance(frame.dtypes[name], pd.ArrowDtype)):  # fmt: skip
            # "string[pyarrow]" parses as pd.StringDtype, "utf8[pyarrow]" as the ArrowDtype
            column["numpy_type"] = "utf8[pyarrow]"
    return meta


def _is_list(kind: pa.DataType) -> bool:
    return bool(pa.types.is_list(kind) or pa.types.is_large_list(kind))


def with_file_metadata(table: pa.Table, *, provenance: Provenance | None = None,
                       attrs: Mapping[str, Any] | None = None,
                       frame: pd.DataFrame | None = None) -> pa.Table:  # fmt: skip
    """Return *table* with the schema metadata of every Parquet file scoutframe writes.

    Parameters
    ----------
    table
        A contacts table.
    provenance
        Stored under ``b"scoutframe"``; default: the table's own, if any.
    attrs
        ``DataFrame.attrs`` for ``pd.read_parquet`` to restore; default: the provenance.
    frame
        The frame *table* was made from, whose dtypes to record (default: Arrow-backed).

    Returns
    -------
    pyarrow.Table
        The same data, with ``b"scoutframe"`` and ``b"pandas"`` schema metadata.

    Raises
    ------
    ArgumentError
        When *attrs* holds values that are not JSON (Parquet metadata is text).
    """
    provenance = provenance if provenance is not None else frames.provenance_of(table.schema)
    if attrs is None:
        attrs = {PROVENANCE_ATTR: provenance.to_dict()} if provenance is not None else {}
    meta = {**_pandas_metadata(table, frame), "attributes": _json_attrs(attrs)}
    schema_meta = {**(table.schema.metadata or {}), b"pandas": json.dumps(meta).encode()}
    table = table.replace_schema_metadata(schema_meta)
    return frames.with_provenance(table, provenance) if provenance is not None else table


def _json_attrs(attrs: Mapping[Any, Any]) -> dict[str, Any]:
    """Return ``df.attrs`` for Parquet metadata, refusing what JSON cannot hold."""
    bad = []
    for key, value in attrs.items():
        try:
            json.dumps({key: value})
        except (TypeError, ValueError):
            bad.append(key)
    if bad:  # pyarrow would warn and drop them all
        raise ArgumentError(f"df.attrs {bad} cannot be stored in a Parquet file: its metadata "
                            "is JSON. Convert those values to JSON types or remove them")
    return {str(key): value for key, value in attrs.items()}


def _target(path: PathLike, what: str) -> Path:
    target = Path(path)
    if target.is_dir():
        raise ArgumentError(f"{what}: {target} is a directory; give a file name")
    if not target.parent.is_dir():
        raise ArgumentError(f"{what}: the directory {target.parent} does not exist; create it "
                            f"first (Path({str(target.parent)!r}).mkdir(parents=True))")
    return target


def write_table(table: pa.Table, path: PathLike, *, provenance: Provenance | None = None,
                private: bool = False) -> Path:  # fmt: skip
    """Write a contacts table to one Parquet file, atomically, with scoutframe's metadata.

    Parameters
    ----------
    table
        A contacts table.
    path
        The file to (re)place; its directory must exist.
    provenance
        Stored in the file; default: the table's own (``frames.provenance_of``).
    private
        Mode 0600 (cache entries); otherwise the usual mode from the umask (user output).

    Returns
    -------
    pathlib.Path
        *path*, which :func:`read_parquet` (or ``pd.read_parquet``) reads back.
    """
    return _write(with_file_metadata(table, provenance=provenance),
                  _target(path, "write_table"), private=private)  # fmt: skip


def _write(table: pa.Table, target: Path, *, private: bool = False) -> Path:
    with atomic_path(target, private=private) as temp:
        pq.write_table(table, temp)
    return target


def to_parquet(df: pd.DataFrame, path: PathLike) -> Path:
    """Write a contacts frame to Parquet, atomically; :func:`read_parquet` gives it back.

    Parameters
    ----------
    df
        A frame as ``read_spherescout`` returns it (either dtype backend).
    path
        The file to (re)place; its directory must exist.

    Returns
    -------
    pathlib.Path
        *path*; :func:`read_parquet` gives back the dtypes, lists and ``df.attrs``.
    """
    if not isinstance(df, pd.DataFrame):
        raise ArgumentError(f"to_parquet() takes a DataFrame, got {type(df).__name__}; write "
                            "a pyarrow Table with scoutframe.formats.write_table(table, path)")
    target = _target(path, "to_parquet")
    data = df.attrs.get(PROVENANCE_ATTR)
    provenance = Provenance.from_dict(data) if isinstance(data, Mapping) else None
    attrs = _json_attrs(df.attrs)  # before any conversion: pyarrow warns about bad attrs
    table = frames.table_from_pandas(df)
    return _write(with_file_metadata(table, provenance=provenance, attrs=attrs, frame=df), target)


def read_parquet(path: PathLike, *, dtype_backend: DtypeBackend = "pyarrow",
                 columns: list[str] | None = None) -> pd.DataFrame:  # fmt: skip
    """Read a Parquet file of contacts into the typed frame, with its provenance.

    Parameters
    ----------
    path
        A file of :func:`to_parquet`, :func:`write_table` or ``DataFrame.to_parquet``.
    dtype_backend
        ``"pyarrow"`` (default) or ``"numpy_nullable"``, as in ``read_spherescout``.
    columns
        Read only these columns, in this order.

    Returns
    -------
    pandas.DataFrame
        With ``df.attrs`` as written (the provenance in ``df.attrs["scoutframe"]``).

    Raises
    ------
    ArgumentError
        The path is not a file, or a column is not in it.
    """
    backend = check_dtype_backend(dtype_backend)
    source = Path(path)
    if not source.is_file():
        hint = (" (a directory: read a dataset with scoutframe.datasets.open_dataset)"
                if source.is_dir() else "")  # fmt: skip
        raise ArgumentError(f"read_parquet: {source} is not a file{hint}")
    schema = pq.read_schema(source)
    if columns is not None:
        columns = list(dict.fromkeys([columns] if isinstance(columns, str) else columns))
        unknown = [c for c in columns if c not in schema.names]
        if unknown:
            raise ArgumentError(f"read_parquet: no column(s) {unknown} in {source}; "
                                f"its columns: {schema.names}")  # fmt: skip
    meta = dict(schema.metadata or {})
    pandas_meta = json.loads(meta.pop(b"pandas", b"{}"))  # it would override to_pandas' dtypes
    table = pq.read_table(source, columns=columns).replace_schema_metadata(meta)
    df = frames.to_pandas(table, dtype_backend=backend, provenance=frames.provenance_of(schema))
    df.attrs = {**pandas_meta.get("attributes", {}), **df.attrs}
    index = [c for c in pandas_meta.get("index_columns", [])
             if isinstance(c, str) and c in df.columns]  # fmt: skip
    if index:  # an index that DataFrame.to_parquet stored as columns
        df = df.set_index(index)
        df.index.names = [None if n.startswith("__index_level_") else n for n in index]
    return df


# --------------------------------------------------------------------------------------------
# The export CSV


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
                "df.spherescout.to_parquet(path)")
    return table


def _first_list_repr(column: pa.ChunkedArray) -> tuple[int, str] | None:
    """Return the row and text of the first cell that looks like a list repr, if any."""
    if _is_list(column.type):
        # Elements first (a cheap prefix test); join back only when one starts with "[".
        if not pc.any(pc.starts_with(pc.list_flatten(column), "[")).as_py():
            return None
        column = pc.binary_join(column, LIST_SEPARATOR)
    elif not pc.any(pc.starts_with(column, "[")).as_py():
        return None
    hits = pc.fill_null(pc.match_substring_regex(column, _LIST_REPR), False)
    if not pc.any(hits).as_py():
        return None
    row = pc.index(hits, True).as_py()
    return row, column[row].as_py()


def _check_list_elements(name: str, column: pa.ChunkedArray, offset: int,
                         index: pd.Index | None) -> None:  # fmt: skip
    """Refuse list elements the export CSV cannot hold (they would read back differently)."""
    values = pc.list_flatten(column)
    bad = pc.or_kleene(pc.is_null(values), pc.or_(pc.equal(values, ""),
                                                  pc.match_substring(values, LIST_SEPARATOR)))
    if not pc.any(bad).as_py():
        return
    at = pc.index(bad, True).as_py()
    row = _label(index, offset + pc.list_parent_indices(column)[at].as_py())
    value = values[at].as_py()
    why = ("is empty or missing, and the CSV drops empty elements" if not value
           else f"contains the list separator {LIST_SEPARATOR!r}, and would read back "
                "as several elements")  # fmt: skip
    raise ArgumentError(f"to_csv: column {name!r}, row {row!r}: the list element {value!r} "
                        f"{why}. Fix or drop that element, or write Parquet instead "
                        "(df.spherescout.to_parquet), which keeps lists exactly")


def _label(index: pd.Index | None, position: int) -> Any:
    row = index[position] if index is not None else position
    return row.item() if hasattr(row, "item") else row


def _iso_utc(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Format timestamps as ``2025-03-04T12:34:56Z`` (``.ffffff`` when there is a fraction)."""
    kind = column.type
    naive = column.cast(pa.timestamp(kind.unit))  # the UTC wall time (instants are UTC)
    text = pc.replace_substring_regex(pc.cast(naive, pa.string()), r"\.0+$", "")
    text = pc.utf8_replace_slice(text, start=10, stop=11, replacement="T")
    return pc.binary_join_element_wise(text, "Z" if kind.tz else "", "")


def _csv_text(name: str, column: pa.ChunkedArray, offset: int,
              index: pd.Index | None) -> pa.ChunkedArray:  # fmt: skip
    """Return a column in the export's text form; refuse values that would not read back."""
    kind = column.type
    if _is_list(kind):
        _check_list_elements(name, column, offset, index)
        column = pc.binary_join(column, LIST_SEPARATOR)
        found = _first_list_repr(column)
        if found is not None:
            raise ArgumentError(f"to_csv: column {name!r}, row {_label(index, offset + found[0])!r}"
                                f": {found[1]!r} looks like a Python list, which the CSV reader "
                                "refuses; write Parquet instead (df.spherescout.to_parquet)")
    elif pa.types.is_timestamp(kind):
        column = _iso_utc(column)
    elif pa.types.is_dictionary(kind) or pa.types.is_temporal(kind):
        column = column.cast(pa.string())
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        column = pc.if_else(pc.equal(column, ""), pa.scalar(None, column.type), column)
    return column


def to_csv(df: pd.DataFrame | pa.Table, path: PathLike) -> Path:
    """Write contacts in the API's export CSV format, atomically.

    ``scoutframe.read_export_csv(path)`` reads back the same frame (values and dtypes; a CSV
    has no place for ``df.attrs``).

    Parameters
    ----------
    df
        A contacts frame (either dtype backend) or table.
    path
        The file to (re)place; its directory must exist.

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
    target = _target(path, "to_csv")
    index = df.index if isinstance(df, pd.DataFrame) else None
    table = frames.table_from_pandas(df) if isinstance(df, pd.DataFrame) else df
    names = [c for c in CONTACT_COLUMNS if c in table.column_names]
    table = table.select(names + [c for c in table.column_names if c not in names])
    quote_header = any(re.search(r'[,"\r\n]', n) for n in table.column_names)
    options = pacsv.WriteOptions(
        include_header=True, delimiter=",", eol="\n", null_string="",
        quoting_style="needed", quoting_header="needed" if quote_header else "none",
    )  # fmt: skip
    with atomic_path(target) as temp:
        writer: pacsv.CSVWriter | None = None
        try:
            for offset in range(0, max(table.num_rows, 1), CSV_SLICE_ROWS):
                part = table.slice(offset, CSV_SLICE_ROWS)  # converted slice by slice
                text = pa.table({name: _csv_text(name, part.column(name), offset, index)
                                 for name in part.column_names})  # fmt: skip
                writer = writer or pacsv.CSVWriter(temp, text.schema, write_options=options)
                writer.write_table(text)
        finally:
            if writer is not None:
                writer.close()
    return target


# --------------------------------------------------------------------------------------------
# Excel


def _openpyxl() -> Any:
    try:
        return importlib.import_module("openpyxl")  # optional: the "excel" extra
    except ImportError as err:
        raise ImportError('to_excel needs openpyxl: pip install "scoutframe[excel]" (or pip '
                          "install openpyxl)") from err


def _excel_column(column: pa.ChunkedArray) -> tuple[list[Any], str | None, bool]:
    """Python values of one column for Excel, their number format, whether they were UTC."""
    kind = column.type
    if _is_list(kind):
        joined = pc.binary_join(column, LIST_SEPARATOR).to_pylist()
        return [value or None for value in joined], "@", False
    if pa.types.is_timestamp(kind):
        naive = column.cast(pa.timestamp(kind.unit))  # the UTC wall time
        return naive.to_pylist(), "yyyy-mm-dd hh:mm:ss", kind.tz is not None
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_dictionary(kind):
        return column.cast(pa.string()).to_pylist(), "@", False  # "@": text, "01000" stays
    return column.to_pylist(), None, False


def _append_rows(sheet: Any, columns: list[tuple[list[Any], str | None, bool]],
                 cell_type: Any, index: pd.Index) -> None:  # fmt: skip
    """Append the rows; cells with a number format become ``cell_type`` cells."""

    def cell(value: Any, number_format: str | None) -> Any:
        if number_format is None or value is None:
            return value
        made = cell_type(sheet, value=value)
        made.number_format = number_format
        return made

    formats = [number_format for _, number_format, _ in columns]
    for position, row in enumerate(zip(*(values for values, _, _ in columns), strict=True)):
        cells = [cell(value, fmt) for value, fmt in zip(row, formats, strict=True)]
        try:
            sheet.append(cells)
        except ValueError as err:  # openpyxl's IllegalCharacterError is a ValueError
            raise ArgumentError(f"to_excel: row {_label(index, position)!r} holds a character "
                                f"Excel cannot store ({err}); remove control characters, or "
                                "write CSV or Parquet instead") from err


def to_excel(df: pd.DataFrame, path: PathLike) -> Path:
    """Write a contacts frame to an Excel workbook (one sheet ``contacts``), atomically.

    Parameters
    ----------
    df
        A contacts frame (either dtype backend).
    path
        The ``.xlsx`` file to (re)place; its directory must exist.

    Returns
    -------
    pathlib.Path
        *path*: naive UTC timestamps, the zone in the header (``collected_at (UTC)``; Excel
        keeps milliseconds), lists joined with ``"; "``, strings (zip codes, phones) as text
        cells, missing values as empty cells.

    Raises
    ------
    ImportError
        openpyxl is not installed (``pip install "scoutframe[excel]"``).
    ArgumentError
        More rows than a sheet holds, or a character Excel cannot store.
    """
    openpyxl = _openpyxl()
    target = _target(path, "to_excel")
    if len(df) + 1 > EXCEL_MAX_ROWS:
        raise ArgumentError(f"to_excel: {len(df):,} rows do not fit in one Excel sheet (it "
                            f"holds {EXCEL_MAX_ROWS - 1:,} and a header); write CSV or Parquet")
    table = frames.table_from_pandas(df)
    columns = [_excel_column(table.column(name)) for name in table.column_names]
    header = [f"{name} (UTC)" if utc else name
              for name, (_, _, utc) in zip(table.column_names, columns, strict=True)]  # fmt: skip
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("contacts")
    sheet.append(header)
    _append_rows(sheet, columns, openpyxl.cell.WriteOnlyCell, df.index)
    with atomic_path(target) as temp:
        book.save(temp)
    return target
