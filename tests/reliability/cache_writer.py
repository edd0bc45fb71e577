"""Commit two tables to one cache entry in turn, for ever (killed by the crash test).

After each commit it prints ``committed SECONDS`` (how long that commit took), so the test
can aim its kill inside the next commit however loaded the machine is. The two tables come
ready-made as Parquet files (built once by the test, not by each of its ten writers).

Usage: ``cache_writer.py ENTRY_DIR OLD.parquet NEW.parquet``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from scoutframe.cache.backend import LocalBackend
from scoutframe.cache.entry import CacheEntry, Manifest, now_iso
from scoutframe.models import Provenance


def main() -> None:
    where = Path(sys.argv[1])
    entry = CacheEntry(LocalBackend(where.parent), where.name)
    versions = [pq.read_table(sys.argv[2]), pq.read_table(sys.argv[3])]
    n = 0
    print("ready", flush=True)
    while True:
        current = versions[n % 2]
        manifest = Manifest(
            key=entry.key,
            origin="http://127.0.0.1:1",
            account="1",
            filters={"countries": ["NA"]},
            method="export",
            schema_version=1,
            created_at=now_iso(),
            refreshed_at=now_iso(),
            history_ids=(n + 1,),
        )
        started = time.perf_counter()
        with entry.lock():
            entry.commit(current, manifest, Provenance(history_id=n + 1))
        print(f"committed {time.perf_counter() - started:.4f}", flush=True)
        n += 1


if __name__ == "__main__":
    main()
