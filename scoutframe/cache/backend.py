"""Where the cache keeps its files: the storage seam under every cache entry.

A cache is a set of *entries*, each named by its key, each a handful of named files (the
table, its manifest, a paid delta waiting to be merged). :class:`Backend` is everything the
cache asks of storage; :class:`~scoutframe.cache.entry.CacheEntry` and
:class:`~scoutframe.cache.store.Cache` do every file operation through it, so keeping the
cache elsewhere is one new implementation of this protocol, not edits across the cache.

:class:`LocalBackend` keeps entries as directories of plain files (``<root>/<key>/<name>``):
writes go to a hidden temporary file beside the target and are moved into place whole
(:func:`scoutframe.files.atomic_path`), the lock is a file lock (filelock), and every
directory and file is the owner's only.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol, runtime_checkable

import pyarrow as pa
import pyarrow.fs as pafs

from ..files import atomic_path, private_directory

__all__ = ["Backend", "LocalBackend"]

#: Name prefix of the temporary files of a write in progress (hidden from dataset readers).
_TEMPORARY = ".*.tmp"


@runtime_checkable
class Backend(Protocol):
    """The storage of a cache: entries by key, each a few named files.

    Every method is safe to call for an entry or file that does not exist (it says so by
    its result: ``None``, ``[]``, ``0``), except the readers, which raise
    ``FileNotFoundError``.
    """

    @property
    def location(self) -> str:
        """Where the cache is, for messages and provenance (a directory or a URI)."""
        ...

    def entry_keys(self) -> list[str]:
        """Return the keys of the entries there, sorted (names starting ``.``/``_`` are not)."""
        ...

    def names(self, key: str) -> list[str]:
        """Return the names of the files of an entry, sorted (hidden ones included)."""
        ...

    def size(self, key: str, name: str) -> int | None:
        """Return the size of a file in bytes, or ``None`` when it does not exist."""
        ...

    def read_bytes(self, key: str, name: str) -> bytes:
        """Return a (small) file's content."""
        ...

    def open_input(self, key: str, name: str) -> pa.NativeFile:
        """Open a file for random access (Parquet readers seek); the caller closes it."""
        ...

    def local_copy(self, key: str, name: str) -> AbstractContextManager[Path]:
        """Give a local path holding the file's content for the duration of the block."""
        ...

    def local_path(self, key: str, name: str) -> Path | None:
        """Return the file's own local path (its directory created), if files are local.

        A writer that is atomic itself (a delta download) writes there directly, so no
        moment passes between the bytes being complete and the file being there.
        ``None`` for a backend whose files are not local: use :meth:`atomic_output`.
        """
        ...

    def atomic_output(self, key: str, name: str) -> AbstractContextManager[Path]:
        """Give a local path to write; on a clean exit it becomes the file, whole, at once.

        On an exception nothing changes: readers see the old file (or none) throughout.
        """
        ...

    def staged_output(self, key: str, name: str) -> AbstractContextManager[Path]:
        """Give a local path for a writer that is atomic itself (a paid delta's download).

        A file complete there is the entry's file, or becomes it: locally it is the file
        itself; a remote backend uploads it when the block exits, and uploads one that a
        killed process left there at the next :meth:`size` of it on this machine.
        """
        ...

    def uri(self, key: str) -> str:
        """Return the entry's location for engines that do their own I/O (delta-rs, Polars)."""
        ...

    def table_filesystem(self, key: str) -> pafs.FileSystem:
        """Return the entry's directory as a pyarrow filesystem (Arrow's own I/O, no Python)."""
        ...

    def engine_options(self) -> dict[str, str]:
        """Return those engines' storage options (credentials: never logged or stored)."""
        ...

    def leftovers(self, key: str) -> list[str]:
        """Return the names of unfinished writes that a killed writer left in an entry."""
        ...

    def remove(self, key: str, name: str | None = None) -> int:
        """Delete one file of an entry, or the whole entry (``name=None``); return bytes freed."""
        ...

    def lock(self, key: str, timeout: float) -> AbstractContextManager[object]:
        """Return the entry's lock, held across processes: one writer at a time."""
        ...


class LocalBackend:
    """A cache in a local directory: ``<root>/<key>/<name>``, owner-only modes.

    Parameters
    ----------
    root
        The cache directory (created, mode 0700, on the first write).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalBackend({str(self.root)!r})"

    @property
    def location(self) -> str:
        """The cache directory."""
        return str(self.root)

    def _path(self, key: str, name: str | None = None) -> Path:
        if not key or key.startswith((".", "_")) or "/" in key or "\\" in key or key == "..":
            raise ValueError(f"not a cache entry key: {key!r}")
        directory = self.root / key
        if name is None:
            return directory
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise ValueError(f"not a cache file name: {name!r}")
        return directory / name

    def entry_keys(self) -> list[str]:
        """Return the entry directories' names."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
        )

    def names(self, key: str) -> list[str]:
        """Return the file names in an entry's directory."""
        directory = self._path(key)
        if not directory.is_dir():
            return []
        return sorted(p.name for p in directory.iterdir() if p.is_file())

    def size(self, key: str, name: str) -> int | None:
        """Return a file's size, ``None`` when it is not a file."""
        path = self._path(key, name)
        try:
            return path.stat().st_size if path.is_file() else None
        except FileNotFoundError:  # removed between the two looks
            return None

    def read_bytes(self, key: str, name: str) -> bytes:
        """Return a file's content."""
        return self._path(key, name).read_bytes()

    def open_input(self, key: str, name: str) -> pa.NativeFile:
        """Open a file with pyarrow's own reader (no Python in the read path)."""
        path = self._path(key, name)
        if not path.is_file():
            raise FileNotFoundError(path)
        return pa.OSFile(str(path), mode="r")

    @contextlib.contextmanager
    def local_copy(self, key: str, name: str) -> Iterator[Path]:
        """Give the file itself (it is local already)."""
        path = self._path(key, name)
        if not path.is_file():
            raise FileNotFoundError(path)
        yield path

    def local_path(self, key: str, name: str) -> Path | None:
        """Return ``<root>/<key>/<name>`` (the entry's directory created, 0700)."""
        path = self._path(key, name)
        private_directory(path.parent)
        return path

    @contextlib.contextmanager
    def staged_output(self, key: str, name: str) -> Iterator[Path]:
        """Give the file itself (the writer is atomic)."""
        path = self.local_path(key, name)
        assert path is not None
        yield path

    def uri(self, key: str) -> str:
        """Return the entry's directory."""
        return str(self._path(key))

    def engine_options(self) -> dict[str, str]:
        """No options: the files are local."""
        return {}

    def table_filesystem(self, key: str) -> pafs.FileSystem:
        """Return the entry's directory on the local filesystem."""
        return pafs.SubTreeFileSystem(str(self._path(key)), pafs.LocalFileSystem())

    @contextlib.contextmanager
    def atomic_output(self, key: str, name: str) -> Iterator[Path]:
        """Write beside the target (hidden, 0600), fsync, move into place."""
        target = self._path(key, name)
        private_directory(target.parent)
        with atomic_path(target, private=True) as temp:
            yield temp

    def leftovers(self, key: str) -> list[str]:
        """Return the hidden temporary files of writers killed mid-write."""
        directory = self._path(key)
        if not directory.is_dir():
            return []
        return sorted(p.name for p in directory.glob(_TEMPORARY))

    def remove(self, key: str, name: str | None = None) -> int:
        """Delete a file, or every file of the entry and then its directory."""
        if name is not None:
            path = self._path(key, name)
            freed = self.size(key, name) or 0
            path.unlink(missing_ok=True)
            return freed
        directory = self._path(key)
        freed = 0
        if directory.is_dir():
            for path in sorted(directory.iterdir()):
                if path.is_file():
                    freed += path.stat().st_size
                    path.unlink(missing_ok=True)
            log = directory / "_delta_log"  # a Delta entry: its log goes with it
            if log.is_dir():
                freed += sum(p.stat().st_size for p in log.rglob("*") if p.is_file())
                shutil.rmtree(log, ignore_errors=True)
            with contextlib.suppress(OSError):  # something not ours is in it: left alone
                directory.rmdir()
        return freed

    def lock(self, key: str, timeout: float) -> AbstractContextManager[object]:
        """Return a file lock in the entry's directory (created, 0700, if needed)."""
        import filelock  # on use: only writers need it

        directory = private_directory(self._path(key))
        return filelock.FileLock(directory / ".lock", timeout=timeout, mode=0o600)
