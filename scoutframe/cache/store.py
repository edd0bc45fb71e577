"""The cache as a whole: ``scoutframe.Cache`` lists, finds, verifies, prunes and clears entries.

Reads go through ``read_spherescout(..., cache=...)``; this is the management side, and what
``scoutframe cache list | show | refresh | prune | clear | verify`` calls.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from ..errors import ArgumentError, CacheError, CacheMissError
from ..tables.merge import is_strictly_ascending
from ..tables.schema import CONTACT_SCHEMA
from .backend import Backend
from .deltaentry import DeltaCacheEntry
from .entry import CachedMethod, CacheEntry, Manifest, utc_now
from .keys import SCHEMA_VERSION, entry_key, open_backend
from .tableformat import entry_for, new_entry_format

if TYPE_CHECKING:
    from ..api.filters import Filters

__all__ = ["Cache", "parse_age"]


def parse_age(value: timedelta | str | float | None, *, name: str = "max_age") -> timedelta | None:
    """Read an age: a ``timedelta``, seconds, or text such as ``"90s"``, ``"12h"``, ``"7d"``.

    Raises
    ------
    ArgumentError
        For anything else, with the accepted spellings.
    """
    if value is None or isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return timedelta(seconds=float(value))
    if isinstance(value, str):
        text = value.strip().lower()
        units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
        number, unit = text[:-1], text[-1:]
        if unit in units and number.replace(".", "", 1).isdigit():
            return timedelta(seconds=float(number) * units[unit])
    raise ArgumentError(
        f"{name} must be a timedelta, a number of seconds or a text such as '90s', '30m', "
        f"'12h', '7d', '2w'; not {value!r}"
    )


class Cache:
    """The Parquet cache of reads: one entry per read, kept by a storage backend.

    Parameters
    ----------
    cache_dir
        Where entries live: a directory or a URI (``s3://bucket/prefix``); default
        ``SCOUTFRAME_CACHE_DIR``, else the platform's user cache directory.
    storage_options, filesystem
        How to reach a remote ``cache_dir`` (see :func:`scoutframe.filesystems.resolve`);
        default: credentials from the environment. Never stored or shown.
    cache_format
        The table format of entries created through this object: ``"parquet"`` or
        ``"delta"`` (default ``SCOUTFRAME_CACHE_FORMAT``, else ``"parquet"``).

    Examples
    --------
    >>> cache = scoutframe.Cache()  # doctest: +SKIP
    >>> cache.entries()[["method", "rows", "refreshed"]]  # doctest: +SKIP
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike[str] | None = None,
        *,
        storage_options: Mapping[str, Any] | None = None,
        filesystem: Any = None,
        cache_format: str | None = None,
    ) -> None:
        self.backend: Backend = open_backend(
            cache_dir, storage_options=storage_options, filesystem=filesystem
        )
        self.cache_format = new_entry_format(cache_format)

    def __repr__(self) -> str:
        return f"Cache({self.location!r})"

    @property
    def location(self) -> str:
        """Where the cache is (its directory), for messages."""
        return self.backend.location

    # -- entries ------------------------------------------------------------------------------

    def entry_of(
        self, origin: str, account: str, filters: Filters, method: CachedMethod
    ) -> CacheEntry:
        """Return the entry of a read (which may not exist yet)."""
        return self.entry(entry_key(origin, account, filters.cache_key, method))

    def entry(self, key: str) -> CacheEntry:
        """Return the entry of a key (which may not exist), in its table format."""
        return entry_for(self.backend, key, self.cache_format)

    def _all(self) -> Iterator[tuple[CacheEntry, Manifest | None]]:
        for entry, manifest, _ in self._all_checked():
            yield entry, manifest

    def _all_checked(self) -> Iterator[tuple[CacheEntry, Manifest | None, str]]:
        """Every entry, its manifest (``None``: damaged) and, if damaged, why."""
        for key in self.backend.entry_keys():
            entry = self.entry(key)
            try:
                manifest, why = entry.manifest(), ""
            except CacheError as exc:
                manifest, why = None, str(exc)
            yield entry, manifest, why

    def find(
        self,
        *,
        origin: str,
        filters_key: str,
        method: CachedMethod | None = None,
        account: str | None = None,
    ) -> list[tuple[CacheEntry, Manifest]]:
        """Return the entries of a search, found without the network.

        By canonical filters or a spelling that led to them; export entries first, then the
        most recently refreshed.
        """
        found = []
        for entry, manifest in self._all():
            if manifest is None or manifest.origin != origin:
                continue
            if manifest.schema_version != SCHEMA_VERSION:
                continue
            if method is not None and manifest.method != method:
                continue
            if account is not None and manifest.account != account:
                continue
            spellings = {_canonical(manifest.filters), *manifest.aliases}
            if filters_key in spellings:
                found.append((entry, manifest))
        found.sort(key=lambda em: em[1].refreshed_at, reverse=True)  # newest first,
        found.sort(key=lambda em: em[1].method != "export")  # exports before pages (stable)
        return found

    def entries(self) -> pd.DataFrame:
        """Return one row per entry: filters, method, rows, bytes, times, history, location.

        Returns
        -------
        pandas.DataFrame
            Columns ``key``, ``filters`` (canonical JSON), ``method``, ``rows``, ``bytes``,
            ``created``, ``refreshed`` (UTC), ``last_history_id``, ``origin``, ``location``; a
            damaged entry has ``method`` ``"damaged"`` (``verify()`` says more).
        """
        rows: list[dict[str, Any]] = []
        for entry, manifest in self._all():
            if manifest is None:
                rows.append({"key": entry.key, "method": "damaged", "location": entry.location})
                continue
            rows.append(
                {
                    "key": manifest.key,
                    "filters": _canonical(manifest.filters),
                    "method": manifest.method,
                    "rows": manifest.rows,
                    "bytes": manifest.bytes,
                    "created": manifest.created_at,
                    "refreshed": manifest.refreshed_at,
                    "last_history_id": manifest.last_history_id,
                    "origin": manifest.origin,
                    "location": entry.location,
                }
            )
        frame = pd.DataFrame(
            rows,
            columns=[
                "key",
                "filters",
                "method",
                "rows",
                "bytes",
                "created",
                "refreshed",
                "last_history_id",
                "origin",
                "location",
            ],
        )
        for name in ("created", "refreshed"):
            frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
        for name in ("rows", "bytes", "last_history_id"):
            frame[name] = frame[name].astype("Int64")
        return frame

    def _by_key(self, key: str) -> tuple[CacheEntry, Manifest | None]:
        """Return the entry whose key starts with ``key`` (a damaged one too: it can go)."""
        matches = [(e, m) for e, m in self._all() if e.key.startswith(key)]
        if len(matches) != 1:
            what = "no entry" if not matches else f"{len(matches)} entries"
            raise CacheMissError(
                f"{what} of the cache at {self.location} has a key starting with {key!r}; see "
                "Cache().entries() (or `scoutframe cache list`) for the keys"
            )
        return matches[0]

    def get(self, key: str, *, dtype_backend: str = "pyarrow") -> pd.DataFrame:
        """Return an entry's frame by key (or a unique key prefix), without the network."""
        from .. import checks
        from ..tables import frames

        entry, _ = self._by_key(key)
        table, provenance = entry.read()
        return frames.to_pandas(
            table, dtype_backend=checks.dtype_backend(dtype_backend), provenance=provenance
        )

    def head(self, key: str, rows: int, columns: list[str] | None = None) -> pa.Table:
        """Return an entry's first ``rows`` rows (by key or unique key prefix), read alone."""
        entry, _ = self._by_key(key)
        return entry.head(rows, columns)

    def remove(self, key: str) -> int:
        """Delete an entry (by key or unique key prefix); return the bytes freed."""
        entry, _ = self._by_key(key)
        with entry.lock():
            return entry.remove()

    def clear(self) -> int:
        """Delete every entry; return how many were removed."""
        removed = 0
        for entry, _ in list(self._all()):
            with entry.lock():
                entry.remove()
            removed += 1
        return removed

    def prune(
        self,
        older_than: timedelta | str | float | None = None,
        max_bytes: int | None = None,
    ) -> list[str]:
        """Delete old entries; return the keys removed.

        First those not refreshed for ``older_than``, then the least recently refreshed ones
        until the cache holds at most ``max_bytes``. Entries of another schema version and
        damaged ones always go. A Delta entry that stays is vacuumed: data files that only
        versions older than ``older_than`` (default 7 days, Delta's own) need are deleted,
        so ``as_of`` reaches back that far.
        """
        age = parse_age(older_than, name="older_than")
        if max_bytes is not None and (
            isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0
        ):
            raise ArgumentError(f"max_bytes must be a whole number >= 0, not {max_bytes!r}")
        now = utc_now()
        removed: list[str] = []
        kept: list[tuple[CacheEntry, Manifest]] = []
        for entry, manifest in list(self._all()):
            stale = (
                manifest is None
                or manifest.schema_version != SCHEMA_VERSION
                or (age is not None and manifest.age_seconds(now) > age.total_seconds())
            )
            if stale:
                with entry.lock():
                    entry.remove()
                removed.append(entry.key)
            else:
                assert manifest is not None
                kept.append((entry, manifest))
        for entry, _ in kept:  # a Delta entry's old versions: Delta's own retention
            if isinstance(entry, DeltaCacheEntry):
                hours = 168.0 if age is None else age.total_seconds() / 3600
                with entry.lock():
                    entry.vacuum(hours)
        if max_bytes is not None:
            kept.sort(key=lambda em: em[1].refreshed_at)  # least recently refreshed first
            total = sum(m.bytes for _, m in kept)
            for entry, manifest in kept:
                if total <= max_bytes:
                    break
                with entry.lock():
                    entry.remove()
                total -= manifest.bytes
                removed.append(entry.key)
        return removed

    def verify(self) -> pd.DataFrame:
        """Read every entry whole and check it: rows, schema, keys, manifest.

        Returns
        -------
        pandas.DataFrame
            ``key``, ``ok`` (bool), ``problem`` (empty when ok), ``location``.
        """
        report = []
        for entry, manifest, why in self._all_checked():
            found = {"ok": False, "problem": why} if why else _check(entry, manifest)
            report.append({"key": entry.key, **found, "location": entry.location})
        return pd.DataFrame(report, columns=["key", "ok", "problem", "location"])


def _check(entry: CacheEntry, manifest: Manifest | None) -> dict[str, Any]:
    if manifest is None:
        return {"ok": False, "problem": "no readable manifest or data file"}
    try:
        table, _ = entry.read()
    except CacheError as exc:
        return {"ok": False, "problem": str(exc)}
    problems = []
    if table.num_rows != manifest.rows:
        problems.append(f"{table.num_rows} rows, the manifest says {manifest.rows}")
    for field in CONTACT_SCHEMA:
        if field.name not in table.column_names:
            problems.append(f"column {field.name} is missing")
        elif table.schema.field(field.name).type != field.type:
            problems.append(f"column {field.name} is {table.schema.field(field.name).type}")
    if "place_id" in table.column_names:
        ids = table.column("place_id")
        if ids.null_count or len(ids.unique()) != len(ids):
            problems.append("place_id values are missing or repeated")
        elif not isinstance(entry, DeltaCacheEntry) and not is_strictly_ascending(ids):
            # (unique, so not in order; a Delta table keeps the order its MERGE wrote)
            problems.append("rows are not in place_id order")
    if manifest.bytes and entry.size() != manifest.bytes:
        problems.append("the data file's size differs from the manifest's")
    return {"ok": not problems, "problem": "; ".join(problems)}


def _canonical(filters: Mapping[str, Any]) -> str:
    from ..api.filters import Filters

    try:
        return Filters.from_any(dict(filters)).cache_key
    except (ValueError, TypeError):
        return ""
