"""A read through the Parquet cache: ``read_spherescout(..., cache=True | "refresh" | "only")``.

* ``cache=True``: an entry younger than ``max_age`` (any age without one) is returned as it
  is; an older one is brought up to date first (pages: read again, free; export: by delta,
  paying only what changed); no entry: read as usual and store the result.
* ``cache="refresh"``: bring the entry up to date now, whatever its age.
* ``cache="only"``: never touch the network; no entry is a :class:`CacheMissError`.

The whole result is stored (``nrows`` and ``columns`` apply to what is returned), sorted by
``place_id``; the frame returned is the frame stored, with the provenance extended by the
entry, its age and the chain of history entries that built it. Each entry has a file lock:
a second process refreshing the same entry waits, then finds it fresh (a delta is paid once).
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from ..cache.deltaentry import DeltaCacheEntry
from ..cache.entry import CacheEntry, Manifest, now_iso, utc_now
from ..cache.keys import SCHEMA_VERSION
from ..cache.refresh import refresh_by_delta
from ..cache.store import Cache
from ..errors import ArgumentError, CacheError, CacheMissError
from ..models import Provenance, ReadPlan
from ..tables.merge import is_strictly_ascending
from ..tables.schema import MaskedEmailWarning, warn_from_caller
from . import output
from .consent import has_consent
from .plan import make_source, plan_read

if TYPE_CHECKING:
    from ..api.filters import Filters
    from ..cache.entry import CachedMethod
    from .plan import Planned
    from .request import ReadRequest

__all__ = ["read_cached"]

#: A table just committed and its provenance, served without reading it back.
Fresh = tuple[pa.Table, Provenance] | None


def read_cached(request: ReadRequest) -> Any:
    """Serve ``request`` from the cache, refreshing or filling the entry as its mode says."""
    options = request.cache
    assert options is not None
    if request.filters is None:
        raise ArgumentError(
            "cache= needs the search's filters, not a search id: pass the filters (they name "
            "the cache entry)"
        )
    cache = Cache(
        options.cache_dir,
        storage_options=options.storage_options,
        filesystem=options.filesystem,
        cache_format=options.table_format,
    )
    if options.mode == "only":
        entry, manifest = _offline(cache, request)
        if options.as_of is not None:
            return _serve_as_of(request, entry, options.as_of)
        return _serve(request, entry, manifest, spent=0, note="; served from the cache only")
    client = request.client
    filters = request.filters.resolve(client)
    account = client.account_id()
    methods: list[CachedMethod] = (
        ["export", "pages"] if request.method == "auto" else [request.method]
    )
    found = next(
        (
            e
            for e in (cache.entry_of(client.base_url, account, filters, m) for m in methods)
            if e.exists()
        ),
        None,
    )
    if found is None:
        if options.as_of is not None:
            raise CacheMissError(
                f"no cache entry for {request.filters!r} in {cache.location} to read as of "
                f"{options.as_of!r}; as_of= reads an existing Delta entry"
            )
        return _first_read(request, cache, filters, account)
    entry = found
    if options.as_of is not None:
        return _serve_as_of(request, entry, options.as_of)
    if request.dry_run:
        return _cached_plan(request, entry)
    fresh: Fresh = None
    with entry.lock():
        manifest = _manifest(entry)
        manifest = _with_alias(entry, manifest, request.filters.cache_key)
        spent, note = 0, f"; served from the cache entry {entry.key[:12]}"
        if _stale(request, manifest):
            manifest, spent, note, fresh = _refresh(request, entry, manifest, filters)
    return _serve(request, entry, manifest, spent=spent, note=note, fresh=fresh)


def _manifest(entry: CacheEntry) -> Manifest:
    manifest = entry.manifest()
    if manifest is None:
        raise CacheError(
            f"the cache entry {entry.location} has no readable manifest; remove "
            "it with `scoutframe cache clear` or Cache().remove(key)"
        )
    return manifest


def _stale(request: ReadRequest, manifest: Manifest) -> bool:
    options = request.cache
    assert options is not None
    if options.mode in ("refresh", "full"):
        return True
    if options.max_age is None:
        return False
    return manifest.age_seconds(utc_now()) > options.max_age.total_seconds()


def _first_read(request: ReadRequest, cache: Cache, filters: Filters, account: str) -> Any:
    """No entry yet: plan the whole read, run it, store it, serve it."""
    whole = replace(request, filters=filters, nrows=None, columns=None, chunksize=None)
    planned = plan_read(whole)
    if request.dry_run:
        return replace(
            planned.plan, why=planned.plan.why + "; not in the cache yet: stored after the read"
        )
    entry = cache.entry_of(request.client.base_url, account, filters, planned.plan.method)
    with entry.lock():
        fresh: Fresh = None
        if entry.exists():  # another process filled it while this one waited
            manifest, spent, note = _manifest(entry), 0, "; stored meanwhile by another reader"
        else:
            manifest, spent, fresh = _fill(whole, planned, entry, account, request.filters)
            note = f"; stored in the cache entry {entry.key[:12]}"
    return _serve(request, entry, manifest, spent=spent, note=note, fresh=fresh)


def _fill(
    whole: ReadRequest,
    planned: Planned,
    entry: CacheEntry,
    account: str,
    asked: Filters | None,
    *,
    created_at: str | None = None,
    aliases: tuple[str, ...] = (),
) -> tuple[Manifest, int, Fresh]:
    """Read everything the plan says and commit it as the entry's table (also returned)."""
    source = make_source(whole, planned)
    try:
        parts = list(source.tables(None))
        table = _sorted(pa.concat_tables(parts, promote_options="default") if parts else _empty())
        fixed = output.provenance(whole, planned, source)
    except KeyboardInterrupt as exc:
        source.note_interrupt(exc)
        raise
    now = now_iso()
    filters = planned.filters.to_dict() if planned.filters is not None else {}
    if asked is not None and asked.cache_key not in aliases:
        aliases = (*aliases, asked.cache_key)
    manifest = Manifest(
        key=entry.key,
        origin=whole.client.base_url,
        account=account,
        filters=filters,
        method=planned.plan.method,
        schema_version=SCHEMA_VERSION,
        created_at=created_at or now,
        refreshed_at=now,
        history_ids=fixed.history_ids,
        search_id=fixed.search_id,
        aliases=aliases,
        credits_spent=fixed.credits_spent,
    )
    committed = entry.commit(table, manifest, fixed)
    source.delivered()  # stored: a paid file may go now
    return committed, fixed.credits_spent, (table, fixed)


def _refresh(
    request: ReadRequest, entry: CacheEntry, manifest: Manifest, filters: Filters
) -> tuple[Manifest, int, str, Fresh]:
    options = request.cache
    assert options is not None
    if manifest.method == "pages" or options.mode == "full":
        whole = replace(
            request,
            filters=filters,
            nrows=None,
            columns=None,
            chunksize=None,
            method=manifest.method,
        )
        planned = plan_read(whole)
        again, spent, fresh = _fill(
            whole,
            planned,
            entry,
            manifest.account,
            request.filters,
            created_at=manifest.created_at,
            aliases=manifest.aliases,
        )
        return again, spent, f"; the cache entry {entry.key[:12]} was read again in full", fresh
    result = refresh_by_delta(
        request.client,
        entry,
        manifest,
        max_credits=request.max_credits,
        consent=has_consent(request),
    )
    if result.rows == 0:
        return result.manifest, 0, f"; the cache entry {entry.key[:12]} had nothing new", None
    fresh = (
        None
        if result.table is None or result.provenance is None
        else (result.table, result.provenance)
    )
    return (
        result.manifest,
        result.credits_spent,
        (f"; the cache entry {entry.key[:12]} took a delta of {result.rows:,} rows"),
        fresh,
    )


def _serve(
    request: ReadRequest,
    entry: CacheEntry,
    manifest: Manifest,
    *,
    spent: int,
    note: str,
    fresh: Fresh = None,
) -> Any:
    """Return the entry's table as the read asks (columns, nrows, chunks, return type).

    ``fresh`` is the table just committed and its provenance, when there is one (not read
    back from disk).
    """
    stored: Provenance | None
    if fresh is None:
        table, stored = entry.read(columns=request.columns)
    else:
        table, stored = fresh
        table = table.replace_schema_metadata(None)
        if request.columns is not None:
            table = table.select(request.columns)
    if request.nrows is not None:
        table = table.slice(0, request.nrows)
    base = stored or Provenance(
        filters=manifest.filters, search_id=manifest.search_id, method=manifest.method
    )
    age = manifest.age_seconds(utc_now())
    chain = manifest.history_ids
    if fresh is None and stored is not None and stored.history_ids not in ((), chain):
        # Another writer committed after the manifest was read (the lock is not held for the
        # read): the table read carries its own chain, which is what this frame holds.
        chain = stored.history_ids
        with contextlib.suppress(ValueError, TypeError):  # an unreadable time: the manifest's
            age = (utc_now() - datetime.fromisoformat(stored.fetched_at)).total_seconds()
    fixed = replace(
        base,
        credits_spent=spent,
        reason=base.reason.split("; served")[0] + note,
        cache_entry=entry.key,
        # the cache the read named (refresh() finds it there); the default one is not recorded
        cache_dir=None
        if request.cache is None or request.cache.cache_dir is None
        else (entry.backend.location),
        history_ids=chain,
        cache_age_seconds=round(age, 3),
        emails_masked=manifest.method == "pages",
    )
    if manifest.method == "pages":
        warn_from_caller(
            "Emails from search pages are masked (e.g. 'j***@d*****.fr'), not real addresses; "
            "this cache entry was read by pages. Use method='export' for full data.",
            MaskedEmailWarning,
        )
    if request.chunksize is not None:
        return output.deliver_chunks(request, table, fixed)
    return output.deliver(request, table, fixed)


def _serve_as_of(request: ReadRequest, entry: CacheEntry, as_of: int | datetime | str) -> Any:
    """Serve a Delta entry as it was at a table version or time: no refresh, no lock."""
    if not isinstance(entry, DeltaCacheEntry):
        raise ArgumentError(
            f"as_of= reads a Delta entry as it was; the cache entry {entry.key[:12]} is a "
            "Parquet file, which keeps no versions. Create entries with cache_format='delta' "
            "to read them as of a version or time"
        )
    pinned = entry.at(as_of)
    manifest = pinned.manifest()
    if manifest is None:
        raise CacheError(f"the cache entry {entry.location} has no readable manifest")
    version = pinned.table_version()
    return _serve(
        request, pinned, manifest, spent=0, note=f"; served as of table version {version}"
    )


def _offline(cache: Cache, request: ReadRequest) -> tuple[CacheEntry, Manifest]:
    assert request.filters is not None
    client = request.client
    method = None if request.method == "auto" else request.method
    found = cache.find(
        origin=client.base_url,
        filters_key=request.filters.cache_key,
        method=method,
        account=client.known_account,
    )
    accounts = {m.account for _, m in found}
    if not found:
        raise CacheMissError(
            f"no cache entry for {request.filters!r} from {client.base_url} in {cache.location} "
            "(cache='only' never reads from the network); read it once with cache=True"
        )
    if len(accounts) > 1:
        raise CacheMissError(
            f"the cache at {cache.location} has entries of {len(accounts)} accounts for these "
            "filters, and cache='only' cannot ask which one this client is; read once with "
            "cache=True (it asks), then cache='only' works with that client"
        )
    return found[0]


def _cached_plan(request: ReadRequest, entry: CacheEntry) -> ReadPlan:
    manifest = _manifest(entry)
    needed = 0
    why = f"served from the cache entry {entry.key[:12]} ({manifest.rows:,} rows)"
    if _stale(request, manifest):
        if manifest.method == "export" and manifest.last_history_id is not None:
            needed = request.client.history.freshness(manifest.last_history_id).new_count
            why += f"; a refresh now costs {needed:,} credits (the delta)"
        else:
            why += "; it would be read again by pages (free)"
    rows = manifest.rows if request.nrows is None else min(manifest.rows, request.nrows)
    return ReadPlan(
        rows=rows,
        method=manifest.method,
        credits_needed=needed,
        credits_available=request.client.profile().credits,
        search_id=manifest.search_id,
        why=why,
        total_count=manifest.rows,
    )


def _with_alias(entry: CacheEntry, manifest: Manifest, spelling: str) -> Manifest:
    if spelling in manifest.aliases:
        return manifest
    aliased = replace(manifest, aliases=(*manifest.aliases, spelling))
    entry.write_manifest(aliased)
    return aliased


def _sorted(table: pa.Table) -> pa.Table:
    if not is_strictly_ascending(table.column("place_id")):  # (a stable sort keeps repeats' order)
        table = table.take(pc.sort_indices(table, sort_keys=[("place_id", "ascending")]))
    return table.combine_chunks()


def _empty() -> pa.Table:
    from ..tables.schema import empty_table

    return empty_table()
