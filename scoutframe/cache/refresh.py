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
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from ..api.deltas import DeltaFile, take_delta
from ..errors import CacheError, ConsentError, ExportParseError
from ..models import Provenance
from ..tables import exportcsv
from ..tables.merge import aligned, is_strictly_ascending, upsert, upsert_slices
from .deltaentry import DeltaCacheEntry
from .entry import CacheEntry, Manifest, now_iso

if TYPE_CHECKING:
    from ..api.client import Client
    from ..models import Freshness

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
            f"the cache entry {entry.location} has no export history to refresh from; "
            "refresh it in full (full=True)"
        )
    _drop_merged_deltas(entry, manifest)
    pending = entry.pending_delta(parent)

    def refuse_without_consent(fresh: Freshness) -> None:
        if not consent:
            raise ConsentError(
                f"{fresh.new_count:,} contacts are new or updated since this cache entry was "
                f"last refreshed; bringing it up to date costs {fresh.new_count:,} credits (the "
                f"delta), and no budget was given, so nothing was spent. Pass "
                f"max_credits={fresh.new_count} (or method='export') to pay for it, or read "
                "the entry as it is with cache=True and a larger max_age"
            )

    paid = take_delta(
        client, parent, pending, max_credits=max_credits, before_paying=refuse_without_consent
    )
    if paid is None:
        return DeltaResult(entry.touch(manifest), 0, 0)
    if paid.reused:
        logger.info("merging the delta of entry %d already paid for (%s)", parent, pending)
    if paid.history_id is None:
        raise CacheError(
            f"the delta of history entry {parent} was downloaded to {pending.location} but its "
            "own history entry is unknown; refresh again in a minute (it will not be paid twice)"
        )
    spent = paid.credits_spent
    changes = read_paid_delta(pending, parent, again="the same refresh")
    result = replace(
        manifest,
        history_ids=(*manifest.history_ids, paid.history_id),
        refreshed_at=now_iso(),
        credits_spent=manifest.credits_spent + spent,
    )
    keys = entry.read([KEY])[0].column(KEY)
    if isinstance(entry, DeltaCacheEntry):  # delta-rs's MERGE: one table version
        rows = _rows_after(keys, changes)
        stored = _provenance(entry.stored_provenance(), result, rows, spent)
        committed = entry.merge(changes, replace(result, rows=rows), stored)
        pending.remove()
        return DeltaResult(committed, changes.num_rows, spent, None, stored)
    if is_strictly_ascending(keys):
        committed, merged, stored = _commit_streamed(entry, keys, changes, result, spent)
    else:  # written by an older scoutframe, or damaged: merge it whole (sorts it)
        base, provenance = entry.read()
        merged = upsert(aligned(base, changes), changes)
        del base
        stored = _provenance(provenance, result, merged.num_rows, spent)
        committed = entry.commit(merged, result, stored)
    pending.remove()
    return DeltaResult(committed, changes.num_rows, spent, merged, stored)


def _commit_streamed(
    entry: CacheEntry, keys: pa.ChunkedArray, changes: pa.Table, result: Manifest, spent: int
) -> tuple[Manifest, pa.Table, Provenance]:
    """Merge the delta into the sorted entry slice by slice while the slices are written.

    The row count goes into the file's metadata before the first slice, so it is counted
    first: the base's rows plus the delta's keys the base lacks.
    """
    rows = _rows_after(keys, changes)
    stored = _provenance(entry.stored_provenance(), result, rows, spent)
    slices = upsert_slices((aligned(part, changes) for part in entry.slices()), changes)
    committed, merged = entry.commit_slices(
        slices, changes.schema, replace(result, rows=rows), stored
    )
    return committed, merged, stored


def _rows_after(keys: pa.ChunkedArray, changes: pa.Table) -> int:
    """Return the rows of the table once ``changes`` are merged: its keys plus the new ones."""
    delta_keys = pc.unique(changes.column(KEY))
    known = pc.sum(pc.is_in(keys, value_set=delta_keys)).as_py() or 0
    return len(keys) + len(delta_keys) - known


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


def _found_history(client: Client, entry: CacheEntry, manifest: Manifest) -> Manifest:
    """Find the export an entry was filled from when its history id could not be learnt then.

    The newest full export of the entry's search made no later than the entry: the export
    history lists it (a passing failure at fill time left the id out).
    """
    if manifest.search_id is None:
        return manifest
    filled = datetime.fromisoformat(manifest.created_at) if manifest.created_at else None
    found = client.job_store.newest_export(manifest.search_id, made_by=filled)
    if found is None:
        return manifest
    repaired = replace(manifest, history_ids=(found.id,))
    entry.write_manifest(repaired)
    return repaired


def _drop_merged_deltas(entry: CacheEntry, manifest: Manifest) -> None:
    """Remove delta files of parents the entry has moved past (merged before a crash)."""
    merged = set(manifest.history_ids[:-1])
    for parent in entry.pending_parents():
        if parent in merged:
            entry.pending_delta(parent).remove()


def read_paid_delta(kept: DeltaFile, parent: int, *, again: str) -> pa.Table:
    """Read a paid delta file into the contacts schema; a broken one stays where it is.

    Raises
    ------
    ExportParseError
        The file cannot be read; it is kept, and its location is in the message.
    """
    try:
        with kept.reading() as path:
            return exportcsv.read_csv(path, warn_drift=False)
    except (pa.ArrowInvalid, UnicodeDecodeError, ValueError, OSError) as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ExportParseError(
            f"the paid delta of history entry {parent} could not be read "
            f"({type(exc).__name__}: {reason}). It is kept at {kept.location}; once the cause "
            f"is fixed, {again} merges it without paying again",
            path=Path(kept.location),
        ) from exc
