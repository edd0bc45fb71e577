"""A hive-partitioned dataset on an object store, swapped in by a manifest (no folder to rename).

:func:`scoutframe.tables.datasets.write_dataset` with an ``s3://`` path (or any remote
filesystem) lands here. An object store cannot rename a folder, so a rewrite cannot be
moved into place; instead every write is a *version*::

    s3://bucket/contacts/
        _scoutframe_dataset.json           the manifest: the version, its files, its schema
        _common_metadata                   the schema, for tools that look for it
        country=FR/part-<version>-0.parquet
        country=NA/part-<version>-0.parquet ...

1. the new version's files are written beside the old ones (each object appears whole when
   its upload completes; a write that fails leaves only unlisted files, deleted by the next
   write);
2. the manifest is replaced: the commit point, one small object, one PUT;
3. the files that neither the manifest nor the version it replaced list are deleted (the
   version before that, and any a killed writer left): a reader that read the manifest just
   before the swap still finds its files; one slower than a whole rewrite gets a not-found
   error, never a mix.

:func:`open_remote` reads the manifest once and opens exactly the files it lists, so it reads
one version whole. A tool that lists the folder itself sees two versions' files (the
current and the one it replaced); the Delta table (:func:`scoutframe.write_delta`) is the
format for such readers.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from ..errors import ArgumentError
from ..filesystems import StoreLocation
from ..progress import Bar, progress_enabled

__all__ = ["MANIFEST", "open_remote", "write_remote"]

MANIFEST = "_scoutframe_dataset.json"
_KNOWN = ("_common_metadata", "_metadata", "_SUCCESS", MANIFEST)


def _read_manifest(location: StoreLocation) -> dict[str, Any] | None:
    path = location.join(MANIFEST)
    for attempt in range(5):
        try:
            with location.filesystem.open_input_stream(path) as stream:
                manifest = json.loads(bytes(stream.read()))
            if isinstance(manifest, dict) and isinstance(manifest.get("files"), list):
                return manifest
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            pass  # replaced while it was read: read it again
        time.sleep(0.02 * (attempt + 1))
    raise ArgumentError(f"the dataset manifest {location.uri_of(MANIFEST)} cannot be read")


def _files(location: StoreLocation) -> list[str]:
    selector = pafs.FileSelector(location.path, recursive=True, allow_not_found=True)
    return [
        info.path
        for info in location.filesystem.get_file_info(selector)
        if info.type == pafs.FileType.File
    ]


def _check_target(location: StoreLocation) -> None:
    """Refuse a prefix holding anything but a dataset (nothing there is replaced)."""
    for path in _files(location):
        relative = path[len(location.path) :].lstrip("/")
        parts = relative.split("/")
        if parts[-1] in _KNOWN or parts[-1].startswith((".", "_")):
            continue
        if parts[-1].endswith(".parquet") and all("=" in p for p in parts[:-1]):
            continue
        raise ArgumentError(
            f"write_dataset(): {location.uri} holds {location.uri_of(relative)}, which a "
            "dataset would not, so nothing there is replaced; give another path or empty it"
        )


class PartWriter(Protocol):
    """What :func:`write_remote` needs of ``datasets``' partitioned writer."""

    schema: pa.Schema | None
    written: list[Any]

    def write(self, table: pa.Table) -> None: ...
    def finish(self) -> None: ...
    def close(self) -> None: ...


def write_remote(
    slices: Iterable[pa.Table],
    total: int | None,
    location: StoreLocation,
    partition_by: Sequence[str],
    writer_for: Callable[[str], PartWriter],
    *,
    progress: bool | None,
) -> str:
    """Write a new version of the dataset at ``location`` and publish it (module doc).

    ``writer_for(version)`` makes the partitioned writer of that version's parts.
    """
    _check_target(location)
    old = _read_manifest(location)
    token = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
    writer = writer_for(token)
    try:
        with Bar.rows(progress_enabled(progress), total, "write dataset") as bar:
            for table in slices:
                writer.write(table)
                bar.update(table.num_rows)
            writer.finish()
    except BaseException:
        writer.close()
        for path in writer.written:  # unlisted anyway; do not leave them to the next write
            try:
                location.filesystem.delete_file(path)
            except OSError:
                continue
        raise
    assert writer.schema is not None
    files = [p[len(location.path) :].lstrip("/") for p in writer.written]
    manifest = {
        "version": token,
        "previous": None if old is None else old.get("version"),
        "partition_by": list(partition_by),
        "files": files,
        "schema": base64.b64encode(writer.schema.serialize().to_pybytes()).decode("ascii"),
    }
    with location.filesystem.open_output_stream(location.join(MANIFEST)) as out:
        out.write(json.dumps(manifest).encode())  # the commit point
    # The version just replaced stays until the next write: a reader that read its manifest
    # a moment ago still finds every file it lists. Older versions and a killed writer's
    # files go.
    keep = set(files) | set(old.get("files", []) if old else [])
    for path in _files(location):
        relative = path[len(location.path) :].lstrip("/")
        if relative.endswith(".parquet") and relative not in keep:
            try:
                location.filesystem.delete_file(path)
            except FileNotFoundError:
                continue
    return location.uri


def open_remote(location: StoreLocation) -> ds.Dataset:
    """Open the version the manifest names (its files only, with their written schema)."""
    manifest = _read_manifest(location)
    if manifest is None:
        return ds.dataset(
            location.path, format="parquet", partitioning="hive", filesystem=location.filesystem
        )
    schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(manifest["schema"])))
    names = [n for n in manifest.get("partition_by", []) if n in schema.names]
    partitioning = ds.partitioning(pa.schema([schema.field(n) for n in names]), flavor="hive")
    paths = [location.join(f) for f in manifest["files"]]
    return ds.dataset(
        paths,
        schema=schema,
        format="parquet",
        partitioning=partitioning,
        partition_base_dir=location.path,
        filesystem=location.filesystem,
    )
