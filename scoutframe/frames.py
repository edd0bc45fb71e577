"""The contacts schema and every conversion into it: API records, export CSV, pandas, Polars.

One Arrow schema, :data:`CONTACT_SCHEMA`, serves pages, exports, chunks and deltas, so frames
from any path concatenate and merge without dtype surprises. Conventions:

* ids, zipcodes, phones and country codes are strings; nothing is guessed as NA, so the
  zipcode ``01000`` and the country ``NA`` (Namibia) survive;
* an empty scalar field (``""``) becomes null; an empty list field becomes an empty list;
* ``email``, ``phone`` and ``categories`` are ``list<string>`` (the CSV joins them with ``"; "``;
  the live API sometimes sends ``phone`` as a plain string, which becomes a one-element list);
* ``collected_at`` is ``timestamp[us, tz=UTC]``;
* columns the schema does not know are kept as strings and announced by a
  :class:`SchemaDriftWarning`.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

if TYPE_CHECKING:
    import polars

__all__ = [
    "CONTACT_COLUMNS",
    "CONTACT_SCHEMA",
    "LIST_COLUMNS",
    "PROVENANCE_ATTR",
    "DtypeBackend",
    "MaskedEmailWarning",
    "Provenance",
    "SchemaDriftWarning",
    "check_columns",
    "drift_columns",
    "empty_table",
    "iter_csv",
    "read_csv",
    "records_to_table",
    "table_from_pandas",
    "to_pandas",
    "to_polars",
    "warn_from_caller",
]

DtypeBackend = Literal["pyarrow", "numpy_nullable"]

#: Key of the provenance dictionary in ``DataFrame.attrs``.
PROVENANCE_ATTR = "scoutframe"

#: Separator of list fields in the export CSV.
LIST_SEPARATOR = "; "

CONTACT_SCHEMA = pa.schema(
    [
        pa.field("place_id", pa.string()),
        pa.field("name", pa.string()),
        pa.field("email", pa.list_(pa.string())),
        pa.field("phone", pa.list_(pa.string())),
        pa.field("website", pa.string()),
        pa.field("instagram", pa.string()),
        pa.field("facebook", pa.string()),
        pa.field("address", pa.string()),
        pa.field("city", pa.string()),
        pa.field("zipcode", pa.string()),
        pa.field("level1_location", pa.string()),
        pa.field("level2_location", pa.string()),
        pa.field("level3_location", pa.string()),
        pa.field("country", pa.string()),
        pa.field("categories", pa.list_(pa.string())),
        pa.field("rating", pa.float64()),
        pa.field("review_count", pa.int32()),
        pa.field("latitude", pa.float64()),
        pa.field("longitude", pa.float64()),
        pa.field("collected_at", pa.timestamp("us", tz="UTC")),
    ]
)
CONTACT_COLUMNS: tuple[str, ...] = tuple(CONTACT_SCHEMA.names)
LIST_COLUMNS: frozenset[str] = frozenset({"email", "phone", "categories"})
_TIMESTAMP = pa.timestamp("us", tz="UTC")


class SchemaDriftWarning(UserWarning):
    """The data carried columns the contacts schema does not know; they are kept as strings."""


class MaskedEmailWarning(UserWarning):
    """The frame's emails are masked (``j***@d*****.fr``): search pages never carry real ones."""


# --------------------------------------------------------------------------------------------
# Provenance


@dataclass(frozen=True)
class Provenance:
    """Where a frame came from; stored JSON-safe in ``df.attrs["scoutframe"]``.

    Attributes
    ----------
    filters : dict
        The canonical filters (API parameter names to lists of strings).
    search_id : str or None
        The API's id of the search.
    total_count : int or None
        How many contacts matched when the read started.
    method : str
        ``"pages"``, ``"export"`` or ``"delta"``.
    credits_spent : int
        Credits this read charged.
    task_id, history_id : str, int or None
        The export task and history entry, when there was one.
    fetched_at : str
        When the read finished, UTC ISO-8601.
    api_origin : str
        The API origin the data came from.
    library_version : str
        The scoutframe version that read it.
    emails_masked : bool
        True when the emails are masked placeholders, not real addresses.
    reason : str
        Why the method was chosen (``method="auto"`` explains itself here).
    """

    filters: Mapping[str, Any] = field(default_factory=dict)
    search_id: str | None = None
    total_count: int | None = None
    method: str = "pages"
    credits_spent: int = 0
    task_id: str | None = None
    history_id: int | None = None
    fetched_at: str = ""
    api_origin: str = ""
    library_version: str = ""
    emails_masked: bool = False
    reason: str = ""

    #: Bumped when the layout of :meth:`to_dict` changes incompatibly.
    SCHEMA_VERSION = 1

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dictionary (with a ``version`` key)."""
        data = asdict(self)
        data["filters"] = json.loads(json.dumps(dict(self.filters), default=str))
        data["version"] = self.SCHEMA_VERSION
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Provenance:
        """Build from :meth:`to_dict` output; unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def attach(self, df: pd.DataFrame) -> pd.DataFrame:
        """Store this provenance in ``df.attrs`` and return *df*."""
        df.attrs[PROVENANCE_ATTR] = self.to_dict()
        return df


# --------------------------------------------------------------------------------------------
# Columns


def check_columns(columns: Iterable[str] | None) -> list[str] | None:
    """Validate a ``columns`` selection against the schema (``ValueError`` on unknown names)."""
    if columns is None:
        return None
    if isinstance(columns, str):
        columns = [columns]
    selected = list(dict.fromkeys(columns))
    unknown = [c for c in selected if c not in CONTACT_COLUMNS]
    if unknown:
        known = ", ".join(CONTACT_COLUMNS)
        raise ValueError(f"Unknown column(s) {unknown}; known columns: {known}")
    return selected


def drift_columns(table: pa.Table) -> list[str]:
    """Names of the columns of *table* that :data:`CONTACT_SCHEMA` does not know."""
    return [name for name in table.column_names if name not in CONTACT_COLUMNS]


def empty_table(columns: Sequence[str] | None = None) -> pa.Table:
    """Return an empty table with the contacts schema (or the selected columns of it)."""
    schema = CONTACT_SCHEMA
    if columns is not None:
        schema = pa.schema([CONTACT_SCHEMA.field(c) for c in columns])
    return schema.empty_table()


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_from_caller(message: str, category: type[Warning]) -> None:
    """Warn, pointing at the first frame outside scoutframe (the user's line).

    Reads run through generators and helpers of varying depth; a fixed ``stacklevel`` would
    point inside the package whenever that depth changes.
    """
    level = 2  # 1 is this function; 2 its caller
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


def drift_message(names: Sequence[str]) -> str:
    """Return the :class:`SchemaDriftWarning` text for the unknown columns ``names``."""
    return (
        f"Unknown column(s) {list(names)} kept as strings; the API sent fields this version "
        "of scoutframe does not know."
    )


def _warn_drift(names: Sequence[str]) -> None:
    if names:
        warn_from_caller(drift_message(names), SchemaDriftWarning)


# --------------------------------------------------------------------------------------------
# Conversions of single columns


def _split_lists(strings: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Split ``"a; b"`` strings into lists; empty or null fields give empty lists."""
    if isinstance(strings, pa.ChunkedArray):  # chunk by chunk: no copy of the whole column
        return pa.chunked_array(
            [_split_chunk(chunk) for chunk in strings.chunks], type=pa.list_(pa.string())
        )
    return _split_chunk(strings)


def _split_chunk(strings: pa.Array) -> pa.Array:
    n = len(strings)
    split = pc.split_pattern(strings, LIST_SEPARATOR)
    values = pc.list_flatten(split)
    parents = pc.list_parent_indices(split).to_numpy()
    keep = pc.not_equal(values, "").to_numpy(zero_copy_only=False)
    counts = np.bincount(parents[keep], minlength=n)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    kept = values.filter(pa.array(keep)) if not keep.all() else values
    return pa.ListArray.from_arrays(pa.array(offsets), kept, type=pa.list_(pa.string()))


def _to_timestamps(strings: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Parse ISO-8601 strings as UTC timestamps; values without an offset are taken as UTC."""
    strings = pc.if_else(pc.equal(strings, ""), pa.scalar(None, pa.string()), strings)
    try:
        return strings.cast(_TIMESTAMP)
    except pa.ArrowInvalid:
        naive = pc.replace_substring_regex(strings, r"(Z|[+-]\d\d:?\d\d)$", "")
        return pc.assume_timezone(naive.cast(pa.timestamp("us")), timezone="UTC")


def _normalise_column(name: str, column: pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    """Bring one CSV column (read as strings for list/timestamp columns) to its schema type."""
    if name in LIST_COLUMNS:
        return _split_lists(column)
    if name == "collected_at" and not pa.types.is_timestamp(column.type):
        return _to_timestamps(column)
    if name in CONTACT_COLUMNS:
        target = CONTACT_SCHEMA.field(name).type
        return column if column.type == target else column.cast(target)
    return column if column.type == pa.string() else column.cast(pa.string())


def _normalise_table(holder: list[pa.Table]) -> pa.Table:
    """Convert the raw table in *holder* (taken out of it) column by column.

    Each raw column is released as soon as it is converted, so the peak memory is about one
    table plus one column, not two tables.
    """
    raw = holder.pop()
    names = raw.column_names
    columns: list[pa.ChunkedArray | None] = list(raw.columns)
    del raw
    arrays = []
    for i, name in enumerate(names):
        column, columns[i] = columns[i], None
        assert column is not None
        arrays.append(_normalise_column(name, column))
        del column
    fields_ = [
        CONTACT_SCHEMA.field(n) if n in CONTACT_COLUMNS else pa.field(n, pa.string())
        for n in names
    ]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields_))


# --------------------------------------------------------------------------------------------
# API records (search pages)


def _as_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]  # the live API's phone-as-string shape
    return [str(v) for v in value if v is not None and v != ""]


def _as_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def records_to_table(
    records: Sequence[Mapping[str, Any]],
    *,
    columns: Sequence[str] | None = None,
    warn_drift: bool = True,
) -> pa.Table:
    """Convert contact records as the API sends them into a table with the contacts schema.

    Parameters
    ----------
    records
        Contact dictionaries from a search page.
    columns
        Keep only these schema columns, in this order (``None``: all, plus unknown fields).
    warn_drift
        Emit a :class:`SchemaDriftWarning` when records carry unknown fields (which are kept
        as string columns when *columns* is ``None``).

    Returns
    -------
    pyarrow.Table
        One row per record.
    """
    wanted = list(columns) if columns is not None else list(CONTACT_COLUMNS)
    extra: list[str] = []
    if columns is None:
        seen = set(CONTACT_COLUMNS)
        for record in records:
            for key in record:
                if key not in seen:
                    seen.add(key)
                    extra.append(key)
    arrays: list[pa.Array] = []
    schema_fields: list[pa.Field] = []
    for name in wanted + extra:
        values = [record.get(name) for record in records]
        if name in LIST_COLUMNS:
            arrays.append(pa.array([_as_list(v) for v in values], pa.list_(pa.string())))
        elif name == "collected_at":
            strings = pa.array([_as_str(v) for v in values], pa.string())
            arrays.append(_to_timestamps(strings))
        elif name in CONTACT_COLUMNS and CONTACT_SCHEMA.field(name).type != pa.string():
            typ = CONTACT_SCHEMA.field(name).type
            arrays.append(pa.array([None if v == "" else v for v in values], typ))
        else:
            arrays.append(pa.array([_as_str(v) for v in values], pa.string()))
        schema_fields.append(
            CONTACT_SCHEMA.field(name) if name in CONTACT_COLUMNS else pa.field(name, pa.string())
        )
    if warn_drift:
        _warn_drift(extra)
    return pa.Table.from_arrays(arrays, schema=pa.schema(schema_fields))


# --------------------------------------------------------------------------------------------
# Export CSV


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
        _warn_drift(extra)
    return _normalise_table([pacsv.read_csv(path, read_options=read, convert_options=convert)])


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
        _warn_drift(extra)
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
                yield _normalise_table([table.slice(0, take)])
                rest = table.slice(take)
                pending = rest.to_batches() if rest.num_rows else []
                pending_rows = rest.num_rows
                remaining = -1 if remaining < 0 else remaining - take
            if remaining == 0:
                return
        if pending_rows and remaining != 0:
            table = pa.Table.from_batches(pending)
            take = pending_rows if remaining < 0 else min(pending_rows, remaining)
            yield _normalise_table([table.slice(0, take)])
    finally:
        reader.close()


# --------------------------------------------------------------------------------------------
# pandas and Polars


def _numpy_nullable_type(arrow_type: pa.DataType) -> Any:
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return pd.StringDtype()
    if pa.types.is_int32(arrow_type):
        return pd.Int32Dtype()
    if pa.types.is_int64(arrow_type):
        return pd.Int64Dtype()
    if pa.types.is_floating(arrow_type):
        return pd.Float64Dtype()
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    return None


def to_pandas(
    table: pa.Table,
    *,
    dtype_backend: DtypeBackend = "pyarrow",
    provenance: Provenance | None = None,
    index_start: int = 0,
    self_destruct: bool = False,
) -> pd.DataFrame:
    """Convert a contacts table to pandas.

    Parameters
    ----------
    table
        A table with the contacts schema.
    dtype_backend
        ``"pyarrow"`` (default): ``pd.ArrowDtype`` columns, a near zero-copy conversion.
        ``"numpy_nullable"``: ``string``, ``Int32``, ``Float64`` and ``datetime64[us, UTC]``
        columns; list columns become object columns of Python lists (NumPy has no list dtype).
    provenance
        Stored in ``df.attrs["scoutframe"]``.
    index_start
        First value of the RangeIndex (chunks continue each other's index, as in pandas).
    self_destruct
        Free the table's buffers while converting (only when the caller owns *table*).

    Returns
    -------
    pandas.DataFrame
    """
    if dtype_backend not in ("pyarrow", "numpy_nullable"):
        raise ValueError(
            f"dtype_backend must be 'pyarrow' or 'numpy_nullable', not {dtype_backend!r}"
        )
    n = table.num_rows
    df: pd.DataFrame
    if dtype_backend == "pyarrow":
        df = table.to_pandas(
            types_mapper=pd.ArrowDtype, self_destruct=self_destruct, split_blocks=True,
        )
    else:
        list_cols = {
            name: table.column(name).to_pylist()
            for name, typ in zip(table.column_names, table.schema.types, strict=True)
            if pa.types.is_list(typ) or pa.types.is_large_list(typ)
        }
        scalars = table.drop_columns(list(list_cols)) if list_cols else table
        df = scalars.to_pandas(types_mapper=_numpy_nullable_type, split_blocks=True)
        for position, name in enumerate(table.column_names):
            if name in list_cols:
                df.insert(position, name, pd.Series(list_cols[name], dtype=object))
    if index_start:
        df.index = pd.RangeIndex(index_start, index_start + n)
    if provenance is not None:
        provenance.attach(df)
    return df


def table_from_pandas(df: pd.DataFrame) -> pa.Table:
    """Convert a contacts frame (either dtype backend) back to Arrow, without the index.

    Known columns get their schema types, so the result concatenates with tables read by
    :func:`read_csv` and :func:`records_to_table`.
    """
    table = pa.Table.from_pandas(df, preserve_index=False)
    arrays = []
    fields_ = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        if name in CONTACT_COLUMNS:
            target = CONTACT_SCHEMA.field(name)
            if column.type != target.type:
                column = column.cast(target.type)
            fields_.append(target)
        else:
            if pa.types.is_large_string(column.type):
                column = column.cast(pa.string())
            fields_.append(pa.field(name, column.type))
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields_))


def to_polars(data: pa.Table | pd.DataFrame) -> polars.DataFrame:
    """Convert a contacts table or frame to a Polars DataFrame (zero-copy from Arrow)."""
    import polars as pl  # optional dependency, imported on use

    table = data if isinstance(data, pa.Table) else table_from_pandas(data)
    result = pl.from_arrow(table, rechunk=False)
    assert isinstance(result, pl.DataFrame)
    return result
