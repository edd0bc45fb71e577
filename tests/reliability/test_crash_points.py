"""Crashes: processes killed with SIGKILL at seeded points, then run again in fresh processes.

(a) A read by export (``tests/integration/crash_read.py``) killed at a seeded phase and
    ``--at`` (the start answered, the n-th status poll, the n-th piece of the body, the parse,
    the n-th chunk), then the same read again in the test's process (nothing of the killed
    process survives but its files): the export is paid once (a fresh
    funded account per point, so its ledger shows exactly one debit), the re-run returns the
    search's ``totalCount`` rows and pays nothing, and it leaves no file in the state
    directory's ``downloads/`` (no ``.*.part`` either) and nothing in its ``TMPDIR``.

(b) A delta refresh of an export cache entry (``refresh_worker.py``), a Parquet entry or a
    Delta one, on local disk or on S3 (moto's server on loopback), killed at a seeded hook
    (after the freshness answer, after the delta was paid and saved, before and after the
    merge, inside the commit, after the commit before the cleanup, ...), after contacts were
    added and re-collected; then the test's process refreshes again (only the killed one's
    files, objects and lock are left; the S3 re-run waits out its lease). After the kill the
    entry is readable (``Cache.verify()``) and holds the old table or the new one; after the
    re-run it equals a fresh full export taken at the end (place ids, ``collected_at``, review
    counts), the delta was paid exactly once across the kill and the re-run, and no
    ``_delta-*.csv`` nor ``.*.tmp`` file is left.

One sandbox serves the module; each point of (a) has its own account, state and temporary
directories; (b) refreshes the entries of one account in turn, checking its ledger per point.
Only the killed runs are child processes: a re-run in one more interpreter would cost its
imports (~1.3 s of CPU, 35 times a run) and test nothing a re-run here does not.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import refresh_worker  # its refresh is the re-run's too

from scoutframe import Cache, Client, read_spherescout
from scoutframe.cache.entry import CacheEntry
from scoutframe.sandbox import Sandbox

HERE = Path(__file__).parent
CRASH_READ = HERE.parent / "integration" / "crash_read.py"
REFRESH_WORKER = HERE / "refresh_worker.py"
CONTACTS = 5_000
SEED = 20261129
#: Status polls before an export shows ``ready`` (so that ``wait --at 1..3`` is always met).
MIN_POLLS = 3

#: Filters of (a): 230 to 1,260 rows in a 5,000-contact sandbox, CSV bodies of 80 kB to
#: 400 kB (at least 19 pieces of 4 KiB; ``download --at`` stays at or below 12).
READ_FILTERS: list[dict[str, Any]] = [
    {"countries": "FR"},
    {"countries": "DE"},
    {"countries": "ES"},
    {"countries": ["GB", "IT"]},
    {"countries": ["JP", "IN"]},
    {"countries": "US"},
]
#: The cache entries of (b), refreshed in turn.
ENTRY_FILTERS: list[dict[str, Any]] = [
    {"countries": ["US", "GB"]},
    {"countries": ["FR", "DE", "ES"]},
]
REFRESH_HOOKS = (
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


def _points(soak: bool) -> int:
    # ``soak`` is the conftest's fixture: SCOUTFRAME_SOAK is read at import, since the tests
    # themselves run with every SCOUTFRAME_* variable cleared.
    return 50 if soak else 10


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    data_dir = tmp_path_factory.mktemp("crash-sandbox")
    with Sandbox(contacts=CONTACTS, data_dir=data_dir, rate_limit=0) as sb:
        sb.admin.set_export_pacing(min_polls=MIN_POLLS)
        yield sb


def clean_env(scratch: Path) -> dict[str, str]:
    """The environment of a child: no SphereScout settings, its own TMPDIR."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(("SPHERESCOUT_", "SCOUTFRAME_"))
    }
    env["TMPDIR"] = str(scratch)
    env["SCOUTFRAME_PROGRESS"] = "0"
    return env


def debits(sb: Sandbox, account_id: int, since: int = 0) -> list[int]:
    return [int(e["delta"]) for e in sb.admin.ledger(account_id)[since:] if int(e["delta"]) < 0]


# -- (a) a read by export ------------------------------------------------------------------


@dataclass(frozen=True)
class ReadPoint:
    filters: dict[str, Any]
    phase: str
    at: int
    chunksize: int

    def describe(self) -> str:
        chunks = f" chunksize={self.chunksize}" if self.chunksize else ""
        return f"{json.dumps(self.filters)} {self.phase} --at {self.at}{chunks}"


def read_points(n: int) -> list[ReadPoint]:
    """Seeded phases and ``--at`` values, each met for sure by the read it kills."""
    rng = random.Random(SEED)
    phases = ["start", "wait", "download", "parse", "chunk"]
    points = []
    for number in range(n):
        phase = phases[number % len(phases)] if number < len(phases) else rng.choice(phases)
        chunksize = rng.choice([0, 0, 40, 100])
        at = 1
        if phase == "wait":
            at = rng.randint(1, MIN_POLLS)
        elif phase == "download":
            at = rng.randint(1, 12)
        elif phase == "chunk":
            chunksize = rng.choice([40, 100])
            at = rng.randint(1, 2)  # every search here has more than 2 * 100 rows
        points.append(ReadPoint(rng.choice(READ_FILTERS), phase, at, chunksize))
    return points


def run_read(
    sb: Sandbox, key: str, state: Path, scratch: Path, point: ReadPoint, phase: str
) -> subprocess.CompletedProcess[str]:
    args = [
        sys.executable,
        str(CRASH_READ),
        "--url",
        sb.url,
        "--key",
        key,
        "--state",
        str(state),
        "--filters",
        json.dumps(point.filters),
        "--phase",
        phase,
        "--signal",
        "KILL",
        "--at",
        str(point.at),
        "--chunksize",
        str(point.chunksize),
    ]
    return subprocess.run(
        args, capture_output=True, text=True, timeout=120, env=clean_env(scratch), check=False
    )


@contextmanager
def in_scratch(scratch: Path) -> Iterator[None]:
    """Run a re-run with ``scratch`` as its temporary directory, as its killed run had."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(scratch))
        patch.setattr(tempfile, "tempdir", str(scratch))
        yield


def read_again(sb: Sandbox, key: str, state: Path, point: ReadPoint) -> dict[str, Any]:
    """The killed read again, to its end, as ``crash_read.py`` runs it (rows, credits spent)."""
    with Client(
        key,
        sb.url,
        allow_http=True,
        state_dir=state,
        config_file=state.parent / "no-config.toml",
        poll_interval=(0.05, 0.2),
        backoff_factor=0.01,
    ) as client:
        read = {**point.filters, "client": client, "method": "export", "progress": False}
        if point.chunksize:
            rows, meta = 0, {}
            for chunk in read_spherescout(**read, chunksize=point.chunksize):
                rows, meta = rows + len(chunk), chunk.attrs["scoutframe"]
        else:
            frame = read_spherescout(**read)
            rows, meta = len(frame), frame.attrs["scoutframe"]
    return {"rows": rows, "credits_spent": meta.get("credits_spent")}


def test_an_export_read_killed_at_seeded_points_is_paid_once_and_leaves_nothing(
    sandbox: Sandbox, tmp_path: Path, soak: bool, figures: Any
) -> None:
    sb = sandbox
    points = read_points(_points(soak))
    counts: dict[str, int] = {}
    with Client(
        sb.api_key,
        sb.url,
        allow_http=True,
        state_dir=tmp_path / "probe",
        config_file=tmp_path / "no-config.toml",
    ) as probe:
        for point in points:
            key = json.dumps(point.filters, sort_keys=True)
            if key not in counts:
                counts[key] = probe.search(**point.filters).total_count
    problems: list[str] = []
    for number, point in enumerate(points):
        what = f"point {number} ({point.describe()})"
        expected = counts[json.dumps(point.filters, sort_keys=True)]
        account = sb.admin.create_account(credits=1_000_000)
        account_id = int(account["id"])
        home = tmp_path / f"point-{number}"
        state, scratch = home / "state", home / "tmp"
        scratch.mkdir(parents=True)
        crashed = run_read(sb, account["api_key"], state, scratch, point, point.phase)
        if crashed.returncode != -9:
            problems.append(
                f"{what}: not killed (exit {crashed.returncode}): {crashed.stderr[-1500:]}"
            )
            continue
        if debits(sb, account_id) != [-expected]:
            problems.append(
                f"{what}: the killed read paid {debits(sb, account_id)}, not [-{expected}]"
            )
        try:
            with in_scratch(scratch):
                result = read_again(sb, account["api_key"], state, point)
        except Exception as exc:  # every point is checked; the list says why
            problems.append(f"{what}: the re-run failed: {exc!r}")
            continue
        paid = debits(sb, account_id)
        left = (
            sorted(p.name for p in (state / "downloads").glob("*"))
            if (state / "downloads").is_dir()
            else []
        )
        in_tmp = sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*"))
        for failed, message in [
            (
                result["rows"] != expected,
                f"the re-run read {result['rows']} rows, the search counts {expected}",
            ),
            (result["credits_spent"] != 0, f"the re-run says it spent {result['credits_spent']}"),
            (paid != [-expected], f"paid {paid} in all, not once [-{expected}]"),
            (bool(left), f"left in downloads/: {left}"),
            (bool(in_tmp), f"left in TMPDIR: {in_tmp}"),
        ]:
            if failed:
                problems.append(f"{what}: {message}")
    figures.add("crash points: export read", len(points))
    assert not problems, "\n".join(problems)


# -- (b) a delta refresh of a cache entry --------------------------------------------------


@dataclass(frozen=True)
class RefreshPoint:
    entry: int
    hook: str
    added: int
    recollected: int

    def describe(self) -> str:
        return (
            f"entry {self.entry} {json.dumps(ENTRY_FILTERS[self.entry])} hook {self.hook} "
            f"after +{self.added} added, {self.recollected} re-collected"
        )


#: The default run's hooks on the other stores: both sides of the payment and of the commit.
FEW_HOOKS = ("freshness", "delta-saved", "commit-temp", "commit-replaced", "cleaned")


def refresh_points(n: int, hooks: tuple[str, ...] = REFRESH_HOOKS) -> list[RefreshPoint]:
    rng = random.Random(SEED + 1)
    points = []
    for number in range(n):
        hook = hooks[number] if number < len(hooks) else rng.choice(REFRESH_HOOKS)
        added, recollected = rng.choice([(30, 0), (0, 60), (20, 40), (60, 100)])
        points.append(RefreshPoint(number % len(ENTRY_FILTERS), hook, added, recollected))
    return points


def key_columns(table: pa.Table) -> pa.Table:
    """What identifies a version of the table: ids, collection times, review counts."""
    table = table.select(["place_id", "collected_at", "review_count"])
    table = table.cast(
        pa.schema(
            [
                ("place_id", pa.string()),
                ("collected_at", pa.timestamp("us", tz="UTC")),
                ("review_count", pa.int64()),
            ]
        )
    )
    return table.take(pc.sort_indices(table, [("place_id", "ascending")])).combine_chunks()


def run_refresh(
    sb: Sandbox,
    key: str,
    state: Path,
    cache: str,
    scratch: Path,
    filters: dict[str, Any],
    hook: str,
    env: dict[str, str],
) -> subprocess.CompletedProcess[str]:
    args = [
        sys.executable,
        str(REFRESH_WORKER),
        "--url",
        sb.url,
        "--key",
        key,
        "--state",
        str(state),
        "--cache",
        str(cache),
        "--filters",
        json.dumps(filters),
        "--budget",
        "1000000",
        "--hook",
        hook,
    ]
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean_env(scratch), **env},
        check=False,
    )


@pytest.fixture
def where(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, dict[str, Any] | None]:
    """The cache's location and storage options for the refresh points: local or S3."""
    if request.param.startswith("local"):
        return str(tmp_path / "cache"), None
    server = request.getfixturevalue("s3_server")
    return server.uri(f"crash-{tmp_path.name}"), server.storage_options


@pytest.mark.parametrize("where", ["local", "s3", "local-delta", "s3-delta"], indirect=True)
def test_a_delta_refresh_killed_at_seeded_hooks_keeps_the_entry_whole_and_pays_once(
    sandbox: Sandbox,
    tmp_path: Path,
    soak: bool,
    figures: Any,
    where: tuple[str, dict[str, Any] | None],
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sb = sandbox
    cache, options = where
    remote = options is not None
    table_format = "delta" if request.node.callspec.id.endswith("delta") else "parquet"
    # The default run kills the local Parquet refresh at 10 points, the other stores at five
    # (on S3 each re-run also waits out the killed holder's lock lease, 2 s here); the soak
    # runs 50 everywhere.
    few = (remote or table_format == "delta") and not soak
    points = refresh_points(len(FEW_HOOKS), FEW_HOOKS) if few else refresh_points(_points(soak))
    staging = tmp_path / "user-cache"  # where paid deltas wait between download and upload
    monkeypatch.setenv("XDG_CACHE_HOME", str(staging))
    env: dict[str, str] = {"XDG_CACHE_HOME": str(staging)}
    if remote:
        server = request.getfixturevalue("s3_server")
        env.update(server.env(), SCOUTFRAME_CACHE_LEASE="2")
        for name, value in env.items():  # the re-runs here read them as the killed runs do
            monkeypatch.setenv(name, value)
    store = Cache(cache, storage_options=options)
    owner = sb.admin.create_account(credits=10_000_000)
    owner_id = int(owner["id"])
    witness = sb.admin.create_account(credits=10_000_000)  # takes the fresh full exports
    state, scratch = tmp_path / "state", tmp_path / "tmp"
    scratch.mkdir()
    entries: list[CacheEntry] = []
    problems: list[str] = []
    sides: Counter[str] = Counter()  # what a kill left: the old table or the new one
    payers: Counter[str] = Counter()  # who paid the delta
    with (
        Client(
            owner["api_key"],
            sb.url,
            allow_http=True,
            state_dir=state,
            config_file=tmp_path / "no-config.toml",
            backoff_factor=0.01,
            poll_interval=(0.01, 0.05),
        ) as client,
        Client(
            witness["api_key"],
            sb.url,
            allow_http=True,
            state_dir=tmp_path / "witness",
            config_file=tmp_path / "no-config.toml",
            backoff_factor=0.01,
            poll_interval=(0.01, 0.05),
        ) as fresh_client,
    ):

        def fresh_export(filters: dict[str, Any]) -> pa.Table:
            frame = read_spherescout(
                **filters, client=fresh_client, method="export", progress=False
            )
            return key_columns(pa.Table.from_pandas(frame, preserve_index=False))

        for filters in ENTRY_FILTERS:  # fill each entry (a full export), in this process
            frame = read_spherescout(
                **filters,
                client=client,
                method="export",
                cache=True,
                cache_dir=cache,
                storage_options=options,
                cache_format=table_format,
                progress=False,
            )
            entries.append(store.entry(frame.attrs["scoutframe"]["cache_entry"]))
        for number, point in enumerate(points):
            what = f"point {number} ({point.describe()})"
            filters, entry = ENTRY_FILTERS[point.entry], entries[point.entry]
            old = key_columns(entry.read()[0])
            if point.added:
                sb.admin.add_contacts(point.added)
            if point.recollected:
                sb.admin.recollect(point.recollected)
            manifest = entry.manifest()
            assert manifest is not None
            assert manifest.last_history_id is not None
            due = client.history.freshness(manifest.last_history_id).new_count
            since = len(sb.admin.ledger(owner_id))
            crashed = run_refresh(
                sb, owner["api_key"], state, cache, scratch, filters, point.hook, env
            )
            if crashed.returncode != -9:
                problems.append(
                    f"{what}: not killed (exit {crashed.returncode}; {due} due): "
                    f"{crashed.stderr[-1500:]}"
                )
            report = store.verify()
            killed = key_columns(entry.read()[0]) if report["ok"].all() else None
            if killed is None:
                problems.append(
                    f"{what}: after the kill the cache does not verify:\n{report.to_string()}"
                )
            try:
                with in_scratch(scratch):  # S3 credentials from the environment, as the worker's
                    again = refresh_worker.refresh(
                        sb.url, owner["api_key"], str(state), cache, filters, 1_000_000
                    )
                result = refresh_worker.summary(again)
            except Exception as exc:  # every point is checked; the list says why
                result = {"error": repr(exc)}
            new = fresh_export(filters)  # the data have not changed since the kill
            if killed is not None:
                side = "old" if killed.equals(old) else "new" if killed.equals(new) else None
                sides[side or "neither"] += 1
                if side is None:
                    problems.append(
                        f"{what}: after the kill the entry ({killed.num_rows} rows) "
                        f"is neither the old table ({old.num_rows} rows) nor the "
                        f"new one ({new.num_rows} rows)"
                    )
            if "error" in result:
                problems.append(f"{what}: the re-run failed: {result['error']}")
                continue
            payers["re-run" if result["credits_spent"] else "killed run"] += 1
            report = store.verify()
            now = key_columns(entry.read()[0]) if report["ok"].all() else None
            paid = debits(sb, owner_id, since)
            left = sorted(
                name
                for name in entry.backend.names(entry.key)
                if name.startswith("_delta-") or name.endswith(".tmp")
            )
            in_tmp = sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*"))
            staged = sorted(str(p) for p in staging.rglob("*") if p.is_file())
            for failed, message in [
                (bool(staged), f"paid deltas left staged on this machine: {staged}"),
                (now is None, f"after the re-run the cache does not verify:\n{report.to_string()}"),
                (
                    now is not None and not now.equals(new),
                    f"after the re-run the entry ({None if now is None else now.num_rows} rows) "
                    f"differs from a fresh full export ({new.num_rows} rows)",
                ),
                (
                    result["rows"] != new.num_rows,
                    f"the re-run served {result['rows']} rows, a fresh export has {new.num_rows}",
                ),
                (
                    result["credits_spent"] not in (0, due),
                    f"the re-run says it spent {result['credits_spent']}, the delta has {due} rows",
                ),
                (
                    paid != ([-due] if due else []),
                    f"the delta of {due} rows was paid {paid} across the kill and the re-run",
                ),
                (bool(left), f"left in the entry: {left}"),
                (bool(in_tmp), f"left in TMPDIR: {in_tmp}"),
            ]:
                if failed:
                    problems.append(f"{what}: {message}")
    figures.add(f"crash points: delta refresh ({request.node.callspec.id})", len(points))
    assert not problems, "\n".join(problems)
    # The hooks land on both sides of the payment and of the commit.
    assert sides["old"], sides
    assert sides["new"], sides
    assert payers["killed run"], payers
    assert payers["re-run"], payers
