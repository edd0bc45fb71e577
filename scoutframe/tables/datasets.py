"""Contacts as a hive-partitioned Parquet dataset, written in bounded memory and swapped in whole.

:func:`write_dataset` streams its source (a frame, a table, or the chunks of
``read_spherescout(..., chunksize=N)``) into ``<path>/country=FR/part-0.parquet`` ... and never
holds more than a few slices of it: each slice is split by partition, rows wait in per-partition
buffers until a row group is full (or the buffers reach their row cap), and each partition has
one open ``ParquetWriter``.

The swap: everything is written into a temporary directory beside *path* whose name starts with
``.`` (Spark, pyarrow, Dask, DuckDB and Polars skip it), then renamed into place. A previous
dataset at *path* is first renamed aside (also a ``.`` name), then deleted once the new one is
in place. An error or Ctrl-C removes the temporary directory and leaves the old dataset as it
was. (Between the two renames, for an instant, *path* does not exist.)

Reading it back: partition values are written as they are (``country=NA`` is Namibia; nulls go
to ``country=__HIVE_DEFAULT_PARTITION__``), and ``_common_metadata`` holds the full schema,
partition columns included. Give readers the partition column's type rather than letting them
guess it (a guess reads ``zipcode=01000`` as the number 1000, and ``pd.read_parquet`` or Dask
fail on a null partition): :func:`open_dataset` does this for pyarrow; elsewhere use, e.g.::

    pyarrow.dataset.dataset(path, partitioning=pyarrow.dataset.partitioning(
        pyarrow.schema([("country", pyarrow.string())]), flavor="hive"))
    duckdb.sql(f"select * from read_parquet('{path}/**/*.parquet', hive_partitioning=true, "
               "hive_types={'country': VARCHAR})")
    dask.dataframe.read_parquet(path, dataset={"partitioning": {"flavor": "hive",
                                "schema": pyarrow.schema([("country", pyarrow.string())])}})

Every file carries the provenance and the ``pandas`` metadata of
:func:`scoutframe.tables.parquet.with_file_metadata`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import quote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from ..errors import ArgumentError
from ..files import fsync_directory
from ..filesystems import is_remote, resolve
from ..models import PROVENANCE_ATTR, Provenance
from ..progress import Bar, progress_enabled
from . import frames, parquet
from .schema import CONTACT_SCHEMA

__all__ = ["open_dataset", "write_dataset"]

Source: TypeAlias = pd.DataFrame | pa.Table | Iterable[pd.DataFrame] | Iterable[pa.Table]

#: Rows converted and split at a time (a large frame or chunk is cut into slices this long).
SLICE_ROWS = 131_072
#: Rows of a full row group: a partition's buffer is written when it reaches this.
ROW_GROUP_ROWS = 65_536
#: Rows buffered over all partitions before the largest buffers are written early.
MAX_BUFFERED_ROWS = 131_072
#: Files open at once; past this, the least recently written is closed (a later part starts).
MAX_OPEN_FILES = 256
#: Directory name of a null partition value (as Hive, Spark and pyarrow write it).
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
_PARTITION_TYPES = (
    pa.types.is_string,
    pa.types.is_large_string,
    pa.types.is_integer,
    pa.types.is_boolean,
    pa.types.is_date,
)
_DATASET_FILES = ("_common_metadata", "_metadata", "_SUCCESS")


def write_dataset(
    source: Source,
    path: str | os.PathLike[str],
    *,
    partition_by: Sequence[str] = ("country",),
    progress: bool | None = None,
    storage_options: Mapping[str, Any] | None = None,
    filesystem: Any = None,
) -> Path | str:
    """Write contacts as a hive-partitioned Parquet dataset, in bounded memory, atomically.

    Parameters
    ----------
    source
        A frame (either dtype backend), a ``pyarrow.Table``, or an iterator of frames or
        tables (``read_spherescout(..., chunksize=N)``), consumed once, chunk by chunk.
    path
        The dataset directory. Its parent must exist. An existing dataset there is replaced
        whole once the new one is complete; any other existing file or directory is refused.
    partition_by
        Partition columns, outermost first (``()``: no partitioning, files at the top).
        Strings, integers, booleans or dates; not lists.
    progress
        Show a bar of rows written (``None``: follow ``SCOUTFRAME_PROGRESS``).
    storage_options, filesystem
        For a *path* on an object store (``s3://bucket/prefix``, any URI pyarrow or fsspec
        knows, or a path on ``filesystem``): credentials and endpoint, default the
        environment. There a folder cannot be renamed, so the swap is a manifest: the new
        version's files (``country=XX/part-<version>-0.parquet``) are written beside the old
        ones, then ``_scoutframe_dataset.json`` is replaced (the commit point), then the files
        of the version before the old one are deleted (the old one stays for readers of its
        manifest until the next write). :func:`open_dataset` follows the manifest and always
        reads one version whole; a tool that lists the folder (Spark, DuckDB) sees two
        versions' files. For such readers, write a Delta table
        (:func:`scoutframe.write_delta`).

    Returns
    -------
    pathlib.Path or str
        *path* (a ``Path`` locally, the URI on a remote store), holding
        ``country=XX/part-0.parquet`` files and ``_common_metadata``.

    Raises
    ------
    ArgumentError
        *path* is a file or a directory that is not a Parquet dataset; a partition column is
        missing, nested or of another unsupported type; a chunk has other columns than the
        first. Nothing is changed at *path*.

    Examples
    --------
    >>> chunks = pd.read_spherescout(filters, chunksize=100_000)  # doctest: +SKIP
    >>> write_dataset(chunks, "contacts")  # doctest: +SKIP
    """
    partition_by = [partition_by] if isinstance(partition_by, str) else list(partition_by)
    if filesystem is not None or is_remote(os.fspath(path)):
        from .remotedatasets import write_remote

        location = resolve(path, storage_options=storage_options, filesystem=filesystem)
        if not location.local:
            return write_remote(
                _slices(source),
                len(source) if isinstance(source, pd.DataFrame | pa.Table) else None,
                location,
                partition_by,
                lambda token: _PartitionedWriter(
                    location.path, partition_by, filesystem=location.filesystem, token=token
                ),
                progress=progress,
            )
        path = location.path
    target = _check_target(Path(os.path.abspath(path)))
    total = len(source) if isinstance(source, pd.DataFrame | pa.Table) else None
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        with Bar.rows(progress_enabled(progress), total, "write dataset") as bar:
            writer = _PartitionedWriter(staging, partition_by)
            try:
                for table in _slices(source):
                    writer.write(table)
                    bar.update(table.num_rows)
                writer.finish()
            finally:
                writer.close()
        os.chmod(staging, _umask_mode())  # mkdtemp made it 0700: a dataset is the user's output
        _swap(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


def open_dataset(
    path: str | os.PathLike[str],
    *,
    storage_options: Mapping[str, Any] | None = None,
    filesystem: Any = None,
) -> ds.Dataset:
    """Open a dataset written by :func:`write_dataset` with its exact schema.

    The partition columns get their written types (from ``_common_metadata``), so
    ``country=NA`` is the string ``"NA"``, ``zipcode=01000`` the string ``"01000"``, and a
    null partition is null.

    Parameters
    ----------
    path
        The dataset directory, or its URI on an object store (then the files of the version
        its manifest names, never a mix of two versions).
    storage_options, filesystem
        As for :func:`write_dataset`.

    Returns
    -------
    pyarrow.dataset.Dataset
        ``.to_table()`` reads it; ``frames.to_pandas`` turns that into the contacts frame.
    """
    if filesystem is not None or is_remote(os.fspath(path)):
        from .remotedatasets import open_remote

        location = resolve(path, storage_options=storage_options, filesystem=filesystem)
        if not location.local:
            return open_remote(location)
        path = location.path
    root = Path(path)
    common = root / "_common_metadata"
    schema = pq.read_schema(common) if common.is_file() else None
    if schema is None:
        return ds.dataset(root, format="parquet", partitioning="hive")
    names = _partition_names(root)
    part_schema = pa.schema([schema.field(n) for n in names if n in schema.names])
    partitioning = ds.partitioning(part_schema, flavor="hive")
    return ds.dataset(root, schema=schema, format="parquet", partitioning=partitioning)


# --------------------------------------------------------------------------------------------
# The source, as Arrow slices


def _slices(source: Source) -> Iterator[pa.Table]:
    """Yield the source as tables of at most :data:`SLICE_ROWS` rows, with one schema.

    The first table carries the provenance in its schema metadata (from ``df.attrs`` or the
    table's own metadata); frames are converted slice by slice, never whole.
    """
    chunks: Iterable[Any] = [source] if isinstance(source, pd.DataFrame | pa.Table) else source
    if isinstance(chunks, Mapping | str | bytes) or not isinstance(chunks, Iterable):
        raise ArgumentError(
            f"write_dataset() takes a DataFrame, a pyarrow Table or an iterator of them, got "
            f"{type(source).__name__}"
        )
    schema: pa.Schema | None = None
    for number, chunk in enumerate(chunks):
        for table in _chunk_slices(chunk, number):
            if schema is None:
                schema = table.schema
            else:
                table = _conform(table, schema, number)
            yield table
    if schema is None:  # no chunk at all: an empty dataset of contacts
        yield CONTACT_SCHEMA.empty_table()


def _chunk_slices(chunk: Any, number: int) -> Iterator[pa.Table]:
    if isinstance(chunk, pd.DataFrame):
        data = chunk.attrs.get(PROVENANCE_ATTR)
        provenance = Provenance.from_dict(data) if isinstance(data, Mapping) else None
        for start in range(0, max(len(chunk), 1), SLICE_ROWS):
            table = frames.table_from_pandas(chunk.iloc[start : start + SLICE_ROWS])
            yield frames.with_provenance(table, provenance) if provenance else table
    elif isinstance(chunk, pa.Table):
        for start in range(0, max(chunk.num_rows, 1), SLICE_ROWS):
            yield chunk.slice(start, SLICE_ROWS)
    else:
        raise ArgumentError(
            f"write_dataset(): chunk {number} is a {type(chunk).__name__}; the source must "
            "yield DataFrames or pyarrow Tables"
        )


def _conform(table: pa.Table, schema: pa.Schema, number: int) -> pa.Table:
    """Give a later chunk the first chunk's schema (same columns; types cast when they can)."""
    if table.schema.equals(schema):
        return table
    if sorted(table.column_names) != sorted(schema.names):
        raise ArgumentError(
            f"write_dataset(): chunk {number} has the columns {table.column_names}, the first "
            f"had {schema.names}; all chunks of a dataset need the same columns"
        )
    try:
        return table.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise ArgumentError(
            f"write_dataset(): chunk {number} has types the first chunk's schema cannot take "
            f"({err}); all chunks of a dataset need the same types"
        ) from err


# --------------------------------------------------------------------------------------------
# Writing partitions


class _PartitionedWriter:
    """Per-partition buffers and open Parquet files inside the staging directory."""

    def __init__(
        self,
        root: Path | str,
        partition_by: list[str],
        *,
        filesystem: pafs.FileSystem | None = None,
        token: str = "",
    ) -> None:
        self.root = root
        self.fs = filesystem  # None: a local directory (fsynced); else a remote store
        self.token = token  # in the part names of a remote version (part-<token>-0.parquet)
        self.partition_by = partition_by
        self.schema: pa.Schema | None = None
        self.file_schema: pa.Schema | None = None
        self.buffers: dict[tuple[Any, ...], list[pa.Table]] = {}
        self.buffered = 0
        self.writers: OrderedDict[tuple[Any, ...], pq.ParquetWriter] = OrderedDict()
        self.parts: dict[tuple[Any, ...], int] = {}
        self.written: list[Any] = []  # Paths, or the remote store's paths

    def _start(self, table: pa.Table) -> None:
        """Check the partition columns against the first slice; fix the files' schema."""
        missing = [c for c in self.partition_by if c not in table.column_names]
        if missing:
            raise ArgumentError(
                f"write_dataset(): partition column(s) {missing} are not in "
                f"the data; its columns: {table.column_names}"
            )
        for name in self.partition_by:
            kind = table.schema.field(name).type
            if not any(check(kind) for check in _PARTITION_TYPES):
                what = "a list" if pa.types.is_nested(kind) else f"of type {kind}"
                raise ArgumentError(
                    f"write_dataset(): cannot partition by {name!r}, which is {what}; "
                    "partition by a string, integer, boolean or date column (e.g. 'country')"
                )
        self.schema = parquet.with_file_metadata(table.slice(0, 0)).schema
        data = table.drop_columns(self.partition_by).slice(0, 0)
        self.file_schema = parquet.with_file_metadata(
            data, provenance=frames.provenance_of(table.schema)
        ).schema

    def write(self, table: pa.Table) -> None:
        """Split *table* by partition and buffer its rows; write what is full."""
        if self.schema is None:
            self._start(table)
        for key, rows in _split(table, self.partition_by):
            self._check_key(key)
            self.buffers.setdefault(key, []).append(rows.drop_columns(self.partition_by))
            self.buffered += rows.num_rows
            if sum(t.num_rows for t in self.buffers[key]) >= ROW_GROUP_ROWS:
                self._flush(key)
        while self.buffered > MAX_BUFFERED_ROWS:
            self._flush(max(self.buffers, key=lambda k: sum(t.num_rows for t in self.buffers[k])))
        pa.default_memory_pool().release_unused()  # hand freed pages back: a flat RSS

    def _check_key(self, key: tuple[Any, ...]) -> None:
        for name, value in zip(self.partition_by, key, strict=True):
            if value == "":
                raise ArgumentError(
                    f"write_dataset(): partition column {name!r} has empty strings, which a "
                    "directory name cannot hold; replace them with nulls or a value"
                )

    def _flush(self, key: tuple[Any, ...]) -> None:
        """Write a partition's buffered rows as one row group."""
        pieces = self.buffers.pop(key, [])
        rows = sum(t.num_rows for t in pieces)
        self.buffered -= rows
        if not rows:
            return
        writer = self.writers.get(key) or self._open(key)
        self.writers.move_to_end(key)
        writer.write_table(pa.concat_tables(pieces), row_group_size=max(rows, 1))

    def _open(self, key: tuple[Any, ...]) -> pq.ParquetWriter:
        if len(self.writers) >= MAX_OPEN_FILES:
            _, oldest = self.writers.popitem(last=False)
            oldest.close()
        segments = [
            f"{name}={_segment(value)}" for name, value in zip(self.partition_by, key, strict=True)
        ]
        part = self.parts.get(key, 0)
        self.parts[key] = part + 1
        name = f"part-{self.token}-{part}.parquet" if self.token else f"part-{part}.parquet"
        writer: pq.ParquetWriter
        if self.fs is None:
            directory = Path(self.root).joinpath(*segments)
            directory.mkdir(parents=True, exist_ok=True)
            path: Any = directory / name
            writer = pq.ParquetWriter(path, self.file_schema)
        else:  # an object appears whole when its writer closes
            path = "/".join([str(self.root), *segments, name])
            writer = pq.ParquetWriter(path, self.file_schema, filesystem=self.fs)
        self.written.append(path)
        self.writers[key] = writer
        return writer

    def finish(self) -> None:
        """Write every buffer, close the files, add ``_common_metadata``, make it durable."""
        for key in list(self.buffers):
            self._flush(key)
        self.close()
        assert self.schema is not None  # _slices always yields at least one table
        if self.fs is not None:
            pq.write_metadata(self.schema, f"{self.root}/_common_metadata", filesystem=self.fs)
            return
        assert isinstance(self.root, Path)
        pq.write_metadata(self.schema, self.root / "_common_metadata")
        for path in [*self.written, self.root / "_common_metadata"]:
            with open(path, "rb+") as handle:
                os.fsync(handle.fileno())
        for directory in {p.parent for p in self.written} | {self.root}:
            fsync_directory(directory)

    def close(self) -> None:
        """Close every open file (also on errors; the staging directory is then removed)."""
        while self.writers:
            _, writer = self.writers.popitem()
            writer.close()


def _segment(value: Any) -> str:
    """Return a partition value as a directory name, as pyarrow writes it (URI-escaped)."""
    if value is None:
        return NULL_PARTITION
    if isinstance(value, bool):
        return "true" if value else "false"
    return quote(str(value), safe="")


def _split(table: pa.Table, partition_by: list[str]) -> Iterator[tuple[tuple[Any, ...], pa.Table]]:
    """Yield ``(partition values, rows)`` for each partition present in *table*.

    One sort of the partition columns, then one ``take`` per run of equal values: the rows
    are copied into small tables of their own, so a buffer never pins a whole slice.
    """
    if not partition_by:
        yield (), table
        return
    if table.num_rows == 0:
        return
    keys = table.select(partition_by)
    order = pc.sort_indices(keys, sort_keys=[(c, "ascending") for c in partition_by])
    changed = np.zeros(table.num_rows, dtype=bool)
    changed[0] = True
    for name in partition_by:
        values = keys.column(name).take(order)
        changed[1:] |= _differs(values.slice(1), values.slice(0, table.num_rows - 1))
    starts = np.flatnonzero(changed)
    ends = np.append(starts[1:], table.num_rows)
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        rows = table.take(order.slice(start, end - start))
        yield tuple(rows.column(c)[0].as_py() for c in partition_by), rows


def _differs(a: pa.ChunkedArray, b: pa.ChunkedArray) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Element-wise ``a != b``, where two nulls are equal and a null differs from a value."""
    both = pc.and_(pc.is_valid(a), pc.is_valid(b))
    differ = pc.if_else(both, pc.not_equal(a, b), pc.not_equal(pc.is_valid(a), pc.is_valid(b)))
    return np.asarray(differ.to_numpy(zero_copy_only=False), dtype=bool)


# --------------------------------------------------------------------------------------------
# The target and the swap


def _check_target(target: Path) -> Path:
    """Refuse a target that is a file, or a directory that is not a Parquet dataset."""
    if not target.parent.is_dir():
        raise ArgumentError(
            f"write_dataset(): the directory {target.parent} does not exist; create it first"
        )
    if target.exists() and not target.is_dir():
        raise ArgumentError(
            f"write_dataset(): {target} is a file; a dataset is a directory: give another path "
            "or remove the file"
        )
    if target.is_dir():
        stranger = _not_dataset_entry(target)
        if stranger is not None:
            raise ArgumentError(
                f"write_dataset(): {target} exists and is not a Parquet dataset (it holds "
                f"{stranger}), so it is not replaced; give another path or empty it"
            )
    return target


def _not_dataset_entry(root: Path) -> Path | None:
    """Return the first entry under *root* that a dataset would not hold, or ``None``."""
    for directory, subdirs, files in os.walk(root):
        here = Path(directory)
        for name in subdirs:
            if not (name.startswith(".") or "=" in name):
                return here / name
        subdirs[:] = [name for name in subdirs if not name.startswith(".")]
        for name in files:
            if not (name.endswith(".parquet") or name.startswith(".") or name in _DATASET_FILES):
                return here / name
    return None


def _partition_names(root: Path) -> list[str]:
    """Partition column names, outermost first, from the directory names under *root*."""
    names: list[str] = []
    here = root
    while True:
        sub = next(
            (
                p
                for p in sorted(here.iterdir())
                if p.is_dir() and "=" in p.name and not p.name.startswith(".")
            ),
            None,
        )
        if sub is None:
            return names
        names.append(sub.name.split("=", 1)[0])
        here = sub


def _swap(staging: Path, target: Path) -> None:
    """Rename *staging* to *target*; a previous dataset there is moved aside, then deleted."""
    old: Path | None = None
    try:
        if target.exists():
            old = Path(
                tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent)
            )
            os.replace(target, old)  # onto an empty directory: allowed
        os.rename(staging, target)
    except BaseException:
        if old is not None:
            if target.exists():  # interrupted before the old dataset moved: drop the spare
                with contextlib.suppress(OSError):
                    old.rmdir()
            else:  # the old dataset moved, the new one did not: put the old one back
                os.replace(old, target)
        raise
    fsync_directory(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
