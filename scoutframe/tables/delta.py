"""Contacts as a Delta Lake table (delta-rs): written, merged by ``place_id``, read as of a version.

Delta Lake gives what a shared folder of Parquet files cannot: every write is one atomic
table *version* (a JSON commit in ``_delta_log/``, created with a put-if-absent on object
stores), readers see one version whole, and old versions stay readable (``version=``, a
time) until they are vacuumed. Spark, Trino, DuckDB, Polars and pandas read it as it is.

* :func:`write_delta` writes a frame, a table or the chunks of a read; ``mode="merge"``
  (the default) is delta-rs's own ``MERGE`` by ``place_id`` with exactly the rule of
  :func:`scoutframe.tables.merge.upsert`: the newer ``collected_at`` wins, the delta wins a
  tie, a null ``collected_at`` is the oldest, the winner replaces the row whole, new keys are
  inserted, nothing is deleted. Duplicate keys inside the source are first resolved by the
  same rule (``MERGE`` refuses two source rows for one target row).
* :func:`read_delta` reads the table (or one version of it) back into the contacts frame,
  with the provenance that was written with that version.

Each commit carries scoutframe's facts in its ``commitInfo`` (``scoutframe``: the provenance;
other keys the caller adds, such as the cache's manifest), so a version says where its rows
came from. Credentials never go there: ``storage_options`` are passed to delta-rs only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse
from urllib.request import url2pathname

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs

from ..checks import DtypeBackend, one_of
from ..checks import dtype_backend as check_dtype_backend
from ..errors import ArgumentError
from ..extras import require
from ..models import PROVENANCE_ATTR, Provenance
from . import frames
from .merge import upsert
from .schema import CONTACT_SCHEMA

if TYPE_CHECKING:
    import deltalake

__all__ = [
    "MERGE_PREDICATE",
    "UPDATE_PREDICATE",
    "arrow_dataset",
    "commit_metadata",
    "merge_delta_table",
    "open_delta",
    "read_delta",
    "read_delta_table",
    "write_delta",
]

DeltaMode = Literal["merge", "overwrite", "append"]
Version = int | datetime | str
#: Rows are the same contact when their ``place_id`` is.
MERGE_PREDICATE = "t.place_id = s.place_id"
#: :func:`~scoutframe.tables.merge.upsert`'s rule for a matched row: the source (the delta)
#: wins when its ``collected_at`` is newer or equal (a tie goes to the delta), and a null is
#: the oldest (a null target always loses; a null source loses to any real time).
UPDATE_PREDICATE = (
    "t.collected_at IS NULL OR (s.collected_at IS NOT NULL AND s.collected_at >= t.collected_at)"
)
#: commitInfo key of the provenance.
_PROVENANCE_KEY = PROVENANCE_ATTR


def _deltalake(feature: str) -> Any:
    """Import delta-rs, or say in one line that ``feature`` needs the ``delta`` extra."""
    return require("deltalake", feature=feature, extra="delta")


def _uri(uri: str | os.PathLike[str]) -> str:
    text = os.fspath(uri)
    return text if "://" in text else os.path.abspath(text)


def open_delta(
    uri: str | os.PathLike[str],
    *,
    version: Version | None = None,
    storage_options: Mapping[str, str] | None = None,
) -> deltalake.DeltaTable:
    """Open the table (``version``: a version number, a ``datetime`` or ISO-8601 text).

    Raises
    ------
    ArgumentError
        There is no Delta table at ``uri``, or no such version (what exists is said).
    """
    dl = _deltalake("read_delta")
    options = dict(storage_options or {})
    try:
        table: deltalake.DeltaTable = dl.DeltaTable(_uri(uri), storage_options=options or None)
    except dl.exceptions.TableNotFoundError as exc:
        raise ArgumentError(f"there is no Delta table at {uri}") from exc
    if version is None:
        return table
    latest = table.version()
    try:
        if isinstance(version, datetime):
            if version.tzinfo is None:
                raise ArgumentError(
                    "a Delta table's time is UTC: give as_of/version a datetime with a zone "
                    "(datetime(..., tzinfo=UTC)) or an ISO-8601 text ending in Z"
                )
            table.load_as_version(version)
        elif isinstance(version, str):
            table.load_as_version(datetime.fromisoformat(version.replace("Z", "+00:00")))
        elif isinstance(version, int) and not isinstance(version, bool):
            table.load_as_version(version)
        else:
            raise ArgumentError(f"a version is an int, a datetime or ISO-8601 text: {version!r}")
    except (ValueError, OSError, dl.exceptions.DeltaError) as exc:
        if isinstance(exc, ArgumentError):
            raise
        raise ArgumentError(
            f"the Delta table at {uri} has no version {version!r} (its versions: 0 to "
            f"{latest}; a time must be at or after the first commit, and a vacuum removes "
            f"old versions' files)"
        ) from exc
    return table


def _contacts_types(table: pa.Table) -> pa.Table:
    """Give the columns the contacts schema's types back (delta-rs names list items otherwise)."""
    fields = [
        CONTACT_SCHEMA.field(name) if name in CONTACT_SCHEMA.names else table.schema.field(name)
        for name in table.column_names
    ]
    target = pa.schema(fields)
    return table if table.schema.equals(target) else table.cast(target)


def commit_metadata(
    table: deltalake.DeltaTable, key: str, storage_options: Mapping[str, str] | None = None
) -> str | None:
    """Return a scoutframe key of the commit that made the table's loaded version.

    Read from that version's own log file (``DeltaTable.history`` numbers commits from a
    second look at the log, which a concurrent commit can shift by one). A commit by another
    writer (an ``OPTIMIZE`` in Spark) does not have the key: the newest earlier commit of
    ours is searched, then the history (whose early log files a checkpoint may have
    replaced).
    """
    import pyarrow.fs as pafs
    from deltalake.fs import DeltaStorageHandler

    version = int(table.version())
    log = pafs.PyFileSystem(
        DeltaStorageHandler(table.table_uri, dict(storage_options or {}) or None)
    )
    for number in range(version, max(-1, version - 64), -1):
        try:
            with log.open_input_stream(f"_delta_log/{number:020d}.json") as stream:
                text = bytes(stream.read()).decode("utf-8")
        except (OSError, FileNotFoundError):
            break
        for line in text.splitlines():
            action = json.loads(line) if line.strip() else {}
            info = action.get("commitInfo") if isinstance(action, dict) else None
            if isinstance(info, dict) and key in info:
                return str(info[key])
    for commit in table.history(limit=64):
        if int(commit.get("version", -1)) <= version and key in commit:
            return str(commit[key])
    return None


def _provenance(
    table: deltalake.DeltaTable, storage_options: Mapping[str, str] | None = None
) -> Provenance | None:
    return frames.provenance_from_json(commit_metadata(table, _PROVENANCE_KEY, storage_options))


def read_delta_table(
    uri: str | os.PathLike[str],
    *,
    version: Version | None = None,
    columns: list[str] | None = None,
    storage_options: Mapping[str, str] | None = None,
    filesystem: pafs.FileSystem | None = None,
) -> tuple[pa.Table, Provenance | None, int]:
    """Return the table's rows (contacts types), the provenance of that version, the version.

    ``filesystem``: the table's directory as a pyarrow filesystem (see :func:`arrow_dataset`).
    """
    table = open_delta(uri, version=version, storage_options=storage_options)
    rows = arrow_dataset(table, filesystem).to_table(columns=columns)
    return _contacts_types(rows), _provenance(table, storage_options), table.version()


def arrow_dataset(
    table: deltalake.DeltaTable, filesystem: pafs.FileSystem | None = None
) -> pads.Dataset:
    """Return the version's files as a pyarrow dataset read by one of Arrow's own filesystems.

    ``filesystem`` is the table's directory (a ``SubTreeFileSystem``); without it, a local
    table gets one. Not delta-rs's default, a filesystem written in Python: Arrow's I/O
    threads then call back into Python, and a process that ends while one is still alive
    aborts ("terminate called without an active exception", delta-io/delta-rs#2184), which
    a scheduled refresh must never do. Elsewhere (a URI without a filesystem) that default
    stays.
    """
    if filesystem is None:
        local = _local_directory(table.table_uri)
        if local is not None:
            filesystem = pafs.SubTreeFileSystem(local, pafs.LocalFileSystem())
    return table.to_pyarrow_dataset(filesystem=filesystem)


def _local_directory(table_uri: str) -> str | None:
    """Return the directory of a ``file://`` (or plain path) table URI, else ``None``."""
    parsed = urlparse(table_uri)
    if parsed.scheme == "file":
        return url2pathname(parsed.path)
    if not parsed.scheme or (len(parsed.scheme) == 1 and os.name == "nt"):
        return os.path.abspath(table_uri)
    return None


def read_delta(
    uri: str | os.PathLike[str],
    *,
    version: Version | None = None,
    columns: list[str] | None = None,
    storage_options: Mapping[str, str] | None = None,
    dtype_backend: DtypeBackend = "pyarrow",
) -> pd.DataFrame:
    """Read a Delta table of contacts (as it is, or as it was) into the contacts frame.

    Parameters
    ----------
    uri
        The table: a directory or ``s3://bucket/prefix`` (any URI delta-rs knows).
    version
        A version number, or a ``datetime``/ISO-8601 time: the table as it was then.
        ``None``: the latest version.
    columns
        Read only these columns.
    storage_options
        Credentials and endpoint (delta-rs names: ``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``,
        ...); default: the environment.
    dtype_backend
        ``"pyarrow"`` (default) or ``"numpy_nullable"``.

    Returns
    -------
    pandas.DataFrame
        The rows in the table's order, with the provenance of that version in
        ``df.attrs["scoutframe"]`` (extended by ``delta_version``).

    Examples
    --------
    >>> last_month = scoutframe.read_delta("s3://team/contacts", version=3)  # doctest: +SKIP
    """
    backend = check_dtype_backend(dtype_backend)
    rows, provenance, number = read_delta_table(
        uri, version=version, columns=columns, storage_options=storage_options
    )
    df = frames.to_pandas(rows, dtype_backend=backend, self_destruct=True)
    if provenance is not None:
        provenance.attach(df)
    df.attrs.setdefault(PROVENANCE_ATTR, {})["delta_version"] = number
    return df


def _source_tables(source: Any) -> Iterator[pa.Table]:
    if isinstance(source, pd.DataFrame):
        data = source.attrs.get(PROVENANCE_ATTR)
        table = frames.table_from_pandas(source)
        if isinstance(data, Mapping):
            table = frames.with_provenance(table, Provenance.from_dict(data))
        yield table
    elif isinstance(source, pa.Table):
        yield source
    elif isinstance(source, Iterable) and not isinstance(source, str | bytes | Mapping):
        for chunk in source:
            yield from _source_tables(chunk)
    else:
        raise ArgumentError(
            f"write_delta() takes a DataFrame, a pyarrow Table or an iterator of them, got "
            f"{type(source).__name__}"
        )


def write_delta(
    source: pd.DataFrame | pa.Table | Iterable[pd.DataFrame] | Iterable[pa.Table],
    uri: str | os.PathLike[str],
    *,
    mode: DeltaMode = "merge",
    storage_options: Mapping[str, str] | None = None,
    partition_by: list[str] | None = None,
    metadata: Mapping[str, str] | None = None,
) -> int:
    """Write contacts to a Delta Lake table, as one new version; return its number.

    Parameters
    ----------
    source
        A frame, a ``pyarrow.Table``, or an iterator of them (``read_spherescout(...,
        chunksize=N)``).
    uri
        The table: a directory or ``s3://bucket/prefix``. Created if it does not exist.
    mode
        ``"merge"`` (default): upsert by ``place_id`` with :func:`scoutframe.upsert`'s rule,
        through delta-rs's ``MERGE`` (the source is read whole first: it is a delta).
        ``"overwrite"``: the source becomes the table (streamed, bounded memory; the old
        versions stay readable). ``"append"``: add the rows as they are.
    storage_options
        Credentials and endpoint (delta-rs names); default: the environment.
    partition_by
        Partition columns of a new table (e.g. ``["country"]``).
    metadata
        More string entries for the commit's ``commitInfo``.

    Returns
    -------
    int
        The table version this write made.

    Raises
    ------
    ArgumentError
        An unknown mode, a source that is not contacts, or a table whose columns differ.

    Examples
    --------
    >>> scoutframe.write_delta(df, "s3://team/contacts", mode="merge")  # doctest: +SKIP
    """
    dl = _deltalake("write_delta")
    one_of("mode", mode, ("merge", "overwrite", "append"))
    target = _uri(uri)
    options = dict(storage_options or {}) or None
    tables = _source_tables(source)
    first = next(tables, None)
    if first is None:
        first = CONTACT_SCHEMA.empty_table()
    provenance = frames.provenance_of(first.schema)
    extra = dict(metadata or {})
    if provenance is not None and _PROVENANCE_KEY not in extra:
        extra[_PROVENANCE_KEY] = json.dumps(provenance.to_dict())
    exists = dl.DeltaTable.is_deltatable(target, storage_options=options)
    if mode == "merge" and exists:
        changes = pa.concat_tables(
            [
                first.replace_schema_metadata(None),
                *(t.replace_schema_metadata(None) for t in tables),
            ],
            promote_options="default",
        )
        return merge_delta_table(target, changes, storage_options=options, metadata=extra)
    schema = first.schema.remove_metadata()

    def batches() -> Iterator[pa.RecordBatch]:
        for table in _chain(first, tables):
            yield from table.replace_schema_metadata(None).cast(schema).to_batches()

    reader = pa.RecordBatchReader.from_batches(schema, batches())
    dl.write_deltalake(
        target,
        reader,
        mode="append" if mode == "append" else "overwrite",
        partition_by=partition_by,
        storage_options=options,
        schema_mode="overwrite" if mode == "overwrite" else None,
        commit_properties=dl.CommitProperties(custom_metadata=extra),
    )
    return int(dl.DeltaTable(target, storage_options=options).version())


def _chain(first: pa.Table, rest: Iterator[pa.Table]) -> Iterator[pa.Table]:
    yield first
    yield from rest


def merge_delta_table(
    uri: str,
    changes: pa.Table,
    *,
    storage_options: Mapping[str, str] | None = None,
    metadata: Mapping[str, str] | None = None,
) -> int:
    """``MERGE`` ``changes`` into the table by ``place_id`` (the module's rule): one version.

    Always exactly one: a merge that changes no row still commits (an empty append), so
    the version's metadata (a cache's manifest) is never lost.

    Returns the version made. Raises :class:`~scoutframe.errors.ArgumentError` when the
    columns of ``changes`` and of the table differ.
    """
    dl = _deltalake("read_delta")
    options = dict(storage_options or {}) or None
    table = dl.DeltaTable(uri, storage_options=options)
    names = [f.name for f in table.schema().fields]
    if sorted(names) != sorted(changes.column_names):
        raise ArgumentError(
            f"write_delta(mode='merge'): the table at {uri} has the columns {names}, the "
            f"source {changes.column_names}; merge contacts into a table of contacts"
        )
    # MERGE refuses two source rows for one target row: resolve repeats by the same rule.
    winners = upsert(changes.slice(0, 0), changes)
    before = table.version()
    commit = dl.CommitProperties(custom_metadata=dict(metadata or {}))
    (
        table.merge(
            source=winners,
            predicate=MERGE_PREDICATE,
            source_alias="s",
            target_alias="t",
            commit_properties=commit,
        )
        .when_matched_update_all(predicate=UPDATE_PREDICATE)
        .when_not_matched_insert_all()
        .execute()
    )
    if table.version() == before:
        # delta-rs commits nothing for a MERGE that changes no row (every source row older):
        # an empty append is the version that records this merge (and the metadata with it).
        empty = pa.Table.from_pylist([], schema=changes.schema).replace_schema_metadata(None)
        dl.write_deltalake(
            uri, empty, mode="append", storage_options=options, commit_properties=commit
        )
        table = dl.DeltaTable(uri, storage_options=options)
    return int(table.version())
