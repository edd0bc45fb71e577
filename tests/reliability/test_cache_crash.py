"""A cache writer killed with SIGKILL at many moments leaves the old entry or the new one."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from scoutframe.cache import Cache
from scoutframe.cache.backend import LocalBackend
from scoutframe.cache.entry import CacheEntry
from scoutframe.tables import frames

WRITER = Path(__file__).with_name("cache_writer.py")
ROWS = 60_000


def contacts_table(rows: int, tag: str) -> pa.Table:
    records = [
        {
            "place_id": f"p{n:07d}",
            "name": f"{tag} {n}",
            "email": [f"{tag}{n}@x.fr"],
            "zipcode": "01000",
            "country": "NA",
            "collected_at": "2026-01-01T00:00:00Z",
        }
        for n in range(rows)
    ]
    return frames.records_to_table(records, warn_drift=False)


def test_a_writer_killed_anywhere_leaves_a_readable_old_or_new_entry(
    tmp_path: Path, soak: bool, figures: Any
) -> None:
    points = 50 if soak else 10
    rng = random.Random(20261129)
    entry_dir = tmp_path / "cache" / "0123456789abcdef0123456789abcdef"
    outcomes = {"old": 0, "new": 0}
    versions = [tmp_path / "old.parquet", tmp_path / "new.parquet"]
    pq.write_table(contacts_table(ROWS, "old"), versions[0])
    pq.write_table(contacts_table(ROWS + 5, "new"), versions[1])
    for point in range(points):
        writer = subprocess.Popen(
            [sys.executable, str(WRITER), str(entry_dir), *map(str, versions)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"
        # Kill during the first commit ever (0), during "new" after "old" (1) or during "old"
        # after "new" (2), somewhere in it: the writer says how long its last commit took, so
        # the aim holds on a loaded machine (a fixed sleep missed the second commit there).
        commit_seconds = 0.2
        for _ in range(point % 3):
            word, seconds = writer.stdout.readline().split()
            assert word == "committed"
            commit_seconds = float(seconds)
        time.sleep(rng.uniform(0.0, 1.0) * commit_seconds)
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        writer.stdout.close()
        entry = CacheEntry(LocalBackend(entry_dir.parent), entry_dir.name)
        manifest = entry.manifest()
        if manifest is None:  # killed before its first commit finished: nothing there yet
            assert not entry.exists()
            continue
        table, provenance = entry.read()
        assert table.num_rows in (ROWS, ROWS + 5)
        assert manifest.rows == table.num_rows  # the manifest agrees with the data
        assert provenance is not None
        assert provenance.history_id == manifest.last_history_id
        names = set(table.column("name").to_pylist())
        tag = "old" if table.num_rows == ROWS else "new"
        assert {n.split()[0] for n in names} == {tag}  # never a mix of two versions
        outcomes[tag] += 1
        visible = pads.dataset(entry_dir, format="parquet").to_table()
        assert visible.num_rows == table.num_rows  # leftovers are hidden from readers
        report = Cache(tmp_path / "cache").verify()
        assert report["ok"].tolist() == [True]
    assert outcomes["old"] + outcomes["new"] >= points - (points + 2) // 3
    assert outcomes["old"]  # the kills landed on both sides
    assert outcomes["new"]
    figures.add("cache writer kills", points)
    entry = CacheEntry(LocalBackend(entry_dir.parent), entry_dir.name)
    with entry.lock():  # the next writer clears what killed ones left
        entry._drop_leftovers()
    assert entry.leftovers() == []
