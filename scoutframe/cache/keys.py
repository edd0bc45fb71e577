"""Where the cache lives and how an entry is named.

An entry's key is a hash of what makes the data: the API origin, the account, the canonical
(resolved) filters, the method and the schema version. Never a credential: two keys of one
account share their entries, two accounts never do.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ArgumentError, CacheError

if TYPE_CHECKING:
    from .backend import Backend

__all__ = [
    "ENV_CACHE_DIR",
    "ENV_CACHE_FORMAT",
    "FORMATS",
    "SCHEMA_VERSION",
    "cache_root",
    "entry_key",
    "open_backend",
]

#: Overrides the cache location (the platform's user cache directory by default): a
#: directory or a URI (``s3://bucket/prefix``).
ENV_CACHE_DIR = "SCOUTFRAME_CACHE_DIR"
#: The table format of new entries: ``parquet`` (default) or ``delta``.
ENV_CACHE_FORMAT = "SCOUTFRAME_CACHE_FORMAT"
#: The table formats of an entry (see :mod:`scoutframe.cache.tableformat`).
FORMATS = ("parquet", "delta")
#: Bumped when the contacts schema (scoutframe.tables.schema) changes incompatibly: old entries are
#: then simply not found (and pruned), never misread.
SCHEMA_VERSION = 1


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the cache directory: the argument, else ``SCOUTFRAME_CACHE_DIR``, else the default.

    The default is the platform's user cache directory (``.../scoutframe/entries``).

    Raises
    ------
    CacheError
        When the path exists and is not a directory.
    """
    if cache_dir is not None:
        root = Path(cache_dir).expanduser()
    elif os.environ.get(ENV_CACHE_DIR):
        root = Path(os.environ[ENV_CACHE_DIR]).expanduser()
    else:
        import platformdirs

        root = Path(platformdirs.user_cache_dir("scoutframe")) / "entries"
    blocked = next((p for p in (root, *root.parents) if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        what = "is a file" if blocked == root else f"is under {blocked}, which is a file"
        raise CacheError(
            f"the cache directory {root} {what}; pass cache_dir= a directory (or set "
            f"{ENV_CACHE_DIR}), or move the file away"
        )
    existing = next(p for p in (root, *root.parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CacheError(
            f"the cache directory {root} cannot be created or written ({existing} is not "
            f"writable); pass cache_dir= a writable directory (or set {ENV_CACHE_DIR})"
        )
    return root


def open_backend(
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    storage_options: Mapping[str, Any] | None = None,
    filesystem: Any = None,
) -> Backend:
    """Return the backend of a cache location: local directory, or an object store.

    ``cache_dir`` (else ``SCOUTFRAME_CACHE_DIR``, else the user cache directory) is a path,
    or a URI that :func:`scoutframe.filesystems.resolve` knows (``s3://bucket/prefix``).
    """
    from ..filesystems import is_remote, resolve
    from .backend import LocalBackend

    where: str | os.PathLike[str] | None = cache_dir
    if where is None and os.environ.get(ENV_CACHE_DIR):
        where = os.environ[ENV_CACHE_DIR]
    if filesystem is None and (where is None or not is_remote(os.fspath(where))):
        if storage_options:
            raise ArgumentError(
                "storage_options= are for a cache on a remote store (cache_dir='s3://...'), "
                f"not the local directory {cache_root(where)}"
            )
        return LocalBackend(cache_root(where).absolute())
    assert where is not None or filesystem is not None
    location = resolve(
        os.fspath(where) if where is not None else "",
        storage_options=storage_options,
        filesystem=filesystem,
    )
    if location.local:
        return LocalBackend(cache_root(location.path).absolute())
    from .objectstore import ObjectStoreBackend

    return ObjectStoreBackend(location)


def entry_key(origin: str, account: str, filters_key: str, method: str) -> str:
    """Return the directory name of an entry (32 hex characters)."""
    identity = json.dumps([origin, account, filters_key, method, SCHEMA_VERSION])
    return hashlib.sha256(identity.encode()).hexdigest()[:32]
