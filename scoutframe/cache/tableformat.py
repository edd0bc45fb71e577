"""Which table format an entry is in: a Parquet file (the default) or a Delta Lake table.

The format is the entry's, not the read's: ``cache_format=`` (or ``SCOUTFRAME_CACHE_FORMAT``)
chooses it when an entry is created, and an existing entry is read in the format it has. A
Delta entry is marked by a small ``_format`` file written before its first table version, so
that it is recognised even when a crash came before its manifest.
"""

from __future__ import annotations

import os

from ..checks import one_of
from .backend import Backend
from .entry import CacheEntry
from .keys import ENV_CACHE_FORMAT, FORMATS

__all__ = ["FORMATS", "FORMAT_MARK", "entry_for", "new_entry_format"]

#: The file that marks a Delta entry (its content: ``delta``).
FORMAT_MARK = "_format"


def new_entry_format(value: str | None = None) -> str:
    """Return the format of new entries: the argument, the environment, else parquet."""
    chosen = value or os.environ.get(ENV_CACHE_FORMAT, "").strip().lower() or "parquet"
    return one_of("cache_format", chosen, FORMATS)


def entry_for(backend: Backend, key: str, default: str = "parquet") -> CacheEntry:
    """Return the entry of ``key`` in its own format (``default`` when it does not exist yet)."""
    marked = backend.size(key, FORMAT_MARK) is not None
    if marked or (default == "delta" and backend.size(key, "data.parquet") is None):
        from .deltaentry import DeltaCacheEntry

        return DeltaCacheEntry(backend, key)
    return CacheEntry(backend, key)
