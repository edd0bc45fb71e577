"""The Parquet cache over the sandbox, ledger-checked: pay once, then only for what changed."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

import scoutframe
from scoutframe import CacheMissError, Client, ConsentError, read_spherescout
from scoutframe.cache import Cache, CacheEntry
from scoutframe.cache import entry as cache_entry
from scoutframe.cache.backend import LocalBackend
from scoutframe.cache.deltaentry import DeltaCacheEntry
from scoutframe.errors import CacheError, ExportParseError
from scoutframe.models import Provenance
from scoutframe.sandbox import Sandbox
from scoutframe.tables import exportcsv

FILTERS = {"countries": "FR"}
#: The stores the cache's promises are checked on (the ``store`` fixture, tests/integration).
STORES = ["local", "s3", "delta", "s3-delta"]
across_stores = pytest.mark.parametrize("store", STORES, indirect=True)


def by_key(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame in place_id order (a Delta entry keeps the order its MERGE wrote)."""
    return frame.sort_values("place_id").reset_index(drop=True)


def debits(sb: Sandbox, account_id: int) -> list[int]:
    return [int(e["delta"]) for e in sb.admin.ledger(account_id) if int(e["delta"]) < 0]


@pytest.fixture
def acct(sandbox_docs: Sandbox, tmp_path: Path, store: Any) -> Any:
    account = sandbox_docs.admin.create_account(credits=10_000_000)
    client = Client(
        account["api_key"],
        sandbox_docs.url,
        allow_http=True,
        state_dir=tmp_path / "state",
        poll_interval=(0.02, 0.1),
        backoff_factor=0.01,
    )
    yield type(
        "Acct",
        (),
        {
            "client": client,
            "id": int(account["id"]),
            "key": account["api_key"],
            "cache": store.cache if store.remote else Path(store.cache),
            "store": store,
            "open": store.open,
        },
    )
    client.close()


def entry_dir(frame: pd.DataFrame) -> Path:
    """The directory of the local cache entry a frame was served from."""
    meta = frame.attrs["scoutframe"]
    return Path(meta["cache_dir"]) / meta["cache_entry"]


def cached(acct: Any, **kwargs: Any) -> pd.DataFrame:
    options = {
        **FILTERS,
        "client": acct.client,
        "method": "export",
        "cache": True,
        **acct.store.kwargs(),
        "progress": False,
        **kwargs,
    }
    return read_spherescout(**options)


@across_stores
def test_a_hit_spends_nothing_and_returns_the_frame_stored(
    sandbox_docs: Sandbox, acct: Any
) -> None:
    first = cached(acct)
    assert first.attrs["scoutframe"]["credits_spent"] == len(first)
    assert first["place_id"].is_monotonic_increasing
    spent = debits(sandbox_docs, acct.id)
    again = cached(acct)
    assert again.equals(first)
    assert [again[c].dtype for c in again] == [first[c].dtype for c in first]
    meta = again.attrs["scoutframe"]
    assert meta["credits_spent"] == 0
    assert meta["cache_entry"] == first.attrs["scoutframe"]["cache_entry"]
    assert meta["history_ids"] == first.attrs["scoutframe"]["history_ids"] != []
    assert meta["cache_age_seconds"] >= 0
    assert debits(sandbox_docs, acct.id) == spent == [-len(first)]
    narrow = cached(acct, columns=["place_id", "email"], nrows=7)
    assert narrow.equals(first[["place_id", "email"]].head(7))


@pytest.mark.parametrize("backend", ["pyarrow", "numpy_nullable"])
def test_dtypes_and_provenance_round_trip_through_the_cache(acct: Any, backend: str) -> None:
    fresh = cached(acct, dtype_backend=backend)
    hit = cached(acct, dtype_backend=backend)
    assert list(hit.dtypes) == list(fresh.dtypes)
    pd.testing.assert_frame_equal(hit, fresh)
    kept = {
        k: v
        for k, v in fresh.attrs["scoutframe"].items()
        if k not in ("credits_spent", "reason", "cache_age_seconds", "fetched_at")
    }
    assert {k: hit.attrs["scoutframe"][k] for k in kept} == kept


def test_max_age_decides_when_an_entry_is_refreshed(sandbox_docs: Sandbox, acct: Any) -> None:
    first = cached(acct)
    last_id = first.attrs["scoutframe"]["history_ids"][-1]
    for _ in range(10):  # new contacts land in random countries: until some are in the search
        sandbox_docs.admin.add_contacts(50)
        if acct.client.history.freshness(last_id).new_count:
            break
    young = cached(acct, max_age="1h")
    assert young.equals(first)  # young enough: not even asked
    assert young.attrs["scoutframe"]["history_ids"] == first.attrs["scoutframe"]["history_ids"]
    with pytest.raises(ConsentError, match=r"costs .* credits \(the delta\)"):
        cached(acct, method="auto", max_age=0)  # stale, and paying needs a budget
    fresh = acct.client.history.freshness(first.attrs["scoutframe"]["history_ids"][-1]).new_count
    old = cached(acct, max_age=0)
    assert old.attrs["scoutframe"]["credits_spent"] == fresh
    assert len(old) >= len(first)


@across_stores
def test_refresh_with_nothing_new_spends_nothing(sandbox_docs: Sandbox, acct: Any) -> None:
    first = cached(acct)
    before = debits(sandbox_docs, acct.id)
    again = cached(acct, cache="refresh")
    assert again.equals(first)
    assert again.attrs["scoutframe"]["credits_spent"] == 0
    assert "nothing new" in again.attrs["scoutframe"]["reason"]
    assert debits(sandbox_docs, acct.id) == before


@across_stores
def test_a_refresh_pays_exactly_the_delta_and_equals_a_full_export(
    sandbox_docs: Sandbox, acct: Any, tmp_path: Path
) -> None:
    first = cached(acct)
    sandbox_docs.admin.add_contacts(400)
    sandbox_docs.admin.recollect(400)
    new = acct.client.history.freshness(first.attrs["scoutframe"]["history_ids"][-1]).new_count
    assert new > 0
    before = debits(sandbox_docs, acct.id)
    refreshed = cached(acct, cache="refresh")
    assert debits(sandbox_docs, acct.id) == [*before, -new]  # exactly the delta's rows
    assert refreshed.attrs["scoutframe"]["credits_spent"] == new
    assert len(refreshed.attrs["scoutframe"]["history_ids"]) == 2
    if acct.store.format == "parquet":
        assert refreshed["place_id"].is_monotonic_increasing
    with Client(acct.key, sandbox_docs.url, allow_http=True, state_dir=tmp_path / "other") as c:
        full = read_spherescout(**FILTERS, client=c, method="export", progress=False)
    pd.testing.assert_frame_equal(by_key(refreshed), by_key(full))
    hit = cached(acct)
    pd.testing.assert_frame_equal(hit, refreshed)


@pytest.mark.parametrize("stored", ["sorted", "unsorted"])
def test_a_refresh_merges_slice_by_slice_or_whole_and_both_equal_a_full_export(
    sandbox_docs: Sandbox,
    acct: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stored: str,
) -> None:
    monkeypatch.setattr(cache_entry, "ROW_GROUP_ROWS", 128)  # many slices of a small entry
    first = cached(acct)
    data = entry_dir(first) / "data.parquet"
    assert pq.ParquetFile(data).metadata.num_row_groups == -(-len(first) // 128)
    if stored == "unsorted":  # as an older scoutframe might have left it: merged whole
        table = pq.read_table(data)
        pq.write_table(table.take(list(range(table.num_rows))[::-1]), data)
    sandbox_docs.admin.add_contacts(300)
    sandbox_docs.admin.recollect(300)
    calls: list[str] = []
    for name in ("commit", "commit_slices"):
        real = getattr(CacheEntry, name)
        monkeypatch.setattr(
            CacheEntry,
            name,
            lambda self, *a, _n=name, _r=real, **k: (calls.append(_n), _r(self, *a, **k))[1],
        )
    refreshed = cached(acct, cache="refresh")
    # a whole merge commits the table, which is written by the one slice writer
    assert calls == (["commit_slices"] if stored == "sorted" else ["commit", "commit_slices"])
    with Client(acct.key, sandbox_docs.url, allow_http=True, state_dir=tmp_path / "other") as c:
        full = read_spherescout(**FILTERS, client=c, method="export", progress=False)
    pd.testing.assert_frame_equal(refreshed.reset_index(drop=True), full.reset_index(drop=True))
    pd.testing.assert_frame_equal(cached(acct), refreshed)
    assert refreshed.attrs["scoutframe"]["total_count"] == len(full)
    assert Cache(acct.cache).verify()["ok"].all()  # sorted, unique, rows as the manifest says
    assert (
        max(
            pq.ParquetFile(data).metadata.row_group(i).num_rows
            for i in range(pq.ParquetFile(data).metadata.num_row_groups)
        )
        <= 128
    )


def test_a_streamed_commit_that_fails_changes_nothing(acct: Any) -> None:
    first = cached(acct)
    entry = CacheEntry(LocalBackend(acct.cache), first.attrs["scoutframe"]["cache_entry"])
    data = entry_dir(first) / "data.parquet"
    manifest, before = entry.manifest(), data.read_bytes()
    assert manifest is not None
    table, provenance = entry.read()
    with pytest.raises(CacheError, match=r"were merged where .* expected; nothing changed"):
        entry.commit_slices(
            [table],
            table.schema,
            replace(manifest, rows=len(table) + 1),
            provenance or Provenance(),
        )
    wrong = table.drop_columns(["name"])  # the writer thread refuses it: reported, not lost
    with pytest.raises(CacheError, match="could not be written"):
        entry.commit_slices(
            [table.slice(0, 5), wrong, table], table.schema, manifest, provenance or Provenance()
        )
    assert data.read_bytes() == before
    assert entry.manifest() == manifest
    assert entry.leftovers() == []
    assert not [t for t in threading.enumerate() if t.name == "scoutframe-cache-writer"]


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        ("reversed", "rows are not in place_id order"),
        ("repeated", "place_id values are missing or repeated"),
    ],
)
def test_verify_names_an_entry_out_of_order_or_with_repeated_keys(
    acct: Any, damage: str, problem: str
) -> None:
    first = cached(acct)
    data = entry_dir(first) / "data.parquet"
    assert Cache(acct.cache).verify()["ok"].all()
    table = pq.read_table(data)  # the schema metadata (the manifest) is kept
    rows = list(range(table.num_rows))
    pq.write_table(table.take(rows[::-1] if damage == "reversed" else [0, *rows[:-1]]), data)
    report = Cache(acct.cache).verify()
    assert not report["ok"].any()
    assert problem in report["problem"].iloc[0]


def test_only_reads_with_the_sandbox_stopped(tmp_path: Path) -> None:
    sb = Sandbox(contacts=5_000, data_dir=tmp_path / "sb", rate_limit=0)
    sb.start()
    try:
        client = Client(sb.api_key, sb.url, allow_http=True, state_dir=tmp_path / "state")
        kwargs = {"client": client, "cache_dir": tmp_path / "cache", "progress": False}
        with pytest.warns(scoutframe.MaskedEmailWarning):
            first = read_spherescout(countries="FR", category="Plumber", cache=True, **kwargs)
    finally:
        sb.stop()
    with pytest.warns(scoutframe.MaskedEmailWarning):  # same names, resolved offline by alias
        offline = read_spherescout(countries="FR", category="Plumber", cache="only", **kwargs)
    pd.testing.assert_frame_equal(offline, first)
    assert offline.attrs["scoutframe"]["emails_masked"] is True
    with pytest.raises(CacheMissError, match="cache='only' never reads from the network"):
        read_spherescout(countries="BE", cache="only", **kwargs)
    client.close()


def test_pages_and_export_entries_are_apart(sandbox_docs: Sandbox, acct: Any) -> None:
    with pytest.warns(scoutframe.MaskedEmailWarning):
        pages = cached(acct, method="pages")
    exported = cached(acct)
    assert pages.attrs["scoutframe"]["cache_entry"] != exported.attrs["scoutframe"]["cache_entry"]
    assert set(pages["place_id"]) == set(exported["place_id"])
    assert debits(sandbox_docs, acct.id) == [-len(exported)]  # the pages entry was free
    entries = Cache(acct.cache).entries()
    assert sorted(entries["method"]) == ["export", "pages"]
    assert (entries["rows"] == len(exported)).all()


def test_the_entry_is_plain_parquet_private_and_holds_no_credential(acct: Any) -> None:
    frame = cached(acct)
    directory = entry_dir(frame)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = [p for p in directory.iterdir() if p.is_file()]
    assert {p.name for p in files} == {"data.parquet", "_manifest.json", ".lock"}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
        assert acct.key not in path.read_bytes().decode("latin-1")
    # Readers pointed at the directory see exactly the table.
    assert pads.dataset(directory, format="parquet").to_table().num_rows == len(frame)
    import polars as pl

    assert pl.scan_parquet(directory / "*.parquet").collect().height == len(frame)
    stored = pq.read_table(directory / "data.parquet")
    assert stored.column("place_id").to_pylist() == frame["place_id"].tolist()
    manifest = json.loads((directory / "_manifest.json").read_text())
    assert manifest["rows"] == len(frame)
    assert manifest["account"] == str(acct.id)


@across_stores
def test_a_delta_paid_but_not_merged_is_not_paid_again(
    sandbox_docs: Sandbox, acct: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = cached(acct)
    sandbox_docs.admin.add_contacts(60)
    new = acct.client.history.freshness(first.attrs["scoutframe"]["history_ids"][-1]).new_count
    before = debits(sandbox_docs, acct.id)

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt  # after the delta was paid and saved, before the merge lands

    with monkeypatch.context() as patched:
        for commit in ("commit", "commit_slices"):  # whole, or slice by slice
            patched.setattr(CacheEntry, commit, crash)
        patched.setattr(DeltaCacheEntry, "merge", crash)  # a Delta entry's MERGE
        with pytest.raises(KeyboardInterrupt):
            cached(acct, cache="refresh")
        entry = acct.open().entry(first.attrs["scoutframe"]["cache_entry"])
        assert entry.pending_parents()  # the paid delta waits in the entry (in the store)
        assert cached(acct, method="auto").equals(first)  # still the old entry, readable
    refreshed = cached(acct, cache="refresh")
    assert debits(sandbox_docs, acct.id) == [*before, -new]  # paid once
    assert len(refreshed) >= len(first)
    assert entry.pending_parents() == []


def test_the_accessor_refreshes_cached_and_uncached_frames(
    sandbox_docs: Sandbox, acct: Any, tmp_path: Path
) -> None:
    frame = cached(acct)
    plain = read_spherescout(**FILTERS, client=acct.client, method="export", progress=False)
    assert plain.spherescout.cache_entry is None
    assert frame.spherescout.cache_entry == frame.attrs["scoutframe"]["cache_entry"]
    assert entry_dir(frame).is_dir()  # the key names the entry in the cache the read named
    assert frame.spherescout.cache_location == str(entry_dir(frame))
    assert pads.dataset(frame.spherescout.cache_location).count_rows() == len(frame)
    assert plain.spherescout.cache_location is None
    assert frame.spherescout.filters == scoutframe.Filters(countries="FR")
    assert frame.spherescout.freshness(client=acct.client).is_fresh
    sandbox_docs.admin.add_contacts(80)
    sandbox_docs.admin.recollect(40)
    new = frame.spherescout.freshness(client=acct.client).new_count
    before = debits(sandbox_docs, acct.id)
    via_cache = frame.spherescout.refresh(client=acct.client, max_credits=new)
    via_delta = plain.spherescout.refresh(client=acct.client, max_credits=new)
    assert debits(sandbox_docs, acct.id) == [*before, -new, -new]
    pd.testing.assert_frame_equal(
        via_cache.reset_index(drop=True), via_delta.reset_index(drop=True), check_like=False
    )
    with pytest.raises(scoutframe.ArgumentError, match="did not come from read_spherescout"):
        pd.DataFrame({"place_id": ["x"]}).spherescout.refresh()


def test_an_uncached_refresh_keeps_the_paid_delta_until_it_is_merged(
    sandbox_docs: Sandbox, acct: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The API serves a delta once: a refresh that fails after paying must not pay again.
    plain = read_spherescout(**FILTERS, client=acct.client, method="export", progress=False)
    sandbox_docs.admin.add_contacts(60)
    sandbox_docs.admin.recollect(30)
    new = plain.spherescout.freshness(client=acct.client).new_count
    before = debits(sandbox_docs, acct.id)
    real = exportcsv.read_csv

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise pa.ArrowInvalid("CSV parse error: a hiccup while reading")

    monkeypatch.setattr(exportcsv, "read_csv", broken)
    with pytest.raises(ExportParseError, match="kept at") as caught:
        plain.spherescout.refresh(client=acct.client, max_credits=new)
    kept = caught.value.path
    assert kept.is_file()
    assert debits(sandbox_docs, acct.id) == [*before, -new]
    monkeypatch.setattr(exportcsv, "read_csv", real)
    refreshed = plain.spherescout.refresh(client=acct.client, max_credits=new)
    assert debits(sandbox_docs, acct.id) == [*before, -new]  # paid once
    assert not kept.exists()  # merged: the paid file went
    meta = refreshed.attrs["scoutframe"]
    assert meta["credits_spent"] == 0  # this call paid nothing: the first one did
    assert len(meta["history_ids"]) == len(plain.attrs["scoutframe"]["history_ids"]) + 1
    full = read_spherescout(**FILTERS, client=acct.client, method="export", progress=False)
    assert sorted(refreshed["place_id"]) == sorted(full["place_id"])


@across_stores
def test_two_processes_refreshing_one_entry_pay_the_delta_once(
    sandbox_docs: Sandbox, acct: Any, tmp_path: Path
) -> None:
    first = cached(acct)
    sandbox_docs.admin.add_contacts(120)
    new = acct.client.history.freshness(first.attrs["scoutframe"]["history_ids"][-1]).new_count
    before = debits(sandbox_docs, acct.id)
    # A child reaches the store as a shell user would: credentials in the environment.
    where = {k: v for k, v in acct.store.kwargs().items() if k != "storage_options"}
    script = textwrap.dedent(f"""
        import json, sys
        from scoutframe import Client, read_spherescout
        with Client({acct.key!r}, {sandbox_docs.url!r}, allow_http=True,
                    state_dir=sys.argv[1], poll_interval=(0.02, 0.1)) as client:
            df = read_spherescout(countries="FR", client=client, method="export",
                                  cache="refresh", progress=False, **{where!r})
        print(json.dumps([len(df), df.attrs["scoutframe"]["credits_spent"]]))
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPHERESCOUT_", "SCOUTFRAME_"))}
    env.update(acct.store.env)
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / f"s{n}")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in range(2)
    ]
    finished = [(run, *run.communicate(timeout=120)) for run in runs]  # both, then judge
    results = []
    for run, out, err in finished:
        assert run.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(spent for _, spent in results) == [0, new]  # one paid, the other found it fresh
    assert results[0][0] == results[1][0]
    assert debits(sandbox_docs, acct.id) == [*before, -new]
    report = acct.open().verify()
    assert report["ok"].all(), report["problem"].tolist()


@across_stores
def test_a_reader_looping_while_refreshes_commit_never_sees_a_partial_table(
    sandbox_docs: Sandbox, acct: Any
) -> None:
    import hashlib

    def fingerprint(table: pa.Table) -> str:
        ids = table.column("place_id").to_pylist()
        times = [str(t) for t in table.column("collected_at").to_pylist()]
        return hashlib.sha256("\n".join(ids + times).encode()).hexdigest()

    first = cached(acct)
    key = first.attrs["scoutframe"]["cache_entry"]
    entry = acct.open().entry(key)
    committed = {fingerprint(entry.read()[0])}
    seen: list[str] = []
    problems: list[str] = []
    done = threading.Event()

    def read_in_a_loop() -> None:
        reader = acct.open().entry(key)  # its own cache object, as another process has
        while not done.is_set():
            try:
                table, provenance = reader.read()
            except Exception as exc:  # any failure to read is a failure of the promise
                problems.append(f"{type(exc).__name__}: {exc}")
                continue
            ids = table.column("place_id")
            if provenance is None or provenance.total_count != table.num_rows:
                problems.append(f"{table.num_rows} rows, the table's own metadata says otherwise")
            if len(ids.unique()) != len(ids):
                problems.append("repeated place ids")
            seen.append(fingerprint(table))

    reader = threading.Thread(target=read_in_a_loop)
    reader.start()
    try:
        for _ in range(4):
            sandbox_docs.admin.add_contacts(20)
            sandbox_docs.admin.recollect(20)
            cached(acct, cache="refresh")
            committed.add(fingerprint(entry.read()[0]))
    finally:
        done.set()
        reader.join(timeout=60)
    assert not problems, problems[:5]
    assert len(seen) >= 4
    assert set(seen) <= committed  # every read was one committed table, whole
    assert len(set(seen)) >= 2  # and the reads overlapped the commits
