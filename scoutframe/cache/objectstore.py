"""A cache on an object store (S3, or any pyarrow/fsspec filesystem): immutable objects, a pointer.

An object store replaces one object atomically, but a Parquet reader reads a file in several
ranged GETs (the footer, then the row groups), so a table overwritten in place could be read
half old, half new. So a table (every name ending ``.parquet``) is never overwritten: each
commit uploads a new object and then publishes it by writing one small pointer object, which
readers read first::

    s3://bucket/prefix/<key>/
        _data.parquet.pointer        {"object": "_versions/data-<time>-<id>.parquet", "size": ...}
        _versions/data-....parquet   the tables, immutable; the pointer names the current one
        _manifest.json               the manifest's JSON copy (the table holds the manifest too)
        _delta-<id>.csv              a paid delta waiting to be merged
        _lock                        the entry's lock (:mod:`scoutframe.cache.locks`)

A reader resolves the pointer once and reads the immutable object it names, so it sees one
table whole whatever writers do meanwhile. A table that the pointer no longer names stays for
:data:`RETAIN_SECONDS` (readers that resolved the pointer before may still be reading it) and
is then removed by the next commit (``leftovers``); objects a killed writer uploaded but never
published go at the next commit too. Small files are single whole objects (one PUT, one GET),
and a JSON file read while it is replaced is read again.

A paid delta (:meth:`ObjectStoreBackend.staged_output`) is downloaded into a staging file on
this machine and uploaded at once; a process killed between the two leaves the staging file,
which the next look at the entry from this machine uploads, so the delta is not paid again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from ..errors import CacheError
from ..filesystems import StoreLocation
from .locks import ObjectLock

__all__ = ["RETAIN_SECONDS", "ObjectStoreBackend"]

#: Seconds a table the pointer no longer names is kept for readers that are still reading it.
RETAIN_SECONDS = 3600.0
_VERSIONS = "_versions"
_POINTER = "_{name}.pointer"
_LOCK = "_lock"


def _versioned(name: str) -> bool:
    return name.endswith(".parquet")


def _check_name(name: str) -> str:
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise ValueError(f"not a cache file name: {name!r}")
    return name


class ObjectStoreBackend:
    """A cache on a pyarrow filesystem that is not this machine's disk (see the module doc).

    Parameters
    ----------
    location
        The cache's directory (:func:`scoutframe.filesystems.resolve`).
    staging
        The local directory of paid deltas between their download and their upload
        (default: the user cache directory's ``scoutframe/staging``).
    """

    def __init__(self, location: StoreLocation, *, staging: Path | None = None) -> None:
        self.store = location
        self.fs: pafs.FileSystem = location.filesystem
        if staging is None:
            import platformdirs

            staging = Path(platformdirs.user_cache_dir("scoutframe")) / "staging"
        digest = hashlib.sha256(location.uri.encode()).hexdigest()[:16]
        self.staging = staging / digest
        self._scratch = staging / "scratch"
        self._held: dict[str, ObjectLock] = {}
        _drop_dead_scratch(self._scratch)

    def __repr__(self) -> str:
        return f"ObjectStoreBackend({self.store.uri!r})"

    @property
    def location(self) -> str:
        """The cache's URI (no credentials)."""
        return self.store.uri

    # -- paths ------------------------------------------------------------------------------

    def _entry(self, key: str) -> str:
        if not key or key.startswith((".", "_")) or "/" in key or "\\" in key or key == "..":
            raise ValueError(f"not a cache entry key: {key!r}")
        return self.store.join(key)

    def _path(self, key: str, name: str) -> str:
        return f"{self._entry(key)}/{name}"

    def uri(self, key: str) -> str:
        """Return the entry's URI, for engines that do their own I/O (delta-rs, Polars)."""
        self._entry(key)
        return self.store.uri_of(key)

    def engine_options(self) -> dict[str, str]:
        """Return the storage options of those engines (credentials: never logged)."""
        return self.store.engine_options()

    def table_filesystem(self, key: str) -> pafs.FileSystem:
        """Return the entry's prefix on the store's pyarrow filesystem."""
        return pafs.SubTreeFileSystem(self._entry(key), self.fs)

    def _info(self, path: str) -> pafs.FileInfo:
        return self.fs.get_file_info(path)

    def _get(self, path: str) -> bytes:
        with self.fs.open_input_stream(path) as stream:
            return bytes(stream.read())

    def _put(self, path: str, data: bytes) -> None:
        with self.fs.open_output_stream(path) as stream:
            stream.write(data)

    # -- pointers ---------------------------------------------------------------------------

    def _pointer(self, key: str, name: str) -> dict[str, Any] | None:
        """Return the pointer of a table (``None``: no table); a torn read is read again."""
        path = self._path(key, _POINTER.format(name=name))
        for attempt in range(5):
            try:
                pointer = json.loads(self._get(path))
                if isinstance(pointer, dict) and isinstance(pointer.get("object"), str):
                    return pointer
            except FileNotFoundError:
                return None
            except (OSError, ValueError):
                pass  # replaced while it was read: read it again
            time.sleep(0.02 * (attempt + 1))
        raise CacheError(f"the pointer {self.store.uri_of(key, name)} cannot be read")

    def _publish(self, key: str, name: str, obj: str, size: int) -> None:
        """Make ``obj`` the table ``name`` (the commit point); retire the one it replaces."""
        held = self._held.get(key)
        if held is not None:
            held.check()  # a writer whose lock was taken over must not commit
        old = self._pointer(key, name)
        now = datetime.now(UTC)
        retired = [  # older ones are leftovers now: the next commit removes them
            [o, when]
            for o, when in ([] if old is None else old.get("retired", []))
            if (now - datetime.fromisoformat(when)).total_seconds() < RETAIN_SECONDS
        ]
        if old is not None and old["object"] != obj:
            retired.append([old["object"], now.isoformat()])
        pointer = {"object": obj, "size": size, "retired": retired}
        self._put(self._path(key, _POINTER.format(name=name)), json.dumps(pointer).encode())

    # -- the Backend protocol ---------------------------------------------------------------

    def entry_keys(self) -> list[str]:
        """Return the entries' keys (the prefixes under the cache's)."""
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(self.store.path, allow_not_found=True))
        except FileNotFoundError:
            return []
        return sorted(
            i.base_name
            for i in infos
            if i.type == pafs.FileType.Directory and not i.base_name.startswith((".", "_"))
        )

    def names(self, key: str) -> list[str]:
        """Return an entry's files: tables by name, pointers and old versions left out."""
        selector = pafs.FileSelector(self._entry(key), allow_not_found=True)
        found = []
        for info in self.fs.get_file_info(selector):
            if info.type != pafs.FileType.File:
                continue
            name = info.base_name
            if name.startswith("_") and name.endswith(".pointer"):
                found.append(name[1 : -len(".pointer")])
            else:
                found.append(name)
        return sorted(found)

    def size(self, key: str, name: str) -> int | None:
        """Return a file's size (``None``: none); a staged paid delta is uploaded first."""
        _check_name(name)
        if _versioned(name):
            pointer = self._pointer(key, name)
            return None if pointer is None else int(pointer["size"])
        info = self._info(self._path(key, name))
        if info.type == pafs.FileType.File:
            return int(info.size)
        staged = self._staged(key, name)
        if staged.is_file():  # paid, saved here by a process killed before its upload
            self._upload(staged, self._path(key, name))
            self._drop_staged(staged)
            return self.size(key, name)
        return None

    def read_bytes(self, key: str, name: str) -> bytes:
        """Return a small file's content (one GET)."""
        _check_name(name)
        if _versioned(name):
            with self.open_input(key, name) as handle:
                return bytes(handle.read())
        return self._get(self._path(key, name))

    def open_input(self, key: str, name: str) -> pa.NativeFile:
        """Open the table the pointer names now (immutable: never torn by a writer)."""
        _check_name(name)
        if not _versioned(name):
            return self.fs.open_input_file(self._path(key, name))
        pointer = self._pointer(key, name)
        if pointer is None:
            raise FileNotFoundError(self.store.uri_of(key, name))
        return self.fs.open_input_file(self._path(key, pointer["object"]))

    def _temporary(self) -> tempfile.TemporaryDirectory[str]:
        """Return a local scratch directory named by this process (a killed one goes later)."""
        from ..files import private_directory

        private_directory(self._scratch)
        return tempfile.TemporaryDirectory(prefix=f"{os.getpid()}-", dir=self._scratch)

    @contextlib.contextmanager
    def local_copy(self, key: str, name: str) -> Iterator[Path]:
        """Download the file to a temporary local file for the block."""
        with self._temporary() as scratch:
            target = Path(scratch) / name
            with self.open_input(key, name) as source, open(target, "wb") as out:
                while chunk := source.read(1 << 22):
                    out.write(chunk)
            yield target

    def local_path(self, key: str, name: str) -> Path | None:  # noqa: ARG002 - the protocol
        """``None``: files are not local (see :meth:`staged_output`)."""
        return None

    def _staged(self, key: str, name: str) -> Path:
        return self.staging / self._entry(key).rsplit("/", 1)[-1] / _check_name(name)

    def _drop_staged(self, staged: Path) -> None:
        staged.unlink(missing_ok=True)
        for directory in (staged.parent, staged.parent.parent):
            with contextlib.suppress(OSError):
                directory.rmdir()

    @contextlib.contextmanager
    def staged_output(self, key: str, name: str) -> Iterator[Path]:
        """Give a staging file for a writer that is atomic itself; upload it on exit.

        A process killed before the upload leaves it; :meth:`size` uploads it later.
        """
        from ..files import private_directory

        staged = self._staged(key, name)
        private_directory(staged.parent)
        yield staged
        if staged.is_file():
            self._upload(staged, self._path(key, name))
            self._drop_staged(staged)

    def _upload(self, source: Path, path: str) -> None:
        """Copy a local file to ``path``: the object appears whole when the upload completes."""
        with open(source, "rb") as data, self.fs.open_output_stream(path) as out:
            while chunk := data.read(1 << 23):
                out.write(chunk)

    @contextlib.contextmanager
    def atomic_output(self, key: str, name: str) -> Iterator[Path]:
        """Write a local temporary file; on a clean exit upload it (a table: publish it)."""
        _check_name(name)
        with self._temporary() as scratch:
            temp = Path(scratch) / name
            yield temp
            if not _versioned(name):
                self._upload(temp, self._path(key, name))
                return
            stem, _, suffix = name.rpartition(".")
            token = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
            obj = f"{_VERSIONS}/{stem}-{token}.{suffix}"
            self._upload(temp, self._path(key, obj))
            self._publish(key, name, obj, temp.stat().st_size)

    def leftovers(self, key: str) -> list[str]:
        """Return old tables past :data:`RETAIN_SECONDS` and tables never published."""
        selector = pafs.FileSelector(f"{self._entry(key)}/{_VERSIONS}", allow_not_found=True)
        objects = [i.base_name for i in self.fs.get_file_info(selector)]
        if not objects:
            return []
        keep: set[str] = set()
        now = datetime.now(UTC)
        for name in {n for n in self.names(key) if _versioned(n)}:
            pointer = self._pointer(key, name) or {}
            if "object" in pointer:
                keep.add(pointer["object"].rsplit("/", 1)[-1])
            for obj, when in pointer.get("retired", []):
                if (now - datetime.fromisoformat(when)).total_seconds() < RETAIN_SECONDS:
                    keep.add(str(obj).rsplit("/", 1)[-1])
        return sorted(f"{_VERSIONS}/{o}" for o in objects if o not in keep)

    def remove(self, key: str, name: str | None = None) -> int:
        """Delete one file (an old version by its ``_versions/...`` name), or the whole entry."""
        if name is None:
            entry = self._entry(key)
            selector = pafs.FileSelector(entry, recursive=True, allow_not_found=True)
            infos = [i for i in self.fs.get_file_info(selector) if i.type == pafs.FileType.File]
            freed = sum(int(i.size or 0) for i in infos)
            for info in infos:
                with contextlib.suppress(FileNotFoundError):
                    self.fs.delete_file(info.path)
            with contextlib.suppress(OSError):
                self.fs.delete_dir(entry)
            return freed
        if name.startswith(f"{_VERSIONS}/") and "/" not in name[len(_VERSIONS) + 1 :]:
            path = self._path(key, name)
        elif _versioned(_check_name(name)):
            pointer = self._pointer(key, name)
            freed = 0 if pointer is None else int(pointer["size"])
            for path in ([] if pointer is None else [self._path(key, pointer["object"])]) + [
                self._path(key, _POINTER.format(name=name))
            ]:
                with contextlib.suppress(FileNotFoundError):
                    self.fs.delete_file(path)
            return freed
        else:
            path = self._path(key, name)
        info = self._info(path)
        if info.type != pafs.FileType.File:
            return 0
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_file(path)
        return int(info.size or 0)

    def lock(self, key: str, timeout: float) -> AbstractContextManager[object]:
        """Return the entry's lock: a conditional-write lock object on S3."""
        settings = self.store.s3
        if settings is None:
            raise CacheError(
                f"the cache at {self.location} cannot be written: scoutframe locks an entry "
                "with the store's conditional writes, which it knows for S3 only. Use an "
                "s3:// location or a local directory for a cache that is written"
            )
        bucket, _, prefix = self._path(key, _LOCK).partition("/")
        lock = ObjectLock(
            settings.boto3_client(), bucket, prefix, where=self.store.uri_of(key), timeout=timeout
        )
        return _Held(self, key, lock)


def _drop_dead_scratch(scratch: Path) -> None:
    """Remove the scratch directories of processes that are gone (killed mid-write)."""
    if not scratch.is_dir():
        return
    for directory in scratch.iterdir():
        pid = directory.name.split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(directory, ignore_errors=True)
        except OSError:  # alive, another user's
            continue


class _Held:
    """The lock, registered with its backend while held (so that commits can check it)."""

    def __init__(self, backend: ObjectStoreBackend, key: str, lock: ObjectLock) -> None:
        self.backend = backend
        self.key = key
        self.lock = lock

    def __enter__(self) -> ObjectLock:
        self.lock.acquire()
        self.backend._held[self.key] = self.lock
        return self.lock

    def __exit__(self, *exc: object) -> None:
        self.backend._held.pop(self.key, None)
        self.lock.release()
