"""A delta refresh of a cache entry in its own process, killed on purpose at a chosen hook.

Run as a script by ``test_crash_points.py``: it brings the export cache entry of ``--filters``
up to date (``read_spherescout(..., method="export", cache="refresh", cache_dir=...,
max_credits=...)``) and, when ``--hook`` is not ``none``, kills itself with SIGKILL there
(nothing runs afterwards: no ``finally``, no lock release but the kernel's). Hooks, in the
order a refresh meets them:

``freshness``        the freshness of the entry's last history entry was answered (nothing paid)
``delta-saved``      the delta was paid and its file moved into the entry (``_delta-<id>.csv``)
``delta-read``       the saved delta is about to be parsed for the merge
``merged``           a merge is done (the first slice of a streamed merge, or the whole
                     table), nothing committed yet
``commit-temp``      inside the commit: the new table is written to its temporary file, not
                     yet moved over ``data.parquet`` (a Delta entry: the MERGE is about to run)
``commit-replaced``  inside the commit: the new table is in place, its JSON manifest not yet
                     (a Delta entry: the MERGE's version is committed)
``committed``        the commit (or the MERGE) returned, the delta file is not removed yet
``cleaned``          the refresh returned (delta file removed), the read not served yet
``served``           ``read_spherescout`` returned, before this script prints its result

``--at`` kills at the n-th time the hook is met (every hook is met once per refresh). On
success it prints one JSON line: rows, credits spent by this run, the history chain.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from deltalake.table import TableMerger

from scoutframe import Client, read_spherescout
from scoutframe.api.endpoints import history
from scoutframe.cache import entry as cache_entry
from scoutframe.cache import refresh as cache_refresh
from scoutframe.cache.deltaentry import DeltaCacheEntry
from scoutframe.read import cached
from scoutframe.tables import delta as deltatables
from scoutframe.tables import merge

HOOKS = (
    "none",
    "freshness",
    "delta-saved",
    "delta-read",
    "merged",
    "commit-temp",
    "commit-replaced",
    "committed",
    "cleaned",
    "served",
)
#: The two ways a cache entry's table is committed (whole, or slice by slice).
COMMITS = ("commit", "commit_slices")


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class _Trigger:
    """Kill this process the ``at``-th time :meth:`hit` is called."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.calls = 0

    def hit(self) -> None:
        self.calls += 1
        if self.calls >= self.at:
            _kill()


def _after(trigger: _Trigger, inner: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = inner(*args, **kwargs)
        trigger.hit()
        return result

    return wrapped


def _before(trigger: _Trigger, inner: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        trigger.hit()
        return inner(*args, **kwargs)

    return wrapped


def install(hook: str, at: int) -> _Trigger:
    """Arrange for this process to be killed at ``hook``; returns its trigger."""
    trigger = _Trigger(at)
    if hook == "freshness":
        history.History.freshness = _after(trigger, history.History.freshness)  # type: ignore[method-assign]
    elif hook == "delta-saved":
        history.History.download_delta = _after(trigger, history.History.download_delta)  # type: ignore[method-assign]
    elif hook == "delta-read":
        cache_refresh.exportcsv.read_csv = _before(trigger, cache_refresh.exportcsv.read_csv)  # type: ignore[attr-defined]
    elif hook == "merged":  # whole (an unsorted entry) or slice by slice (upsert_slices)
        cache_refresh.upsert = _after(trigger, cache_refresh.upsert)  # type: ignore[attr-defined]
        merge.upsert = _after(trigger, merge.upsert)  # type: ignore[assignment]
        # a Delta entry: the delta's own repeats resolved, just before its MERGE
        deltatables.upsert = _after(trigger, deltatables.upsert)  # type: ignore[attr-defined]
    elif hook == "commit-temp":  # a whole table, or the streamed writer's last step
        pq.write_table = _after(trigger, pq.write_table)
        pq.ParquetWriter.close = _after(trigger, pq.ParquetWriter.close)  # type: ignore[method-assign]
        # a Delta entry: the MERGE is about to run (nothing of the new version exists)
        TableMerger.execute = _before(trigger, TableMerger.execute)  # type: ignore[method-assign]
    elif hook == "commit-replaced":
        real_manifest = cache_entry.CacheEntry.write_manifest
        inside = [False]

        def inside_of(real: Callable[..., Any]) -> Callable[..., Any]:
            def commit(self: Any, *args: Any, **kwargs: Any) -> Any:
                inside[0] = True
                try:
                    return real(self, *args, **kwargs)
                finally:
                    inside[0] = False

            return commit

        def write_manifest(self: Any, *args: Any, **kwargs: Any) -> Any:
            if inside[0]:
                trigger.hit()
            return real_manifest(self, *args, **kwargs)

        for name in COMMITS:
            setattr(cache_entry.CacheEntry, name, inside_of(getattr(cache_entry.CacheEntry, name)))
        cache_entry.CacheEntry.write_manifest = write_manifest  # type: ignore[method-assign]
        # a Delta entry: the MERGE's version is committed, its JSON manifest not yet written
        TableMerger.execute = _after(trigger, TableMerger.execute)  # type: ignore[method-assign]
    elif hook == "committed":
        for name in COMMITS:
            real = getattr(cache_entry.CacheEntry, name)
            setattr(cache_entry.CacheEntry, name, _after(trigger, real))
        DeltaCacheEntry.merge = _after(trigger, DeltaCacheEntry.merge)  # type: ignore[method-assign]
    elif hook == "cleaned":
        cached.refresh_by_delta = _after(trigger, cached.refresh_by_delta)  # type: ignore[attr-defined]
    elif hook not in ("none", "served"):
        raise SystemExit(f"unknown hook {hook!r}")
    return trigger


def refresh(
    url: str, key: str, state: str, cache: str, filters: dict[str, Any], budget: int
) -> pd.DataFrame:
    """Bring the export cache entry of ``filters`` up to date (the crash test's re-run too)."""
    with Client(
        key,
        url,
        allow_http=True,
        state_dir=state,
        config_file=os.path.join(state, "no-config.toml"),
        poll_interval=(0.05, 0.2),
        backoff_factor=0.01,
    ) as client:
        return read_spherescout(
            **filters,
            client=client,
            method="export",
            cache="refresh",
            cache_dir=cache,
            max_credits=budget,
            progress=False,
        )


def summary(frame: pd.DataFrame) -> dict[str, Any]:
    """What a run prints: rows, credits spent by it, the history chain, the reason."""
    meta = frame.attrs["scoutframe"]
    return {
        "rows": len(frame),
        "credits_spent": meta.get("credits_spent"),
        "history_ids": meta.get("history_ids"),
        "reason": meta.get("reason"),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--cache", required=True)
    parser.add_argument("--filters", required=True, help="JSON object of filters")
    parser.add_argument("--budget", type=int, required=True)
    parser.add_argument("--hook", default="none", choices=HOOKS)
    parser.add_argument("--at", type=int, default=1)
    options = parser.parse_args()
    trigger = install(options.hook, options.at)
    filters = json.loads(options.filters)
    frame = refresh(options.url, options.key, options.state, options.cache, filters, options.budget)
    if options.hook == "served":
        trigger.hit()
    print(json.dumps(summary(frame)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
