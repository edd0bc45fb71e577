"""A damaged cache: a hit never returns wrong rows silently; verify() names it; the way back.

An export entry is filled from the sandbox, then spoilt as disks, editors and crashes spoil
files: ``data.parquet`` truncated at several points, single bits flipped at seeded places
(data pages, dictionary pages, the footer), the manifest deleted, a foreign Parquet file
with other columns put in its place, a stale lock left by a SIGKILLed process. For each:

* a read of the entry (``cache=True``) returns the stored rows exactly, or raises a
  :class:`~scoutframe.errors.CacheError` naming the entry and the way back;
* ``Cache().verify()`` reports the entry as not ok, with the reason;
* the way back it states works, and pays nothing for data still held: the export's link is
  still valid and nothing is new, so removing the entry and reading again downloads the
  same export again for free (the ledger shows one charge).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sandboxdata import linked_data_dir

import scoutframe
from scoutframe.cache.entry import DATA, MANIFEST
from scoutframe.errors import CacheError
from scoutframe.sandbox import Sandbox

CONTACTS = 5_000
FILTERS: dict[str, Any] = {"countries": "FR"}


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(
        contacts=CONTACTS,
        data_dir=linked_data_dir(tmp_path_factory, "sandbox-cache-corruption", CONTACTS),
        rate_limit=0,
    ) as sandbox:
        yield sandbox


class Shelf:
    """An account, a client and a cache with one export entry of :data:`FILTERS`."""

    def __init__(self, sb: Sandbox, tmp: Path) -> None:
        self.sb = sb
        self.tmp = tmp
        self.account = sb.admin.create_account(credits=5_000)
        self.client = scoutframe.Client(
            self.account["api_key"],
            base_url=sb.url,
            allow_http=True,
            state_dir=tmp / "state",
            config_file=tmp / "none.toml",
            max_retries=1,
            backoff_factor=0.01,
            poll_interval=(0.01, 0.05),
        )
        self.cache_dir = tmp / "cache"
        self.original = self.read()
        self.cache = scoutframe.Cache(self.cache_dir)
        (self.key,) = list(self.cache.entries()["key"])
        self.dir = self.cache_dir / self.key

    def read(self, **options: Any) -> pd.DataFrame:
        return scoutframe.read_spherescout(
            **FILTERS,
            method="export",
            client=self.client,
            cache=True,
            cache_dir=self.cache_dir,
            progress=False,
            **options,
        )

    def charges(self) -> list[int]:
        return [-e["delta"] for e in self.sb.admin.ledger(self.account["id"]) if e["delta"] < 0]

    def problem(self) -> str:
        report = self.cache.verify()
        row = report[report["key"] == self.key]
        assert len(row) == 1
        assert not bool(row["ok"].iloc[0])
        return str(row["problem"].iloc[0])

    def way_back(self) -> None:
        """What the error says to do: remove the entry and read again (free: nothing new)."""
        self.cache.remove(self.key)
        again = self.read()
        pd.testing.assert_frame_equal(_plain(again), _plain(self.original))
        assert self.charges() == [len(self.original)]  # still one charge

    def close(self) -> None:
        self.client.close()


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    out = df.reset_index(drop=True)
    out.attrs = {}
    return out


@pytest.fixture
def shelf(sb: Sandbox, tmp_path: Path, figures: Any) -> Iterator[Shelf]:
    made = Shelf(sb, tmp_path)
    try:
        yield made
    finally:
        made.close()


def _hit_is_right_or_refused(shelf: Shelf) -> str:
    """Read the entry: the exact stored rows, or a CacheError. Returns "served" or "refused"."""
    try:
        df = shelf.read()
    except CacheError as exc:
        message = str(exc)
        assert shelf.key[:12] in message or str(shelf.dir) in message, message
        assert "remove" in message.lower(), message
        return "refused"
    pd.testing.assert_frame_equal(_plain(df), _plain(shelf.original))
    return "served"


TRUNCATIONS = [0.0, 0.1, 0.5, 0.9, 0.99]


def test_truncated_data_file(shelf: Shelf, figures: Any) -> None:
    data = shelf.dir / DATA
    whole = data.read_bytes()
    for fraction in TRUNCATIONS:
        data.write_bytes(whole[: int(len(whole) * fraction)])
        assert _hit_is_right_or_refused(shelf) == "refused", fraction
        assert shelf.problem()
        figures.add("cache corruption: truncations tried", 1)
    shelf.way_back()


def test_bit_flips_never_serve_wrong_rows(shelf: Shelf, soak: bool, figures: Any) -> None:
    data = shelf.dir / DATA
    whole = data.read_bytes()
    seeds = range(60 if soak else 12)
    refused = 0
    for seed in seeds:
        rng = random.Random(seed)
        spoilt = bytearray(whole)
        at = rng.randrange(4, len(whole) - 8)  # past the magic "PAR1": inside the file
        spoilt[at] ^= 1 << rng.randrange(8)
        data.write_bytes(bytes(spoilt))
        outcome = _hit_is_right_or_refused(shelf)
        if outcome == "refused":
            refused += 1
            assert shelf.problem()
        figures.add("cache corruption: bit flips tried", 1)
    figures.add("cache corruption: bit flips refused (the rest served the exact rows)", refused)
    shelf.way_back()


def test_missing_manifest_is_rebuilt_from_the_data(shelf: Shelf) -> None:
    (shelf.dir / MANIFEST).unlink()
    assert _hit_is_right_or_refused(shelf) == "served"
    assert json.loads((shelf.dir / MANIFEST).read_text())["rows"] == len(shelf.original)
    report = shelf.cache.verify()
    assert bool(report["ok"].all()), report["problem"].tolist()
    assert shelf.charges() == [len(shelf.original)]


def test_a_foreign_parquet_file_is_never_served(shelf: Shelf) -> None:
    foreign = pa.table({"id": [1, 2, 3], "value": ["a", "b", "c"]})
    pq.write_table(foreign, shelf.dir / DATA)
    assert _hit_is_right_or_refused(shelf) == "refused"
    assert "column" in shelf.problem()
    shelf.way_back()


def test_a_table_with_the_right_columns_but_other_rows_is_never_served(shelf: Shelf) -> None:
    """Another entry's file copied over this one (same schema, other rows): refused."""
    table = pq.read_table(shelf.dir / DATA)
    pq.write_table(table.slice(0, len(table) // 2), shelf.dir / DATA)  # its own metadata gone
    assert _hit_is_right_or_refused(shelf) == "refused"
    assert shelf.problem()
    shelf.way_back()


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from scoutframe.cache.entry import CacheEntry
    from scoutframe.cache.store import Cache
    cache = Cache(sys.argv[1])
    entry = CacheEntry(cache.backend, sys.argv[2])
    with entry.lock():
        print("held", flush=True)
        time.sleep(600)
    """
)


def test_a_stale_lock_of_a_killed_process_does_not_block(shelf: Shelf) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(shelf.cache_dir), shelf.key],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert (shelf.dir / ".lock").exists()  # the file stays; the lock died with its holder
    started = time.monotonic()
    assert _hit_is_right_or_refused(shelf) == "served"
    scoutframe.read_spherescout(  # a refresh takes the lock to write: not blocked either
        **FILTERS,
        method="export",
        client=shelf.client,
        cache="refresh",
        cache_dir=shelf.cache_dir,
        progress=False,
    )
    assert time.monotonic() - started < 30
    assert shelf.charges() == [len(shelf.original)]  # nothing new: the refresh paid nothing
