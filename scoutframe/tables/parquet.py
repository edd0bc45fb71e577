"""Contacts frames into Parquet files that come back intact.

:func:`to_parquet` / :func:`read_parquet` round-trip dtypes (both backends), list columns and
``df.attrs`` (the provenance, also kept under the schema metadata key ``b"scoutframe"``).
:func:`write_table` is the one writer of contacts tables to Parquet (for the cache and the CLI
too), and :func:`with_file_metadata` the one source of their metadata, so every file
scoutframe writes reads back the same way.

*The upstream issue.* ``df.to_parquet(p)`` of an Arrow-backed frame records the dtype name
``list<item: string>[pyarrow]`` in the file's ``pandas`` metadata; pandas cannot parse it, so
a plain ``pd.read_parquet(p)`` (pandas 3 + pyarrow) raises ``TypeError: data type
'list<item: string>[pyarrow]' not understood``. Workarounds: ``pd.read_parquet(p,
dtype_backend="pyarrow")``, or ``scoutframe.read_parquet(p)`` (which reads such files too).
The files written here record list columns as ``object`` and Arrow strings as
``utf8[pyarrow]`` (``string[pyarrow]`` would parse as ``pd.StringDtype``): a plain
``pd.read_parquet(p)`` works, restores ``df.attrs`` and gives every scalar column its exact
dtype; list columns come back as ``object`` columns of NumPy arrays.

The index is not data: it is not written; frames read back get a RangeIndex.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..checks import DtypeBackend
from ..checks import dtype_backend as check_dtype_backend
from ..errors import ArgumentError
from ..files import PathLike, atomic_path, output_target
from ..models import PROVENANCE_ATTR, Provenance
from . import frames
from .schema import is_list_type

__all__ = ["read_parquet", "to_parquet", "with_file_metadata", "write_table"]


def _pandas_metadata(table: pa.Table, frame: pd.DataFrame | None) -> dict[str, Any]:
    """Return the ``pandas`` metadata of *table*, with dtype names pandas can parse back."""
    sample = frame.iloc[:0] if frame is not None else frames.to_pandas(table.slice(0, 0))
    sample.attrs = {}  # attrs are stored by with_file_metadata, after its own checks
    raw = pa.Schema.from_pandas(sample, preserve_index=False).metadata[b"pandas"]
    meta: dict[str, Any] = json.loads(raw)
    for column in meta["columns"]:
        name = column["field_name"]
        if is_list_type(table.schema.field(name).type):
            # pandas cannot parse "list<item: string>[pyarrow]": let it build an object column
            column.update(numpy_type="object", pandas_type="list[unicode]")
        elif frame is not None and isinstance(frame.dtypes[name], pd.StringDtype):
            # Recorded as "string", which pandas 2.2 reads back as Python-object strings
            column["numpy_type"] = f"string[{frame.dtypes[name].storage}]"
        elif column["numpy_type"] == "string[pyarrow]" and (
            frame is None or isinstance(frame.dtypes[name], pd.ArrowDtype)
        ):
            # "string[pyarrow]" parses as pd.StringDtype, "utf8[pyarrow]" as the ArrowDtype
            column["numpy_type"] = "utf8[pyarrow]"
    return meta


def with_file_metadata(
    table: pa.Table,
    *,
    provenance: Provenance | None = None,
    attrs: Mapping[str, Any] | None = None,
    frame: pd.DataFrame | None = None,
) -> pa.Table:
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
        raise ArgumentError(
            f"df.attrs {bad} cannot be stored in a Parquet file: its metadata "
            "is JSON. Convert those values to JSON types or remove them"
        )
    return {str(key): value for key, value in attrs.items()}


def write_table(
    table: pa.Table, path: PathLike, *, provenance: Provenance | None = None, private: bool = False
) -> Path:
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
    return _write(
        with_file_metadata(table, provenance=provenance),
        output_target(path, "write_table"),
        private=private,
    )


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
        raise ArgumentError(
            f"to_parquet() takes a DataFrame, got {type(df).__name__}; write a "
            "pyarrow Table with scoutframe.tables.parquet.write_table(table, path)"
        )
    target = output_target(path, "to_parquet")
    data = df.attrs.get(PROVENANCE_ATTR)
    provenance = Provenance.from_dict(data) if isinstance(data, Mapping) else None
    attrs = _json_attrs(df.attrs)  # before any conversion: pyarrow warns about bad attrs
    table = frames.table_from_pandas(df)
    return _write(with_file_metadata(table, provenance=provenance, attrs=attrs, frame=df), target)


def read_parquet(
    path: PathLike, *, dtype_backend: DtypeBackend = "pyarrow", columns: list[str] | None = None
) -> pd.DataFrame:
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
        hint = (
            " (a directory: read a dataset with scoutframe.tables.datasets.open_dataset)"
            if source.is_dir()
            else ""
        )
        raise ArgumentError(f"read_parquet: {source} is not a file{hint}")
    schema = pq.read_schema(source)
    if columns is not None:
        columns = list(dict.fromkeys([columns] if isinstance(columns, str) else columns))
        unknown = [c for c in columns if c not in schema.names]
        if unknown:
            raise ArgumentError(
                f"read_parquet: no column(s) {unknown} in {source}; its columns: {schema.names}"
            )
    meta = dict(schema.metadata or {})
    pandas_meta = json.loads(meta.pop(b"pandas", b"{}"))  # it would override to_pandas' dtypes
    table = pq.read_table(source, columns=columns).replace_schema_metadata(meta)
    df = frames.to_pandas(table, dtype_backend=backend, provenance=frames.provenance_of(schema))
    df.attrs = {**pandas_meta.get("attributes", {}), **df.attrs}
    index = [
        c for c in pandas_meta.get("index_columns", []) if isinstance(c, str) and c in df.columns
    ]
    if index:  # an index that DataFrame.to_parquet stored as columns
        df = df.set_index(index)
        df.index.names = [None if n.startswith("__index_level_") else n for n in index]
    return df
