"""A disk that fills up: a clear error, nothing paid twice, nothing half-written left.

The disk fills up in a worker process (``disk_worker.py``) whose files cannot grow past a
limit (``RLIMIT_FSIZE`` with SIGXFSZ ignored: every write past it fails with ``EFBIG``, as a
full disk fails with ``ENOSPC``; both are "no room" to scoutframe). A small tmpfs would need
root and a mount; the file-size limit needs neither and fails real writes in the kernel. The
cases:

* while an export downloads: :class:`~scoutframe.errors.DiskFullError` naming the part file
  and the bytes still needed; the export is paid once, its part file is kept (deliberately:
  the next read resumes it) and the next read, with room, completes it without paying again;
* while a cache entry is written (the disk fills up after the download): the error names the
  entry's ``data.parquet`` and the room it takes; no entry, no temporary file, the paid file
  kept in ``state_dir/downloads``; the next read stores it without paying again;
* during a delta refresh, at the commit: the old entry is intact (byte for byte), the paid
  delta is kept in the entry (``_delta-<parent>.csv``, deliberately), no temporary file; the
  next refresh merges it without paying again;
* during a delta refresh, with no room for the delta itself: the API serves a delta's body
  once, so it is not bought (room is checked first, the free space and the file-size limit);
  nothing is paid, the entry is intact.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sandboxdata import linked_data_dir

import scoutframe
from scoutframe import files
from scoutframe.cache.entry import DATA, MANIFEST
from scoutframe.errors import DiskFullError
from scoutframe.sandbox import Sandbox

CONTACTS = 5_000
WORKER = Path(__file__).with_name("disk_worker.py")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(
        contacts=CONTACTS,
        data_dir=linked_data_dir(tmp_path_factory, "sandbox-disk-full", CONTACTS),
        rate_limit=0,
    ) as sandbox:
        yield sandbox


class Disk:
    """An account, its state directory and cache, and reads with or without room."""

    def __init__(self, sb: Sandbox, tmp: Path, filters: dict[str, Any]) -> None:
        self.sb = sb
        self.tmp = tmp
        self.filters = filters
        self.account = sb.admin.create_account(credits=50_000)
        self.state = tmp / "state"
        self.cache_dir = tmp / "cache"
        self.client = scoutframe.Client(
            self.account["api_key"],
            base_url=sb.url,
            allow_http=True,
            state_dir=self.state,
            config_file=tmp / "none.toml",
            max_retries=1,
            backoff_factor=0.01,
            poll_interval=(0.01, 0.05),
        )

    def full_disk(
        self, limit: int, *, cache: bool = False, refresh: bool = False, when: str = "start"
    ) -> dict[str, Any]:
        """Run the read in a worker whose files cannot pass ``limit`` bytes; its outcome."""
        command = [
            sys.executable,
            str(WORKER),
            *("--url", self.sb.url, "--key", self.account["api_key"]),
            *("--state", str(self.state), "--filters", json.dumps(self.filters)),
            *("--limit", str(limit), "--when", when),
        ]
        if cache:
            command += ["--cache", str(self.cache_dir)]
        if refresh:
            command += ["--refresh"]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        outcome: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return outcome

    def read(self, **options: Any) -> pd.DataFrame:
        return scoutframe.read_spherescout(
            **self.filters,
            method="export",
            client=self.client,
            progress=False,
            max_credits=1_000_000,
            **options,
        )

    def cached(self, cache: Any = True) -> pd.DataFrame:
        return self.read(cache=cache, cache_dir=self.cache_dir)

    def charges(self) -> list[int]:
        return [-e["delta"] for e in self.sb.admin.ledger(self.account["id"]) if e["delta"] < 0]

    def entry_dir(self) -> Path:
        (found,) = [p for p in self.cache_dir.iterdir() if p.is_dir()]
        return found

    def temporaries(self) -> list[Path]:
        """Files of writes in progress anywhere under the state directory and the cache."""
        return [
            p
            for top in (self.state, self.cache_dir)
            if top.exists()
            for p in top.rglob("*")
            if p.name.endswith((".tmp", ".part"))
        ]

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def disk(sb: Sandbox, tmp_path: Path) -> Iterator[Disk]:
    made = Disk(sb, tmp_path, {"countries": "FR"})
    yield made
    made.close()


def _says_where_and_how_much(outcome: dict[str, Any], path: Path) -> None:
    assert outcome["error"] == "DiskFullError", outcome
    assert outcome["path"] == str(path)
    assert str(path) in outcome["message"]
    assert outcome["needed"] is not None
    assert outcome["needed"] > 0
    assert f"{outcome['needed']:,} bytes" in outcome["message"] or "kB" in outcome["message"]


def test_export_download_on_a_full_disk_resumes_without_paying_again(
    disk: Disk, figures: Any
) -> None:
    limit = 20_000
    outcome = disk.full_disk(limit)
    (paid,) = disk.charges()
    (part,) = disk.temporaries()  # the one file kept on purpose: the resumable part file
    assert part.name.endswith(".part")
    assert part.parent == disk.state / "downloads"
    _says_where_and_how_much(outcome, part)
    assert "resume" in outcome["message"]
    assert 0 < part.stat().st_size <= limit
    figures.add("disk full: cases tried")
    figures.add("disk full: bytes written before the disk was full", part.stat().st_size)

    frame = disk.read()  # room again: the part file is resumed, nothing is paid again
    assert len(frame) == paid
    assert disk.charges() == [paid]
    assert disk.temporaries() == []
    assert list((disk.state / "downloads").iterdir()) == []  # delivered: the paid file goes


def test_cache_entry_write_on_a_full_disk_leaves_no_entry_and_keeps_the_paid_file(
    disk: Disk, figures: Any
) -> None:
    outcome = disk.full_disk(10_000, cache=True, when="commit")
    (paid,) = disk.charges()
    entry = disk.entry_dir()
    _says_where_and_how_much(outcome, entry / DATA)
    assert "without paying again" in outcome["message"]
    assert not (entry / DATA).exists()
    assert disk.temporaries() == []
    # Kept on purpose: the paid export file, until its rows are stored.
    (kept,) = (disk.state / "downloads").iterdir()
    assert kept.suffix == ".csv"
    assert kept.stat().st_size > 0
    figures.add("disk full: cases tried")

    frame = disk.cached()
    assert len(frame) == paid
    assert disk.charges() == [paid]
    assert (entry / DATA).exists()
    assert list((disk.state / "downloads").iterdir()) == []


def _entry_bytes(entry: Path) -> dict[str, bytes]:
    return {name: (entry / name).read_bytes() for name in (DATA, MANIFEST)}


def test_delta_refresh_commit_on_a_full_disk_keeps_the_old_entry_and_the_paid_delta(
    disk: Disk, sb: Sandbox, figures: Any
) -> None:
    first = disk.cached()
    entry = disk.entry_dir()
    before = _entry_bytes(entry)
    sb.admin.add_contacts(300)
    manifest = json.loads(before[MANIFEST])
    parent = manifest["history_ids"][-1]
    new = disk.client.history.freshness(parent).new_count
    assert new > 0
    # Room for the delta (its check before paying passes), not for the merged table.
    limit = new * files.ROW_BYTES_ESTIMATE + 1
    assert limit < len(before[DATA]), "the entry must be larger than the room left"

    outcome = disk.full_disk(limit, cache=True, refresh=True)
    _says_where_and_how_much(outcome, entry / DATA)
    assert disk.charges() == [len(first), new]
    assert _entry_bytes(entry) == before  # the old entry, byte for byte
    assert disk.temporaries() == []
    kept = entry / f"_delta-{parent}.csv"  # kept on purpose: the paid delta, not merged yet
    assert kept.is_file()
    figures.add("disk full: cases tried")
    figures.add("disk full: bytes bounded (file-size limit)", limit)

    again = disk.cached(cache="refresh")
    assert len(again) >= len(first)
    assert disk.charges() == [len(first), new]  # merged from the kept file: not paid again
    assert not kept.exists()


@pytest.mark.parametrize("how", ["file-size limit", "free space"])
def test_a_delta_with_no_room_for_it_is_not_bought(
    disk: Disk, sb: Sandbox, figures: Any, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = disk.cached()
    entry = disk.entry_dir()
    before = _entry_bytes(entry)
    sb.admin.add_contacts(300)
    parent = json.loads(before[MANIFEST])["history_ids"][-1]
    if how == "file-size limit":
        outcome = disk.full_disk(500, cache=True, refresh=True)
    else:  # a full disk on this machine: the free space it reports (no root, no tmpfs)
        monkeypatch.setattr(files, "free_space", lambda path: 700)
        with pytest.raises(DiskFullError) as caught:
            disk.cached(cache="refresh")
        exc = caught.value
        outcome = {
            "error": type(exc).__name__,
            "message": str(exc),
            "path": str(exc.path),
            "needed": exc.needed,
        }
        assert exc.free == 700
        monkeypatch.undo()
    _says_where_and_how_much(outcome, entry / f"_delta-{parent}.csv")
    assert "Nothing was paid" in outcome["message"]
    assert disk.charges() == [len(first)]  # the delta was not bought
    assert _entry_bytes(entry) == before
    assert disk.temporaries() == []
    assert not any(p.name.startswith("_delta-") for p in entry.iterdir())
    figures.add("disk full: cases tried")
    figures.add("disk full: deltas not bought for want of room")

    disk.cached(cache="refresh")  # room again: bought once
    assert len(disk.charges()) == 2
