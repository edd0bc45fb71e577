"""`atomic_write`: the one way the sandbox writes a file that readers may open meanwhile.

Dataset Parquet and Arrow files, the overlay of added contacts, CSV exports and the secret all
go through it: a reader (or a restart after a crash) sees the old file or the new one, never
half of one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_write"]


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], *, mode: int = 0o644, exclusive: bool = False
) -> Iterator[Path]:
    """Yield a temporary path to write; on success it becomes ``path`` in one step.

    The temporary file is ``.<name>.<random>.part`` in the same directory (same file system,
    so the final rename is atomic; the leading dot keeps it out of globs such as
    ``contacts-*``). When the block ends normally the file is flushed to disk (fsync), given
    ``mode`` and moved into place with `os.replace`; when it raises, the temporary file is
    removed and ``path`` is left as it was.

    Parameters
    ----------
    path
        The destination file; its directory must exist.
    mode
        Permission bits of the finished file.
    exclusive
        Never overwrite: if ``path`` exists when the block ends, raise `FileExistsError` and
        leave it alone (a hard link instead of a rename: of several concurrent writers,
        exactly one wins).

    Yields
    ------
    pathlib.Path
        The temporary file (created empty, owner-only) to write by name.

    Raises
    ------
    FileExistsError
        With ``exclusive``, when ``path`` already exists.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_write(target) as tmp:
    ...     _ = tmp.write_text("hello")
    >>> target.read_text()
    'hello'
    """
    target = Path(path)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    temp = Path(name)
    try:
        try:
            yield temp
            os.fsync(fd)  # the writer may have used its own handle: fsync is per file
        finally:
            os.close(fd)
        os.chmod(temp, mode)
        if exclusive:
            os.link(temp, target)
        else:
            os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)  # after a link, or whatever happened before the rename
    _fsync_directory(target.parent)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (best effort: not every system opens directories)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
