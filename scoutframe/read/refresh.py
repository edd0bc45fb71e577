"""``df.spherescout.refresh()``: bring a frame from ``read_spherescout`` up to date.

A cached frame refreshes its entry (:mod:`scoutframe.read.cached`); an export frame that was
not cached takes the delta since its last history entry, merged in by ``place_id``
(:func:`scoutframe.tables.merge.upsert`); a pages frame is read again (free).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..api.deltas import LocalDeltaFile, take_delta
from ..cache.refresh import read_paid_delta
from ..errors import ArgumentError, ExportError
from ..models import PROVENANCE_ATTR, Provenance
from ..tables import frames
from ..tables.merge import aligned, upsert
from ._executor import execute
from .api import build_request, read_spherescout
from .request import DEFAULT_CONCURRENCY, CacheRequest

if TYPE_CHECKING:
    from ..api.client import Client
    from ..checks import DtypeBackend

__all__ = ["merge_delta", "refresh_frame"]


def refresh_frame(
    df: pd.DataFrame,
    *,
    full: bool = False,
    max_credits: int | None = None,
    client: Client | None = None,
) -> pd.DataFrame:
    """Bring a frame from ``read_spherescout`` up to date (``df.spherescout.refresh()``).

    A frame served from the cache refreshes its entry (by delta for an export, by pages for a
    pages read; ``full=True`` reads it again in full) and comes back from it. An export frame
    that was not cached takes the delta since its last history entry, merged by ``place_id``
    (:func:`scoutframe.tables.merge.upsert`). A pages frame is read again (free).

    Raises
    ------
    ArgumentError
        When the frame carries no scoutframe provenance (name what is missing).
    """
    raw = df.attrs.get(PROVENANCE_ATTR)
    if not raw:
        raise ArgumentError(
            "this frame has no scoutframe provenance (df.attrs['scoutframe'] is missing: it "
            "did not come from read_spherescout, or pandas dropped the attrs, e.g. in a "
            "concat of different reads); read it again with read_spherescout"
        )
    provenance = Provenance.from_dict(raw)
    backend: DtypeBackend = (
        "pyarrow" if any(isinstance(t, pd.ArrowDtype) for t in df.dtypes) else "numpy_nullable"
    )
    method = provenance.method if provenance.method in ("pages", "export") else "export"
    common: dict[str, Any] = {
        "client": client,
        "method": method,
        "dtype_backend": backend,
        "max_credits": max_credits,
        "progress": False,
    }
    if provenance.cache_entry is not None:
        request = build_request(
            dict(provenance.filters),
            {},
            columns=None,
            nrows=None,
            chunksize=None,
            return_type="pandas",
            dry_run=False,
            concurrency=DEFAULT_CONCURRENCY,
            include_all=True,
            cache=CacheRequest(
                mode="full" if full else "refresh",
                max_age=None,
                cache_dir=provenance.cache_dir,
            ),
            **common,
        )
        return execute(request)  # type: ignore[no-any-return]
    if method == "pages" or full:
        fresh: pd.DataFrame = read_spherescout(dict(provenance.filters), all=True, **common)
        return fresh
    parent = provenance.history_ids[-1] if provenance.history_ids else provenance.history_id
    if parent is None:
        raise ArgumentError(
            "this export frame does not record its history entry (provenance history_id), "
            "so there is nothing to take a delta from; read it again, or with cache=True"
        )
    merged, spent, new_id = merge_delta(df, parent, client=client, max_credits=max_credits)
    refreshed = replace(
        provenance,
        history_id=new_id,
        credits_spent=spent,
        history_ids=(*provenance.history_ids, new_id) if new_id else provenance.history_ids,
        total_count=len(merged),
    )
    return refreshed.attach(merged)


def merge_delta(
    df: pd.DataFrame, parent: int, *, client: Client | None, max_credits: int | None
) -> tuple[pd.DataFrame, int, int | None]:
    """Return ``df`` with the delta since history entry ``parent`` merged in by ``place_id``.

    Also the credits spent and the delta's own history entry (``None`` when nothing was new:
    then nothing is spent and the frame comes back unchanged). The paid delta waits in
    ``client.state_dir / "downloads"`` until the merged frame exists, as a cache refresh
    keeps it in its entry (:mod:`scoutframe.api.deltas`): a failure on the way leaves it
    there, and the next ``refresh()`` merges it without paying again.
    """
    own = client is None
    if client is None:
        from ..api.client import Client

        client = Client()
    try:
        kept = LocalDeltaFile(client.job_store.download_path(f"delta-{parent}"))
        paid = take_delta(client, parent, kept, max_credits=max_credits)
        if paid is None:
            return df.copy(), 0, None
        if paid.history_id is None:
            raise ExportError(
                f"the delta of history entry {parent} is paid for and kept at {kept.location}, "
                "but its own history entry is unknown; run df.spherescout.refresh() again in "
                "a minute (it will not be paid twice)",
                charged=True,
            )
        changes = read_paid_delta(kept, parent, again="df.spherescout.refresh()")
    finally:
        if own:
            client.close()
    base = frames.table_from_pandas(df)
    merged = upsert(aligned(base, changes), changes)
    backend: DtypeBackend = (
        "pyarrow" if any(isinstance(t, pd.ArrowDtype) for t in df.dtypes) else "numpy_nullable"
    )
    frame = frames.to_pandas(merged, dtype_backend=backend)
    kept.remove()  # merged into the frame returned: the paid file may go
    return frame, paid.credits_spent, paid.history_id
