"""Conversions into and out of the contacts schema: API records, pandas, Polars, metadata.

The schema itself is :mod:`scoutframe.tables.schema`; the export CSV is
:mod:`scoutframe.tables.exportcsv`. Nothing is re-exported here: each name has one home.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from ..checks import DtypeBackend
from ..checks import dtype_backend as check_dtype_backend
from ..extras import require
from ..models import PROVENANCE_ATTR, Provenance
from .schema import CONTACT_COLUMNS, CONTACT_SCHEMA, LIST_COLUMNS, announce_drift, to_timestamps

if TYPE_CHECKING:
    import polars

__all__ = [
    "provenance_from_json",
    "provenance_of",
    "records_to_table",
    "row_label",
    "table_from_pandas",
    "to_pandas",
    "to_polars",
    "with_provenance",
]


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
            arrays.append(to_timestamps(strings))
        elif name in CONTACT_COLUMNS and CONTACT_SCHEMA.field(name).type != pa.string():
            typ = CONTACT_SCHEMA.field(name).type
            arrays.append(pa.array([None if v == "" else v for v in values], typ))
        else:
            arrays.append(pa.array([_as_str(v) for v in values], pa.string()))
        schema_fields.append(
            CONTACT_SCHEMA.field(name) if name in CONTACT_COLUMNS else pa.field(name, pa.string())
        )
    if warn_drift:
        announce_drift(extra)
    return pa.Table.from_arrays(arrays, schema=pa.schema(schema_fields))


# --------------------------------------------------------------------------------------------
# Provenance in Arrow and Parquet metadata


def with_provenance(table: pa.Table, provenance: Provenance) -> pa.Table:
    """Return ``table`` with ``provenance`` as JSON in its schema metadata (``b"scoutframe"``).

    The one writer of provenance into Arrow (and so Parquet) metadata; :func:`provenance_of`
    reads it back.
    """
    meta = dict(table.schema.metadata or {})
    meta[PROVENANCE_ATTR.encode()] = json.dumps(provenance.to_dict()).encode()
    return table.replace_schema_metadata(meta)


def provenance_of(schema: pa.Schema) -> Provenance | None:
    """Read the provenance that :func:`with_provenance` stored; ``None`` when there is none."""
    return provenance_from_json((schema.metadata or {}).get(PROVENANCE_ATTR.encode()))


def provenance_from_json(raw: str | bytes | None) -> Provenance | None:
    """Return the provenance stored as JSON text (``None``: absent or not a provenance)."""
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return Provenance.from_dict(data) if isinstance(data, Mapping) else None


# --------------------------------------------------------------------------------------------
# pandas and Polars


#: The ``numpy_nullable`` backend's strings, the same on pandas 2.2 and 3.x. ``pd.StringDtype()``
#: alone is Python objects on 2.2 and Arrow on 3.x, and pandas 3's default ``str`` dtype has
#: ``NaN`` for missing values where every other nullable dtype here has ``pd.NA``: stating the
#: storage keeps one dtype, Arrow memory and ``pd.NA`` on both.
NULLABLE_STRING = pd.StringDtype("pyarrow")


def _numpy_nullable_type(arrow_type: pa.DataType) -> Any:
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return NULLABLE_STRING
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
        ``"numpy_nullable"``: ``string[pyarrow]`` (missing: ``pd.NA``, on pandas 2.2 as on 3.x),
        ``Int32``, ``Float64`` and ``datetime64[us, UTC]`` columns; list columns become object
        columns of Python lists (NumPy has no list dtype).
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
    check_dtype_backend(dtype_backend)
    n = table.num_rows
    df: pd.DataFrame
    if dtype_backend == "pyarrow":
        df = table.to_pandas(
            types_mapper=pd.ArrowDtype,
            self_destruct=self_destruct,
            split_blocks=True,
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


def to_polars(data: pa.Table | pd.DataFrame, *, feature: str = "to_polars") -> polars.DataFrame:
    """Convert a contacts table or frame to a Polars DataFrame (zero-copy from Arrow).

    Without polars (the ``polars`` extra), a one-line ``ModuleNotFoundError`` names *feature*
    and the extra.
    """
    require("polars", feature=feature, extra="polars")
    import polars as pl  # installed: require said so

    table = data if isinstance(data, pa.Table) else table_from_pandas(data)
    result = pl.from_arrow(table, rechunk=False)
    assert isinstance(result, pl.DataFrame)
    return result


def row_label(index: pd.Index | None, position: int) -> Any:
    """Return the label of row *position* in *index* (the position itself without one)."""
    row = index[position] if index is not None else position
    return row.item() if hasattr(row, "item") else row
