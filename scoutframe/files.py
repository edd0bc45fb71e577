"""Files written whole or not at all: one atomic-write helper for every file scoutframe writes.

A write goes to a temporary file in the target's own directory (named ``.<name>.<random>.tmp``,
so Spark, pyarrow, Dask, DuckDB and Polars skip it), is flushed and fsynced, then moved over the
target with :func:`os.replace`. A crash or Ctrl-C at any moment leaves the old file or the new
one, never half of one, and no temporary file survives an error raised in Python.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .errors import ArgumentError, DiskFullError, LocalFileError

__all__ = [
    "ROW_BYTES_ESTIMATE",
    "PathLike",
    "atomic_path",
    "ensure_room",
    "free_space",
    "fsync_directory",
    "output_target",
    "private_directory",
    "promote",
    "room_for",
    "size_text",
    "write_failure",
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

    Raises
    ------
    LocalFileError
        ``path``, or a parent of it, is a file; or a directory cannot be created there. The
        message names the path and what to do (it is raised before anything is paid: every
        directory a read writes in is made before its charging call).
    """
    missing = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    blocking = next((p for p in (current, *current.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        where = "is" if blocking == path else f"is under {blocking}, which is"
        raise LocalFileError(
            f"the directory {path} {where} a file, not a directory; choose another directory "
            "(state_dir=, cache_dir=, the output path) or move the file away",
            path=path,
            errno=errno.ENOTDIR,
        )
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
        except OSError as exc:
            raise write_failure(exc, directory / ".", what=f"creating {directory}") from exc
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
    blocking = next((p for p in target.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise ArgumentError(
            f"{what}: {target} cannot be written: {blocking} is a file, not a directory; "
            "choose a path in a directory"
        )
    if not target.parent.is_dir():
        raise ArgumentError(
            f"{what}: the directory {target.parent} does not exist; create it "
            f"first (Path({str(target.parent)!r}).mkdir(parents=True))"
        )
    return target


#: errno values of a write that found no room (a full disk, a quota, a file-size limit).
_NO_ROOM = frozenset(
    code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EFBIG) if code
)


def size_text(size: int | None) -> str:
    """Return ``size`` bytes for a message: ``"12.3 MB"``; ``"an unknown amount"`` for ``None``."""
    if size is None:
        return "an unknown amount"
    value = float(size)
    for unit in ("bytes", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{size:,} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def free_space(path: Path) -> int | None:
    """Return the bytes free for an unprivileged user where ``path`` is (or would be)."""
    for place in (path, *path.parents):
        with contextlib.suppress(OSError):
            if place.exists():
                return shutil.disk_usage(place).free
    return None


#: Bytes a row of an export or delta CSV is assumed to take when room is checked before
#: paying: about three times a typical row (names, addresses, several emails and phones), so
#: a disk that passes the check rarely fills up while the paid body arrives.
ROW_BYTES_ESTIMATE = 1024


def room_for(path: Path) -> int | None:
    """Return the bytes a file at ``path`` may take: the free space, and the file-size limit.

    The file-size limit is the process's ``RLIMIT_FSIZE`` (``ulimit -f``) where there is
    one; ``None`` when neither is known.
    """
    free = free_space(path.parent)
    try:
        import resource  # POSIX only
    except ImportError:
        return free
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft == resource.RLIM_INFINITY:
        return free
    return soft if free is None else min(free, soft)


def ensure_room(path: Path, needed: int, *, what: str, kept: str = "") -> None:
    """Raise :class:`~scoutframe.errors.DiskFullError` unless ``needed`` bytes fit at ``path``.

    Checked before a charging call whose body is served once (a delta): with no room, the
    call is not made, rather than paid for and lost.

    Raises
    ------
    DiskFullError
        The free space (or the file-size limit) there is smaller than ``needed``.
    """
    room = room_for(path)
    if room is None or room >= needed:
        return
    tail = f" {kept}" if kept else ""
    raise DiskFullError(
        f"{what}: not enough room to write {path} (about {size_text(needed)} needed, "
        f"{size_text(room)} available there, the free space or the file-size limit). Free "
        f"some space, or choose a directory on another disk.{tail}",
        path=path,
        needed=needed,
        free=room,
        errno=errno.ENOSPC,
    )


def write_failure(
    exc: OSError, path: Path, *, what: str, needed: int | None = None, kept: str = ""
) -> LocalFileError:
    """Return the error to raise for an ``OSError`` met writing ``path``; it says what to do.

    A full disk (or quota, or file-size limit) is a :class:`~scoutframe.errors.DiskFullError`
    naming the space ``needed`` and the space free; a symbolic link where the file goes (never
    followed), a directory that cannot be written and the rest are
    :class:`~scoutframe.errors.LocalFileError`. ``kept`` says what survives (a paid file).
    """
    code = exc.errno
    tail = f" {kept}" if kept else ""
    if code in _NO_ROOM:
        free = free_space(path.parent)
        return DiskFullError(
            f"{what}: no space left to write {path} ({size_text(needed)} needed, "
            f"{size_text(free)} free there; {os.strerror(code or 0)}). Free some space, or "
            f"choose a directory on another disk.{tail}",
            path=path,
            needed=needed,
            free=free,
            errno=code,
        )
    if code == errno.ELOOP or (path.is_symlink() and code in (errno.EEXIST, errno.EMLINK)):
        return LocalFileError(
            f"{what}: {path} is a symbolic link; scoutframe does not write through links (it "
            f"could overwrite a file elsewhere). Remove the link, or choose another path.{tail}",
            path=path,
            errno=code,
        )
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return LocalFileError(
            f"{what}: {path.parent} cannot be written ({os.strerror(code or 0)}); give "
            f"scoutframe a directory it may write, or fix its permissions.{tail}",
            path=path,
            errno=code,
        )
    return LocalFileError(
        f"{what}: {path} could not be written ({type(exc).__name__}: {exc}).{tail}",
        path=path,
        errno=code,
    )
