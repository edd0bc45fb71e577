"""Concurrency: threads sharing a client, processes sharing a cache entry, a reader and a refresh.

* **Eight threads, one** :class:`~scoutframe.Client`: exports of four searches, two of them
  read by two threads at once, reads by pages, lookups; every frame has exactly the rows of
  its search (the free pages read of the same filters says which), and each search is paid
  once, whatever thread asked first.
* **Four processes, one cache entry** while contacts change (``concurrency_worker.py``): in
  each round every process refreshes and reads the same entry, while the sandbox adds and
  re-collects contacts (between rounds, and during them); the entry ends up equal to a fresh
  full export (the same place ids, the newest ``collected_at`` of each: the upsert rule),
  each delta is paid once (the ledger: one charge per parent history entry, each one a link
  of the entry's chain), and every frame served is one whole committed version, its history
  chain naming that version.
* **A reader looping over the entry while refreshes commit** (another process, taking no
  lock: ``cache="only"`` and plain pyarrow in turn): every read is one of the committed
  tables, whole (its place ids and ``collected_at``), never a partial file nor an error.
* Two races those found, each forced here: contacts stamped before a delta but published
  after its snapshot (in no delta at all, before the sandbox's fix), and a cached read
  overtaken by another writer's commit (new rows under the old ``history_ids``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from concurrency_worker import fingerprint
from sandboxdata import linked_data_dir

import scoutframe
from scoutframe import Cache
from scoutframe.sandbox import Sandbox
from scoutframe.tables.schema import MaskedEmailWarning

CONTACTS = 5_000
THREADS = 8
WORKER = Path(__file__).parent / "concurrency_worker.py"
PROCESSES = 4
#: The entry the four processes share (about 1,100 rows of 5,000) and the reader's (about
#: 2,800: a longer commit for its reads to overlap).
SHARED: dict[str, Any] = {"countries": ["GB", "FR", "DE"]}
READ_WHILE_COMMITTING: dict[str, Any] = {"countries": ["US", "GB", "FR", "DE", "ES", "IT"]}
#: Searches read by export; the first two are read by two threads at once.
EXPORTS: list[dict[str, Any]] = [
    {"countries": "FR"},
    {"countries": "DE"},
    {"countries": "GB"},
    {"countries": "FR", "category": "Plumber"},
]
PAGES: list[dict[str, Any]] = [{"countries": "ES"}]


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(
        contacts=CONTACTS,
        data_dir=linked_data_dir(tmp_path_factory, "sandbox-concurrency", CONTACTS),
        rate_limit=0,
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


def fresh_full_export(sb: Sandbox, tmp_path: Path, witness: dict[str, Any]) -> pa.Table:
    """What the sandbox holds now for the shared search: a full export by another account."""
    client = make_client(sb, tmp_path / "witness", witness["api_key"])
    try:
        fresh = scoutframe.read_spherescout(
            **SHARED, client=client, method="export", progress=False
        )
    finally:
        client.close()
    return pa.Table.from_pandas(fresh, preserve_index=False)


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


# -- processes sharing one cache entry ------------------------------------------------------


def child_env(scratch: Path) -> dict[str, str]:
    """A child's environment: this one (PYTHONPATH included) without SphereScout settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(("SPHERESCOUT_", "SCOUTFRAME_"))
    }
    scratch.mkdir(parents=True, exist_ok=True)
    env["TMPDIR"] = str(scratch)
    env["SCOUTFRAME_PROGRESS"] = "0"
    return env


def worker_args(
    role: str, sb: Sandbox, key: str, state: Path, cache: Path, **extra: str
) -> list[str]:
    args = [sys.executable, str(WORKER), role, "--url", sb.url, "--key", key]
    args += ["--state", str(state), "--cache", str(cache)]
    for name, value in extra.items():
        args += [f"--{name}", value]
    return args


def delta_charges(sb: Sandbox, account_id: int, since: int = 0) -> list[dict[str, Any]]:
    return [e for e in sb.admin.ledger(account_id)[since:] if e["delta"] < 0]


def fill(client: scoutframe.Client, filters: dict[str, Any], cache: Path) -> pd.DataFrame:
    return scoutframe.read_spherescout(
        **filters, client=client, method="export", cache=True, cache_dir=cache, progress=False
    )


def refresh(client: scoutframe.Client, filters: dict[str, Any], cache: Path) -> pd.DataFrame:
    """Bring the export cache entry of ``filters`` up to date (paying its delta, if any)."""
    return scoutframe.read_spherescout(
        **filters,
        client=client,
        method="export",
        cache="refresh",
        cache_dir=cache,
        max_credits=1_000_000,
        progress=False,
    )


def differences(entry: pa.Table, fresh: pa.Table) -> str:
    """Say how an entry differs from a fresh full export: ids missing, extra, with other times."""
    mine = dict(zip(entry["place_id"].to_pylist(), entry["collected_at"].to_pylist(), strict=True))
    theirs = dict(
        zip(fresh["place_id"].to_pylist(), fresh["collected_at"].to_pylist(), strict=True)
    )
    other = [p for p in mine.keys() & theirs.keys() if mine[p] != theirs[p]]
    return (
        f"{len(theirs.keys() - mine.keys())} place ids missing, {len(mine.keys() - theirs.keys())} "
        f"extra, {len(other)} with another collected_at (entry {len(mine)} rows, fresh export "
        f"{len(theirs)} rows)"
    )


def test_four_processes_refreshing_one_entry_while_contacts_change(
    sb: Sandbox, tmp_path: Path, soak: bool, figures: Any
) -> None:
    rounds, turns = (8, 3) if soak else (3, 2)  # turns: refresh-and-read pairs per round
    owner = sb.admin.create_account(credits=10_000_000)
    witness = sb.admin.create_account(credits=10_000_000)  # takes the fresh full export
    cache = tmp_path / "cache"
    client = make_client(sb, tmp_path / "owner", owner["api_key"])
    try:
        first = fill(client, SHARED, cache)
        entry = Cache(cache).entry(first.attrs["scoutframe"]["cache_entry"])
        opening = len(sb.admin.ledger(owner["id"]))
        logs = [open(tmp_path / f"worker-{n}.err", "w") for n in range(PROCESSES)]  # noqa: SIM115
        workers = [
            subprocess.Popen(
                worker_args(
                    "refresher",
                    sb,
                    owner["api_key"],
                    tmp_path / f"state-{n}",  # each its own state directory, as separate jobs
                    cache,
                    filters=json.dumps(SHARED),
                ),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=logs[n],
                text=True,
                env=child_env(tmp_path / f"tmp-{n}"),
            )
            for n in range(PROCESSES)
        ]
        served: list[dict[str, Any]] = []
        paid_rounds = 0
        try:
            for number in range(rounds):
                sb.admin.add_contacts(40)  # between rounds
                sb.admin.recollect(60)
                manifest = entry.manifest()
                assert manifest is not None
                assert manifest.last_history_id is not None
                due = client.history.freshness(manifest.last_history_id).new_count
                assert due > 0  # the round has something to pay for
                since = len(sb.admin.ledger(owner["id"]))
                for worker in workers:
                    assert worker.stdin is not None
                    worker.stdin.write(f"go {turns}\n")
                    worker.stdin.flush()
                last = number == rounds - 1  # changes only before it: it ends up to date
                if not last:  # and during it
                    for _ in range(3):
                        time.sleep(0.05)
                        sb.admin.add_contacts(10)
                        sb.admin.recollect(15)
                for n, worker in enumerate(workers):
                    assert worker.stdout is not None
                    line = worker.stdout.readline()
                    logs[n].flush()
                    assert line, (tmp_path / f"worker-{n}.err").read_text()[-3000:]
                    served += json.loads(line)
                paid = [-e["delta"] for e in delta_charges(sb, owner["id"], since)]
                assert paid, f"round {number}: {due} contacts changed and no delta was paid"
                assert paid[0] >= due, (number, due, paid)
                if last:  # nothing changed during the round: one delta, paid by one of four
                    assert paid == [due], (due, paid)
                paid_rounds += 1
            for worker in workers:
                assert worker.stdin is not None
                worker.stdin.write("quit\n")
                worker.stdin.flush()
            for n, worker in enumerate(workers):
                worker.communicate(timeout=60)
                assert worker.returncode == 0, (tmp_path / f"worker-{n}.err").read_text()[-3000:]
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.communicate()
            for log in logs:
                log.close()
        manifest = entry.manifest()
        assert manifest is not None
        chain = manifest.history_ids
    finally:
        client.close()

    # Each delta paid once: one charge per parent history entry, each a link of the chain.
    charges = delta_charges(sb, owner["id"], opening)
    refs = Counter(e["ref"] for e in charges)
    assert all(e["reason"] == "delta download" for e in charges), charges
    assert max(refs.values()) == 1, refs  # no delta paid twice
    assert set(refs) == {f"delta of history {parent}" for parent in chain[:-1]}  # none lost
    spent = sum(-e["delta"] for e in charges)
    assert sum(s["spent"] or 0 for s in served) == spent  # the payer said so, nobody else

    # Every frame served is one committed version, whole, and its chain names that version.
    versions: dict[tuple[int, ...], set[str]] = {}
    for s in served:
        assert s["unique"], s
        versions.setdefault(tuple(s["chain"]), set()).add(s["fp"])
    torn = {c: fps for c, fps in versions.items() if len(fps) != 1}
    assert not torn, f"frames served with one history chain but other rows: {torn}"

    # Rows exact: the entry equals a fresh full export (the upsert rule: newest collected_at).
    table = entry.read()[0]
    assert table.column("place_id").to_pylist() == sorted(table.column("place_id").to_pylist())
    fresh_table = fresh_full_export(sb, tmp_path, witness)
    assert fingerprint(table) == fingerprint(fresh_table), differences(table, fresh_table)
    final = [s for s in served if tuple(s["chain"]) == chain]
    assert len(final) >= PROCESSES  # the last round served the final version to everyone
    assert versions[chain] == {fingerprint(fresh_table)}
    figures.add("concurrency: processes sharing one cache entry", PROCESSES)
    figures.add("concurrency: rounds (processes)", rounds)
    figures.add("concurrency: frames served and checked (processes)", len(served))
    figures.add("concurrency: deltas paid (processes)", len(charges))
    figures.add("concurrency: credits charged for deltas (processes)", spent)
    figures.add("concurrency: versions served (processes)", len(versions))


def test_a_reader_process_looping_over_the_entry_while_refreshes_commit(
    sb: Sandbox, tmp_path: Path, soak: bool, figures: Any
) -> None:
    commits = 12 if soak else 5
    owner = sb.admin.create_account(credits=10_000_000)
    cache = tmp_path / "cache"
    stop, ready = tmp_path / "stop", tmp_path / "ready"
    client = make_client(sb, tmp_path / "owner", owner["api_key"])
    try:
        first = fill(client, READ_WHILE_COMMITTING, cache)
        entry = Cache(cache).entry(first.attrs["scoutframe"]["cache_entry"])
        committed = {tuple(first.attrs["scoutframe"]["history_ids"]): fingerprint(entry.read()[0])}
        with open(tmp_path / "reader.err", "w") as log:
            reader = subprocess.Popen(
                worker_args(
                    "reader",
                    sb,
                    owner["api_key"],
                    tmp_path / "reader-state",
                    cache,
                    filters=json.dumps(READ_WHILE_COMMITTING),
                    data=str(Path(entry.location) / "data.parquet"),
                    stop=str(stop),
                    ready=str(ready),
                ),
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=child_env(tmp_path / "reader-tmp"),
            )
            try:
                deadline = time.monotonic() + 60
                while not ready.exists() and reader.poll() is None:
                    assert time.monotonic() < deadline, "the reader did not start reading"
                    time.sleep(0.05)
                for _ in range(commits):
                    sb.admin.add_contacts(30)
                    sb.admin.recollect(60)
                    frame = refresh(client, READ_WHILE_COMMITTING, cache)
                    assert frame.attrs["scoutframe"]["credits_spent"] > 0  # a new table
                    version = fingerprint(pa.Table.from_pandas(frame, preserve_index=False))
                    assert version == fingerprint(entry.read()[0])  # what was committed
                    committed[tuple(frame.attrs["scoutframe"]["history_ids"])] = version
                    time.sleep(0.2)  # the reader reads this version a few times too
                stop.touch()
                out, _ = reader.communicate(timeout=60)
            finally:
                if reader.poll() is None:
                    reader.kill()
                    reader.communicate()
        assert reader.returncode == 0, (tmp_path / "reader.err").read_text()[-3000:]
    finally:
        client.close()
    result = json.loads(out.strip().splitlines()[-1])
    seen: list[dict[str, Any]] = result["seen"]
    assert not result["errors"], result["errors"][:5]
    versions = set(committed.values())
    assert len(versions) == commits + 1
    partial = [s for s in seen if s["fp"] not in versions or not s["unique"]]
    assert not partial, f"{len(partial)} of {len(seen)} reads saw no committed table: {partial[:3]}"
    named = [s for s in seen if s["chain"] is not None]
    wrong = [s for s in named if committed.get(tuple(s["chain"])) != s["fp"]]
    assert not wrong, f"{len(wrong)} frames name a history chain whose rows they do not hold"
    assert {s["mode"] for s in seen} == {"only", "pyarrow"}
    seen_versions = {s["fp"] for s in seen}
    assert len(seen_versions) >= 3, len(seen_versions)  # the reads overlapped the commits
    figures.add("concurrency: reads by the looping reader", len(seen))
    figures.add("concurrency: commits while it read", commits)
    figures.add("concurrency: versions the reader saw", len(seen_versions))


def test_a_delta_taken_while_contacts_are_being_added_loses_none_of_them(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by the four processes' soak: contacts stamped before a delta but published after
    # its snapshot were in no delta. Here the sandbox's publication of a change is held up
    # (the window widened, not made up) while a refresh takes its delta.
    owner = sb.admin.create_account(credits=10_000_000)
    witness = sb.admin.create_account(credits=10_000_000)
    cache = tmp_path / "cache"
    client = make_client(sb, tmp_path / "owner", owner["api_key"])
    try:
        entry = Cache(cache).entry(fill(client, SHARED, cache).attrs["scoutframe"]["cache_entry"])
        sb.admin.recollect(60)  # the next refresh pays a delta
        runtime = sb.runtime
        stamped, release = threading.Event(), threading.Event()
        real = runtime.new_contacts

        def held_up(n: int, now: float) -> pa.Table:  # stamped `now`, not yet published
            stamped.set()
            release.wait(30)
            return real(n, now)

        monkeypatch.setattr(runtime, "new_contacts", held_up)
        changer = threading.Thread(target=sb.admin.add_contacts, args=(40,))
        changer.start()
        assert stamped.wait(30)
        spent: list[int] = []

        def refresh_and_count() -> None:
            frame = refresh(client, SHARED, cache)
            spent.append(frame.attrs["scoutframe"]["credits_spent"])

        refresher = threading.Thread(target=refresh_and_count)
        refresher.start()
        refresher.join(0.5)  # time for the delta to be taken, or to wait for the change
        release.set()
        changer.join(30)
        refresher.join(60)
        monkeypatch.undo()
        assert spent  # the refresh returned
        assert spent[0] > 0  # and paid a delta while the change was in flight
        refresh_and_count()  # and the next one brings what it missed, if anything
        entry_table = entry.read()[0]
    finally:
        client.close()
    fresh_table = fresh_full_export(sb, tmp_path, witness)
    assert fingerprint(entry_table) == fingerprint(fresh_table), differences(
        entry_table, fresh_table
    )


def test_a_cached_read_overtaken_by_a_commit_names_the_rows_it_serves(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cached read looks at the manifest under the entry's lock and reads the table after it:
    # another process may commit in between (the reader loop's window, made certain here).
    from scoutframe.cache.entry import CacheEntry

    owner = sb.admin.create_account(credits=10_000_000)
    cache = tmp_path / "cache"
    client = make_client(sb, tmp_path / "owner", owner["api_key"])
    try:
        entry = Cache(cache).entry(fill(client, SHARED, cache).attrs["scoutframe"]["cache_entry"])
        real = CacheEntry.read
        overtaken: list[tuple[int, ...]] = []

        def read_after_a_commit(self: CacheEntry, columns: Any = None) -> Any:
            if not overtaken:  # the first read of the table: another writer commits first
                overtaken.append(())
                sb.admin.recollect(40)
                other = make_client(sb, tmp_path / "other", owner["api_key"])
                try:
                    newer = refresh(other, SHARED, cache)
                finally:
                    other.close()
                overtaken[0] = tuple(newer.attrs["scoutframe"]["history_ids"])
            return real(self, columns)

        monkeypatch.setattr(CacheEntry, "read", read_after_a_commit)
        for mode in (True, "only"):
            overtaken.clear()
            frame = scoutframe.read_spherescout(
                **SHARED,
                client=client,
                method="export",
                cache=mode,
                cache_dir=cache,
                progress=False,
            )
            chain = tuple(frame.attrs["scoutframe"]["history_ids"])
            assert len(overtaken[0]) >= 2  # the other writer committed a delta
            rows = pa.Table.from_pandas(frame, preserve_index=False)
            assert fingerprint(rows) == fingerprint(real(entry)[0])  # the newer table
            assert chain == overtaken[0], (mode, chain, overtaken[0])  # and says so
    finally:
        client.close()
