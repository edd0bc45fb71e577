"""Concurrency: threads sharing a client, processes sharing a cache entry, a reader and a refresh.

* **Eight threads, one** :class:`~scoutframe.Client`: exports of four searches, two of them
  read by two threads at once, reads by pages, lookups; every frame has exactly the rows of
  its search (the free pages read of the same filters says which), and each search is paid
  once, whatever thread asked first.
* **Four processes, one cache entry** while contacts change (``refresh_worker.py``): each
  refreshes and reads the same entry in a loop; the entry ends up equal to a fresh export,
  and each delta is paid once (the ledger against the history).
* **A reader looping over the entry while refreshes commit**: every read sees a whole table,
  the old one or the new one, never a partial file.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import scoutframe
from scoutframe.sandbox import Sandbox
from scoutframe.tables.schema import MaskedEmailWarning

CONTACTS = 5_000
THREADS = 8
#: Searches read by export; the first two are read by two threads at once.
EXPORTS: list[dict[str, Any]] = [
    {"countries": "FR"},
    {"countries": "DE"},
    {"countries": "GB"},
    {"countries": "FR", "category": "Plumber"},
]
PAGES: list[dict[str, Any]] = [{"countries": "ES"}]


def sandbox_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh sandbox data directory holding the session's shared dataset (hard links)."""
    from scoutframe.sandbox.dataset import load_or_generate

    base = tmp_path_factory.getbasetemp() / f"reliability-dataset-{CONTACTS}"
    base.mkdir(exist_ok=True)
    load_or_generate(base, contacts=CONTACTS, seed=0)  # generated once per session
    data_dir = tmp_path_factory.mktemp("sandbox-concurrency")
    for source in base.glob("*.parquet"):
        os.link(source, data_dir / source.name)
    return data_dir


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(
        contacts=CONTACTS, data_dir=sandbox_data_dir(tmp_path_factory), rate_limit=0
    ) as sandbox:
        yield sandbox


def make_client(sb: Sandbox, tmp: Path, api_key: str) -> scoutframe.Client:
    return scoutframe.Client(
        api_key,
        base_url=sb.url,
        allow_http=True,
        state_dir=tmp / "state",
        config_file=tmp / "none.toml",
        max_retries=2,
        backoff_factor=0.01,
        poll_interval=(0.01, 0.05),
    )


def place_ids_by_pages(client: scoutframe.Client, filters: dict[str, Any]) -> set[str]:
    """The place ids of a search, read by pages (free): what every read of it must hold."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MaskedEmailWarning)
        df = scoutframe.read_spherescout(**filters, method="pages", client=client, progress=False)
    return set(df["place_id"])


def charges(sb: Sandbox, account_id: int) -> list[int]:
    return [-e["delta"] for e in sb.admin.ledger(account_id) if e["delta"] < 0]


def test_eight_threads_share_one_client(sb: Sandbox, tmp_path: Path, figures: Any) -> None:
    sb.admin.set_export_pacing(min_polls=3, delay_seconds=0)  # the reads overlap for a while
    account = sb.admin.create_account(credits=20_000)
    client = make_client(sb, tmp_path, account["api_key"])
    barrier = threading.Barrier(THREADS)
    jobs: list[tuple[str, dict[str, Any]]] = [("export", f) for f in EXPORTS]
    jobs += [("export", EXPORTS[0]), ("export", EXPORTS[1])]  # the same searches, at once
    jobs += [("pages", PAGES[0]), ("lookups", {})]
    assert len(jobs) == THREADS

    def work(kind: str, filters: dict[str, Any]) -> Any:
        barrier.wait(timeout=30)
        if kind == "lookups":
            return (client.profile().credits, len(client.categories()), len(client.countries()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MaskedEmailWarning)
            return scoutframe.read_spherescout(
                **filters, method=kind, client=client, progress=False
            )

    try:
        with ThreadPoolExecutor(THREADS) as pool:
            futures = [pool.submit(work, kind, filters) for kind, filters in jobs]
            results = [f.result(timeout=240) for f in futures]
    finally:
        sb.admin.set_export_pacing(min_polls=0, delay_seconds=0)

    checker = make_client(sb, tmp_path / "checker", account["api_key"])
    try:
        expected = {
            i: place_ids_by_pages(checker, filters)
            for i, (kind, filters) in enumerate(jobs)
            if kind != "lookups"
        }
    finally:
        checker.close()
    rows = 0
    for i, (kind, _filters) in enumerate(jobs):
        if kind == "lookups":
            continue
        df: pd.DataFrame = results[i]
        assert df["place_id"].is_unique
        assert set(df["place_id"]) == expected[i], (i, kind)
        rows += len(df)
    paid = Counter(charges(sb, account["id"]))
    sizes = Counter(len(expected[i]) for i in range(len(EXPORTS)))
    assert 0 not in sizes  # every export search has contacts (so it is charged)
    assert paid == sizes  # one charge per search, of its size: the twin reads paid nothing
    client.close()
    figures.add("concurrency: threads sharing one client", THREADS)
    figures.add("concurrency: rows checked (threads)", rows)
    figures.add("concurrency: exports paid (threads)", sum(paid.values()))
