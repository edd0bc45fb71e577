"""The Parquet cache of reads: pay once, then only for what changed.

``read_spherescout(..., cache=True)`` stores a read's result as one plain Parquet file per
entry (``<cache dir>/<key>/data.parquet``) with its provenance and a small manifest; a later
read returns it, and brings it up to date by delta (exports) or by reading the pages again
(pages) when it is older than ``max_age``. :class:`Cache` manages the entries.
"""

from .entry import CacheEntry, Manifest
from .keys import ENV_CACHE_DIR, SCHEMA_VERSION, cache_root
from .store import Cache, parse_age

__all__ = [
    "ENV_CACHE_DIR",
    "SCHEMA_VERSION",
    "Cache",
    "CacheEntry",
    "Manifest",
    "cache_root",
    "parse_age",
]
