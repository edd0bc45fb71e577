"""Output files of the commands: checked before anything is read or paid, written whole.

A missing output directory is a usage error (exit 2), never created silently: a typo in a
path must not scatter files. Files get the usual mode from the umask, as ``cp`` would give
them, so a report written to a shared folder can be read there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ._run import UsageError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FILE_SUFFIXES",
    "check_directory_target",
    "check_file_target",
    "umask_mode",
    "write_frame",
]

#: Output formats of ``scoutframe search -o FILE``, chosen by the suffix.
FILE_SUFFIXES = (".parquet", ".csv")


def _check_parent(path: Path) -> None:
    parent = path.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise UsageError(
            f"cannot write {str(path)!r}: the directory {str(parent)!r} {what}; create it "
            f"first (mkdir -p {parent}) or choose another -o"
        )


def check_file_target(path: Path, suffixes: tuple[str, ...] | None = FILE_SUFFIXES) -> None:
    """Refuse (``UsageError``) an output file that cannot be written: wrong suffix, no directory.

    Parameters
    ----------
    path
        The ``-o`` argument.
    suffixes
        The accepted suffixes (lower case); ``None`` accepts any name.
    """
    if suffixes is not None and path.suffix.lower() not in suffixes:
        listed = " or ".join(suffixes)
        raise UsageError(
            f"cannot write {path.name!r}: use a {listed} file name (the suffix picks the "
            "format), or --partition-by COLUMN with -o DIR/ for a Parquet dataset"
        )
    if path.is_dir():
        raise UsageError(f"cannot write {str(path)!r}: it is a directory; give a file name")
    _check_parent(path)


def check_directory_target(path: Path) -> None:
    """Refuse (``UsageError``) a dataset directory that is a file or whose parent is missing."""
    if path.exists() and not path.is_dir():
        raise UsageError(
            f"cannot write a dataset to {str(path)!r}: it is a file; a partitioned dataset "
            "is a directory (-o DIR/)"
        )
    _check_parent(path)


def umask_mode(*, directory: bool = False) -> int:
    """Return the mode a new file (or directory) gets from the umask.

    ``0o644`` for a file and ``0o755`` for a directory under the usual umask ``022``.
    """
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def write_frame(frame: pd.DataFrame, path: Path, *, escape_formulas: bool = True) -> None:
    """Write ``frame`` whole or not at all, as Parquet or export CSV by the suffix.

    Parquet keeps the dtypes and the provenance (``scoutframe.tables.parquet.to_parquet``); CSV is
    the API's export format, which ``scoutframe.read_export_csv`` reads back exactly
    (``scoutframe.tables.exportcsv.to_csv``), with formula-like cells escaped unless
    ``escape_formulas=False`` (``--keep-formulas``). Both files get the umask's mode.
    """
    from ..tables import exportcsv, parquet

    if path.suffix.lower() == ".parquet":
        parquet.to_parquet(frame, path)
    else:
        exportcsv.to_csv(frame, path, escape_formulas=escape_formulas)
