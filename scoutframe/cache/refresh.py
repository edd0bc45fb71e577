"""Bringing an export entry up to date by delta: pay only for what changed, and only once.

1. ``freshness`` of the entry's last history entry (free): nothing new, nothing spent;
2. otherwise the delta CSV (1 credit a row, after the budget and balance checks) is downloaded
   into the entry's directory as ``_delta-<parent>.csv`` **before** it is merged, so a process
   killed between paying and committing finds it there next time instead of paying again;
3. :func:`scoutframe.tables.merge.upsert` merges it by ``place_id`` (the newer ``collected_at``
   wins, the delta wins a tie, whole rows, nothing deleted: the API has no tombstones);
   the entry's table is sorted by ``place_id``, so it is merged slice by slice
   (:func:`~scoutframe.tables.merge.upsert_slices`) while a second thread writes the merged slices;
4. the new table is committed (atomic), then the delta file goes.

The caller holds the entry's lock, so a second process waits and then finds nothing new.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import APIError, CacheError, ConsentError, TransportError
from ..models import Provenance
from ..tables import exportcsv
from ..tables.merge import is_strictly_ascending, upsert, upsert_slices
from .entry import CacheEntry, Manifest, now_iso

if TYPE_CHECKING:
    from ..api.client import Client

__all__ = ["DeltaResult", "refresh_by_delta"]

logger = logging.getLogger("scoutframe.cache")

KEY = "place_id"


class DeltaResult:
    """What a delta refresh did: the new manifest, the rows changed, the credits spent.

    Also the merged table and its provenance (``None`` when nothing was new).
    """

    def __init__(
        self,
        manifest: Manifest,
        rows: int,
        credits_spent: int,
        table: pa.Table | None = None,
        provenance: Provenance | None = None,
    ) -> None:
        self.manifest = manifest
        self.rows = rows
        self.credits_spent = credits_spent
        self.table = table
        self.provenance = provenance

    def __repr__(self) -> str:
        return (
            f"DeltaResult(rows={self.rows}, credits_spent={self.credits_spent}, "
            f"history_id={self.manifest.last_history_id})"
        )


def refresh_by_delta(
    client: Client,
    entry: CacheEntry,
    manifest: Manifest,
    *,
    max_credits: int | None,
    consent: bool,
) -> DeltaResult:
    """Bring an export entry up to date (see the module documentation).

    Parameters
    ----------
    client
        The client of the entry's account and origin.
    entry, manifest
        The entry and its committed manifest; the caller holds ``entry.lock()``.
    max_credits
        The delta's budget (``BudgetError`` above it, before anything is spent).
    consent
        Whether the caller agreed to spend (``method="export"`` or a budget); without it a
        delta that costs anything raises :class:`~scoutframe.errors.ConsentError`.

    Raises
    ------
    ConsentError, BudgetError, InsufficientCreditsError
        Before anything is spent.
    CacheError
        The entry has no history to continue from.
    """
    parent = manifest.last_history_id
    if parent is None:
        manifest = _found_history(client, entry, manifest)
        parent = manifest.last_history_id
    if parent is None:
        raise CacheError(
            f"the cache entry {entry.directory} has no export history to refresh "
            "from; refresh it in full (full=True)"
        )
    _drop_merged_deltas(entry, manifest)
    pending = entry.pending_delta(parent)
    spent = 0
    if pending.exists():  # paid by an earlier run that stopped before merging it
        new_id = _recorded_delta(client, parent)
        logger.info("merging the delta of entry %d already paid for (%s)", parent, pending)
    else:
        fresh = client.history.freshness(parent)
        if fresh.is_fresh:
            return DeltaResult(entry.touch(manifest), 0, 0)
        if not consent:
            raise ConsentError(
                f"{fresh.new_count:,} contacts are new or updated since this cache entry was "
                f"last refreshed; bringing it up to date costs {fresh.new_count:,} credits (the "
                f"delta), and no budget was given, so nothing was spent. Pass "
                f"max_credits={fresh.new_count} (or method='export') to pay for it, or read "
                "the entry as it is with cache=True and a larger max_age"
            )
        delta = client.history.download_delta(
            parent, pending, max_credits=max_credits, freshness=fresh
        )
        new_id, spent = delta.history_id, delta.credits_spent
    if new_id is None:
        raise CacheError(
            f"the delta of history entry {parent} was downloaded to {pending} but its own "
            "history entry is unknown; refresh again in a minute (it will not be paid twice)"
        )
    changes = exportcsv.read_csv(pending, warn_drift=False)
    result = replace(
        manifest,
        history_ids=(*manifest.history_ids, new_id),
        refreshed_at=now_iso(),
        credits_spent=manifest.credits_spent + spent,
    )
    keys = entry.read([KEY])[0].column(KEY)
    if is_strictly_ascending(keys):
        committed, merged, stored = _commit_streamed(entry, keys, changes, result, spent)
    else:  # written by an older scoutframe, or damaged: merge it whole (sorts it)
        base, provenance = entry.read()
        merged = upsert(_aligned(base, changes), changes)
        del base
        stored = _provenance(provenance, result, merged.num_rows, spent)
        committed = entry.commit(merged, result, stored)
    pending.unlink(missing_ok=True)
    return DeltaResult(committed, changes.num_rows, spent, merged, stored)


def _commit_streamed(
    entry: CacheEntry, keys: pa.ChunkedArray, changes: pa.Table, result: Manifest, spent: int
) -> tuple[Manifest, pa.Table, Provenance]:
    """Merge the delta into the sorted entry slice by slice while the slices are written.

    The row count goes into the file's metadata before the first slice, so it is counted
    first: the base's rows plus the delta's keys the base lacks.
    """
    delta_keys = pc.unique(changes.column(KEY))
    known = pc.sum(pc.is_in(keys, value_set=delta_keys)).as_py() or 0
    rows = len(keys) + len(delta_keys) - known
    stored = _provenance(entry.stored_provenance(), result, rows, spent)
    slices = upsert_slices((_aligned(part, changes) for part in entry.slices()), changes)
    committed, merged = entry.commit_slices(
        slices, changes.schema, replace(result, rows=rows), stored
    )
    return committed, merged, stored


def _provenance(old: Provenance | None, result: Manifest, rows: int, spent: int) -> Provenance:
    """Return the provenance of the refreshed table."""
    return replace(
        old or Provenance(),
        history_id=result.last_history_id,
        credits_spent=spent,
        total_count=rows,
        fetched_at=result.refreshed_at,
        history_ids=result.history_ids,
    )


def _aligned(base: pa.Table, changes: pa.Table) -> pa.Table:
    """Return the base with the delta's columns (one the API added since is null)."""
    for name in changes.column_names:
        if name not in base.column_names:
            base = base.append_column(
                changes.schema.field(name), pa.nulls(base.num_rows, changes.schema.field(name).type)
            )
    return base.select(changes.column_names) if base.column_names != changes.column_names else base


def _found_history(client: Client, entry: CacheEntry, manifest: Manifest) -> Manifest:
    """Find the export an entry was filled from when its history id could not be learnt then.

    The newest full export of the entry's search made no later than the entry: the export
    history lists it (a passing failure at fill time left the id out).
    """
    if manifest.search_id is None:
        return manifest
    filled = datetime.fromisoformat(manifest.created_at) if manifest.created_at else None
    for found in client.history.entries():  # newest first
        if found.kind != "full" or found.search_id != manifest.search_id:
            continue
        if filled is not None and found.created_at is not None and found.created_at > filled:
            continue  # made after the entry: not the one it holds
        repaired = replace(manifest, history_ids=(found.id,))
        entry.write_manifest(repaired)
        return repaired
    return manifest


def _recorded_delta(client: Client, parent: int) -> int | None:
    """Return the history id of the newest delta from ``parent`` (a paid file's own)."""
    try:
        entries = client.history.entries()
    except (APIError, TransportError):
        return None
    ids = [e.id for e in entries if e.kind == "delta" and e.parent_id == parent]
    return max(ids) if ids else None


def _drop_merged_deltas(entry: CacheEntry, manifest: Manifest) -> None:
    """Remove delta files of parents the entry has moved past (merged before a crash)."""
    merged = set(manifest.history_ids[:-1])
    for path in entry.directory.glob("_delta-*.csv"):
        try:
            parent = int(path.stem.removeprefix("_delta-"))
        except ValueError:
            continue
        if parent in merged:
            path.unlink(missing_ok=True)
