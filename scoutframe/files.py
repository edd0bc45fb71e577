"""Files written whole or not at all: one atomic-write helper for every file scoutframe writes.

A write goes to a temporary file in the target's own directory (named ``.<name>.<random>.tmp``,
so Spark, pyarrow, Dask, DuckDB and Polars skip it), is flushed and fsynced, then moved over the
target with :func:`os.replace`. A crash or Ctrl-C at any moment leaves the old file or the new
one, never half of one, and no temporary file survives an error raised in Python.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .errors import ArgumentError

__all__ = [
    "PathLike",
    "atomic_path",
    "fsync_directory",
    "output_target",
    "private_directory",
    "promote",
    "write_private_json",
]

PathLike = str | os.PathLike[str]

#: Mode of directories that hold handles, downloads and cache entries: the owner only.
PRIVATE_DIR_MODE = 0o700
#: Mode of files that hold contact data or job handles: the owner only.
PRIVATE_FILE_MODE = 0o600


def private_directory(path: Path) -> Path:
    """Create ``path`` (and missing parents) readable by the owner only; return it.

    A directory that exists already keeps its mode: it may be shared on purpose.
    """
    missing = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        directory.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
    if not path.is_dir():
        raise NotADirectoryError(f"{path} exists and is not a directory")
    return path


def fsync_directory(path: Path) -> None:
    """Make a rename inside ``path`` durable (a no-op where directories cannot be opened)."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, private: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it over ``path`` when the block succeeds.

    Parameters
    ----------
    path
        The file to (re)place. Its directory must exist.
    private
        Give the file mode 0600 (contact data, handles); otherwise the usual mode from the
        umask, as any new file would get.

    Yields
    ------
    pathlib.Path
        Where to write. Anything may write it (pyarrow, pandas, ``open``); it is fsynced
        before the move.
    """
    target = Path(path)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
        os.chmod(temp, PRIVATE_FILE_MODE if private else _umask_mode())
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_directory(target.parent)


def write_private_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON atomically, readable by the owner only (mode 0600)."""
    private_directory(path.parent)
    with atomic_path(path, private=True) as temp:
        temp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")


def promote(part: Path, target: Path) -> Path:
    """Move a complete, fsynced part file (a resumable download) over ``target``.

    Part files are kept on failure so that a later attempt resumes them; this is their one
    way into place.
    """
    os.replace(part, target)
    fsync_directory(target.parent)
    return target


def output_target(path: PathLike, what: str) -> Path:
    """Return *path* as the file a writer named *what* may (re)place, or say why not."""
    target = Path(path)
    if target.is_dir():
        raise ArgumentError(f"{what}: {target} is a directory; give a file name")
    if not target.parent.is_dir():
        raise ArgumentError(
            f"{what}: the directory {target.parent} does not exist; create it "
            f"first (Path({str(target.parent)!r}).mkdir(parents=True))"
        )
    return target
