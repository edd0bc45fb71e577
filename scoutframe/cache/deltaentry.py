"""A cache entry kept as a Delta Lake table: each fill and each refresh is one table version.

``cache_format="delta"`` (or ``SCOUTFRAME_CACHE_FORMAT=delta``). The entry's directory (or
prefix) is the table's root, so Spark, Trino, DuckDB and Polars read it as a Delta table::

    <cache>/<key>/
        _delta_log/00000000000000000000.json ...  the versions (delta-rs's commit protocol)
        part-....parquet                           the data files the versions name
        _format                                    "delta": marks the entry (written first)
        _manifest.json                             the manifest's JSON copy
        _delta-<id>.csv                            a paid delta waiting to be merged
        _lock / .lock                              the entry's lock (the backend's)

The commit point is the table version: its ``commitInfo`` holds the manifest
(``scoutframe_cache``) and the provenance (``scoutframe``), as a Parquet entry's file holds
them in its metadata, so a manifest left stale by a crash is rebuilt from the version. A
refresh is delta-rs's ``MERGE`` by ``place_id`` with :func:`scoutframe.tables.merge.upsert`'s
rule (:func:`scoutframe.tables.delta.merge_delta_table`); an entry can be read as of an
earlier version or time (:meth:`DeltaCacheEntry.at`). Rows come back in the table's order.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ..errors import CacheError
from ..extras import require
from ..models import Provenance
from ..tables import delta as deltatables
from .backend import Backend
from .entry import ROW_GROUP_ROWS, CacheEntry, Manifest, _same_data

if TYPE_CHECKING:
    import deltalake

__all__ = ["DeltaCacheEntry"]

#: commitInfo key of the manifest (the Parquet entries' schema-metadata key, as text).
MANIFEST_KEY = "scoutframe_cache"
#: Names the table format in the ``_format`` mark.
_MARK = "_format"


class DeltaCacheEntry(CacheEntry):
    """An entry whose table is a Delta Lake table (see the module documentation).

    Parameters
    ----------
    backend, key
        As for :class:`~scoutframe.cache.entry.CacheEntry`.
    version
        Read the table as of this version or time (``None``: the latest); such an entry is
        for reading only.
    """

    def __init__(
        self, backend: Backend, key: str, version: deltatables.Version | None = None
    ) -> None:
        super().__init__(backend, key)
        self.version = version

    def __repr__(self) -> str:
        at = "" if self.version is None else f", version={self.version!r}"
        return f"DeltaCacheEntry({self.location!r}{at})"

    @property
    def uri(self) -> str:
        """The table's URI (or directory), for Delta readers."""
        return self.backend.uri(self.key)

    def at(self, version: deltatables.Version) -> DeltaCacheEntry:
        """Return this entry as of a table version (an int) or a time, for reading."""
        return DeltaCacheEntry(self.backend, self.key, version)

    def _open(self) -> deltalake.DeltaTable | None:
        deltalake = require("deltalake", feature="cache_format='delta'", extra="delta")

        options = self.backend.engine_options() or None
        if not deltalake.DeltaTable.is_deltatable(self.uri, storage_options=options):
            return None
        return deltatables.open_delta(self.uri, version=self.version, storage_options=options)

    def _table(self) -> deltalake.DeltaTable:
        table = self._open()
        if table is None:
            raise CacheError(f"the cache entry {self.location} has no Delta table yet")
        return table

    # -- reading ------------------------------------------------------------------------------

    def exists(self) -> bool:
        """Whether a committed table version is there."""
        return self._open() is not None

    def size(self) -> int | None:
        """Return the bytes of the data files of the version read (``None``: no table)."""
        table = self._open()
        return None if table is None else _size(table)

    def table_version(self) -> int | None:
        """Return the version read (the latest unless pinned by :meth:`at`)."""
        table = self._open()
        return None if table is None else int(table.version())

    def manifest(self) -> Manifest | None:
        """Return the manifest of the version read (the JSON copy when it agrees)."""
        table = self._open()
        if table is None:
            return None
        options = self.backend.engine_options() or None
        raw = deltatables.commit_metadata(table, MANIFEST_KEY, options)
        try:
            inside = None if raw is None else Manifest.from_json(json.loads(raw))
        except (ValueError, KeyError, TypeError) as exc:
            raise self._damaged(
                f"its version's manifest cannot be read ({type(exc).__name__})"
            ) from exc
        if inside is not None:
            inside = replace(inside, bytes=_size(table))
        if self.version is not None:
            return inside  # as it was then: the JSON copy is the latest's
        try:
            text = self.backend.read_bytes(self.key, "_manifest.json").decode("utf-8")
            outside = Manifest.from_json(json.loads(text))
        except (OSError, ValueError, KeyError, TypeError):
            outside = None
        if inside is None:
            return outside
        if outside is not None and _same_data(outside, inside):
            return outside
        # A crash between the version and its JSON copy: the version wins (a reader without
        # write access leaves the copy as it is: the version alone is enough).
        with contextlib.suppress(OSError):
            self.write_manifest(inside)
        return inside

    def read(self, columns: Sequence[str] | None = None) -> tuple[pa.Table, Provenance | None]:
        """Return the table of the version read, and the provenance committed with it."""
        try:
            table, provenance, _ = deltatables.read_delta_table(
                self.uri,
                version=self.version,
                columns=list(columns) if columns else None,
                storage_options=self.backend.engine_options() or None,
                filesystem=self.backend.table_filesystem(self.key),
            )
        except (OSError, pa.ArrowException) as exc:
            raise self._unreadable(exc) from exc
        return table, provenance

    def slices(self) -> Iterator[pa.Table]:
        """Yield the table in slices of at most :data:`ROW_GROUP_ROWS` rows."""
        dataset = deltatables.arrow_dataset(self._table(), self.backend.table_filesystem(self.key))
        for batch in dataset.to_batches(batch_size=ROW_GROUP_ROWS):
            if batch.num_rows:
                yield deltatables._contacts_types(pa.Table.from_batches([batch]))

    def head(self, rows: int, columns: Sequence[str] | None = None) -> pa.Table:
        """Return the first ``rows`` rows (in the table's order)."""
        dataset = deltatables.arrow_dataset(self._table(), self.backend.table_filesystem(self.key))
        names = dataset.schema.names
        wanted = names if columns is None else [c for c in columns if c in names]
        return deltatables._contacts_types(dataset.head(rows, columns=wanted))

    def stored_provenance(self) -> Provenance | None:
        """Return the provenance committed with the version read."""
        table = self._open()
        options = self.backend.engine_options() or None
        return None if table is None else deltatables._provenance(table, options)

    # -- writing ------------------------------------------------------------------------------

    def _writable(self) -> None:
        if self.version is not None:
            raise CacheError(
                f"the cache entry {self.location} is read as of version {self.version!r}; "
                "write through the entry itself (Cache().entry(key))"
            )
        if self.backend.size(self.key, _MARK) is None:  # before the first version: see module
            with self.backend.atomic_output(self.key, _MARK) as temp:
                temp.write_text("delta\n", "utf-8")

    def _metadata(self, manifest: Manifest, provenance: Provenance) -> dict[str, str]:
        return {
            MANIFEST_KEY: json.dumps(replace(manifest, bytes=0).to_json()),
            deltatables._PROVENANCE_KEY: json.dumps(provenance.to_dict()),
        }

    def commit_slices(
        self,
        slices: Iterable[pa.Table],
        schema: pa.Schema,
        manifest: Manifest,
        provenance: Provenance,
    ) -> tuple[Manifest, pa.Table]:
        """Write the table as a new version (an overwrite: old versions stay readable)."""
        self._writable()
        parts = [part.replace_schema_metadata(None) for part in slices]
        table = pa.concat_tables(parts) if parts else schema.empty_table()
        if table.num_rows != manifest.rows:
            raise CacheError(
                f"the cache entry {self.location} was not updated: {table.num_rows} rows "
                f"were merged where {manifest.rows} were expected; nothing changed"
            )
        table = table.replace_schema_metadata(None)
        deltatables.write_delta(
            table,
            self.uri,
            mode="overwrite",
            storage_options=self.backend.engine_options() or None,
            metadata=self._metadata(manifest, provenance),
        )
        committed = replace(manifest, bytes=self.size() or 0)
        self.write_manifest(committed)
        return committed, table

    def merge(self, changes: pa.Table, manifest: Manifest, provenance: Provenance) -> Manifest:
        """``MERGE`` a delta into the table by ``place_id``: one new version. Return it.

        ``manifest.rows`` is the row count after the merge (it is committed with it). The
        caller holds :meth:`lock`.
        """
        self._writable()
        deltatables.merge_delta_table(
            self.uri,
            changes,
            storage_options=self.backend.engine_options() or None,
            metadata=self._metadata(manifest, provenance),
        )
        committed = replace(manifest, bytes=self.size() or 0)
        self.write_manifest(committed)
        return committed

    def leftovers(self) -> list[str]:
        """None: data files of an aborted write are not in any version (a vacuum drops them)."""
        return []

    def _drop_leftovers(self) -> None:
        return

    def vacuum(self, retention_hours: float) -> list[str]:
        """Delete data files no version younger than ``retention_hours`` needs; return them."""
        table = self._table()
        removed: list[Any] = table.vacuum(
            retention_hours=int(retention_hours),
            dry_run=False,
            enforce_retention_duration=False,
        )
        return [str(r) for r in removed]


def _size(table: deltalake.DeltaTable) -> int:
    actions = pa.table(table.get_add_actions(flatten=True))
    if actions.num_rows == 0:
        return 0
    return int(pa.compute.sum(actions.column("size_bytes")).as_py() or 0)
