"""Sustained faults: many loads against a sandbox where a quarter of the requests go wrong.

Each round is a fresh funded account and a client of its own (small backoffs; one round in
two meets more 429s and refuses to wait their ``Retry-After``, so a 429 surfaces as
:class:`RateLimitError`), sharing
the module's ``state_dir`` and ``cache_dir``. A round draws its loads from a fixed seed: pages
and exports (and ``method="auto"`` with a budget), chunked and not, cached (``cache=True`` or
``"refresh"``) and not, various filters, ``nrows``, ``columns`` and dtype backends.

For every load the fault-free result comes first: the same call (without the cache) by a
reference account of the same sandbox with every fault switched off. Then the load runs with
the faults on (500/502/503, 429 with ``Retry-After``, connections reset in the middle of an
answer, truncated downloads, exports ending ``failed``; a fixed seed per load) and must either
return a frame equal to the reference (data columns, attrs ignored) or raise a documented
:class:`~scoutframe.ScoutError`. A load that raised is run again (twice more with the faults
on, then once with them off): it must then return the reference frame, and it must not pay a
second time for an export an earlier attempt paid for (the library keeps paid exports and
resumes or adopts them).

Credits are checked against the sandbox's ledger: every export charged once (one debit per
task, of the search's size), every export the server failed refunded, at most one export
kept (charged and not refunded) per load and its re-runs, nothing charged by pages or by a
cache hit, the credits a frame says it spent are the ones the ledger shows in its attempt,
and at the end of a round the paid exports in the history match the ledger exactly.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import traceback
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from scoutframe import Client, MaskedEmailWarning, PageDriftWarning, ScoutError, read_spherescout
from scoutframe.sandbox import Sandbox

CONTACTS = 10_000
#: Fault mixes while a load runs, one per round in turn (with the client's Retry-After cap).
#: "mixed" (the client waits a Retry-After up to 60 s): API requests 18 % answered
#: 500/502/503/429 before they reach the app, then 10 % of the rest reset in the middle of
#: their body (after the app ran: a charging call took effect), about 26 % in all.
#: "rate-limited" (the client waits at most 0.5 s, so each 429 surfaces as RateLimitError):
#: 21 % answered 500/502/503/429, 10 % of them 429, then 8 % of the rest reset, about 27 %.
#: Downloads in both: 10 % reset, then 30 % of the rest truncated, about 37 %; and 12 % of the
#: exports end ``failed`` (refunded).
PROFILES: dict[str, tuple[dict[str, float], float]] = {
    "mixed": (
        {
            "p500": 0.07,
            "p502": 0.02,
            "p503": 0.07,
            "p429": 0.02,
            "reset": 0.10,
            "truncate": 0.30,
            "export_fail": 0.12,
        },
        60.0,
    ),
    "rate-limited": (
        {
            "p500": 0.05,
            "p502": 0.01,
            "p503": 0.05,
            "p429": 0.10,
            "reset": 0.08,
            "truncate": 0.30,
            "export_fail": 0.12,
        },
        0.5,
    ),
}
#: A storm of 429s (and some 5xx, resets, truncations) met by a client that waits at most
#: 0.5 s: about 38 % of the API requests fail. Used on reads that resume a paid export.
STORM: dict[str, float] = {
    "p500": 0.05,
    "p503": 0.05,
    "p429": 0.25,
    "reset": 0.05,
    "truncate": 0.30,
}
NO_FAULTS: dict[str, float] = {name: 0.0 for name in PROFILES["mixed"][0]}
RESUME_CASES = 8
SOAK_RESUME_CASES = 24
DEFAULT_ROUNDS = 8
SOAK_ROUNDS = 48
LOADS_PER_ROUND = 9
RERUNS_WITH_FAULTS = 2
BASE_SEED = 20261129

#: Filters a round draws from: (filters, pages allowed). Sizes in a 10,000-contact sandbox:
#: from ~10 to ~2,400 rows; the big ones are read by export only (pages are 50 rows each).
FILTER_POOL: list[tuple[dict[str, Any], bool]] = [
    ({"countries": "FR"}, True),
    ({"countries": "DE"}, True),
    ({"countries": "GB"}, True),
    ({"countries": ["IT", "ES"]}, True),
    ({"countries": "JP"}, True),
    ({"countries": "NL,BE"}, True),
    ({"countries": "PL"}, True),
    ({"countries": "CH", "email": True}, True),
    ({"countries": ["FR", "DE"], "category": "Plumber"}, True),
    ({"category": "Plumber"}, True),
    ({"countries": "BR", "website": True}, True),
    ({"countries": "US"}, False),
    ({"countries": ["US", "CA"], "phone_number": True}, False),
]
#: ``cache=`` of a load: half of them use the cache (fill, hit, or refresh now).
CACHE_MODES: list[bool | str] = [False, False, False, True, True, "refresh"]
SOME_COLUMNS = ["place_id", "name", "email", "phone", "zipcode", "collected_at"]

# -- the sandbox and its fault counter -------------------------------------------------------


class FaultCounter:
    """Count the faults the sandbox injects, where it decides them.

    The sandbox keeps no count of its faults, and a ``requests`` response hook on the client's
    session would miss most of them: urllib3 retries a 5xx or a 429 inside the adapter, so a
    hook sees only the last answer of each request, and a connection reset or a truncated
    download never shows up as an error status at all. So the draws of the sandbox's own
    injector (``sb.runtime.faults``, reachable in thread mode) are wrapped on the instance:
    ``http_status()`` is drawn once per ``/api/`` request (which also counts them) and
    returns the injected 500/502/503/429; ``should_reset()`` is drawn for every API answer
    that got no injected status and for every download; ``should_truncate()`` for a download
    that was not reset. Exports failed on purpose are counted from the ledgers' refunds (the
    export worker holds its draw since the sandbox started). Only the requests made while the
    faults are on are counted (``active``): the reference reads are not.
    """

    def __init__(self, sb: Sandbox) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.active = False
        injector = sb.runtime.faults
        status, reset, truncate = (
            injector.http_status,
            injector.should_reset,
            injector.should_truncate,
        )

        def http_status() -> int | None:
            answer = status()
            self._add("api requests", f"status {answer}" if answer is not None else None)
            return answer

        def should_reset() -> bool:
            answer = reset()
            self._add("reset draws", "reset" if answer else None)
            return answer

        def should_truncate() -> bool:
            answer = truncate()
            self._add("truncate draws", "truncate" if answer else None)
            return answer

        injector.http_status = http_status  # type: ignore[method-assign]
        injector.should_reset = should_reset  # type: ignore[method-assign]
        injector.should_truncate = should_truncate  # type: ignore[method-assign]

    def _add(self, draw: str, fault: str | None) -> None:
        with self.lock:
            if not self.active:
                return
            self.counts[draw] += 1
            if fault is not None:
                self.counts[fault] += 1

    def snapshot(self) -> Counter[str]:
        with self.lock:
            return Counter(self.counts)

    @staticmethod
    def faults(counts: Counter[str]) -> int:
        """Requests hit by a fault (injected status, reset, truncated download)."""
        return (
            sum(n for name, n in counts.items() if name.startswith("status "))
            + counts["reset"]
            + counts["truncate"]
        )

    @staticmethod
    def requests(counts: Counter[str]) -> int:
        """Requests that drew faults: every API request, every download."""
        statuses = sum(n for name, n in counts.items() if name.startswith("status "))
        api_resets = counts["api requests"] - statuses  # the API answers that drew a reset
        downloads = counts["reset draws"] - api_resets
        return counts["api requests"] + downloads


class RecoveryLog(logging.Handler):
    """Count the library's own notes on charging calls that lost their answer (INFO lines of
    ``scoutframe.api.billing`` and ``scoutframe.api.endpoints.exports``): what the loads recovered
    from, as opposed to what they merely retried."""

    NOTES = {
        "refused with 429; sent again": "sustained: charging calls refused with 429, sent again",
        "lost its answer; adopted": "sustained: charging answers lost, charge found and adopted",
        "sending it once more": "sustained: charging calls failed unapplied, sent once more",
        "that an interrupted start made": "sustained: interrupted starts adopted by a re-run",
    }

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.counts.update(name for note, name in self.NOTES.items() if note in message)


@dataclass
class Bench:
    """The module's sandbox, its shared directories, the reference client and the tallies."""

    sb: Sandbox
    counter: FaultCounter
    state_dir: Path
    cache_dir: Path
    reference: Client
    references: dict[str, tuple[pd.DataFrame, int]] = field(default_factory=dict)
    injected: Counter[str] = field(default_factory=Counter)  # the fault draws of the rounds
    notes: RecoveryLog = field(default_factory=RecoveryLog)
    faults_on: bool = False
    profile: dict[str, float] = field(default_factory=dict)

    def faults(self, seed: int | None) -> None:
        """Switch the faults of the round's profile on with ``seed``, or off (``None``)."""
        if seed is None:
            self.sb.admin.set_faults(**NO_FAULTS)
        else:
            self.sb.admin.set_faults(**self.profile, seed=seed)
        self.faults_on = self.counter.active = seed is not None


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    root = tmp_path_factory.mktemp("sustained")
    with Sandbox(contacts=CONTACTS, data_dir=root / "sandbox", rate_limit=0) as sb:
        counter = FaultCounter(sb)
        account = sb.admin.create_account(credits=10**9)
        with Client(
            account["api_key"],
            sb.url,
            allow_http=True,
            state_dir=root / "ref-state",
            config_file=root / "no-config.toml",
            backoff_factor=0.01,
            poll_interval=(0.01, 0.05),
        ) as reference:
            bench = Bench(sb, counter, root / "state", root / "cache", reference)
            library = logging.getLogger("scoutframe")
            level = library.level
            library.setLevel(logging.INFO)
            library.addHandler(bench.notes)
            try:
                yield bench
            finally:
                library.removeHandler(bench.notes)
                library.setLevel(level)
                sb.admin.set_faults(**NO_FAULTS)


# -- loads ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """One call of ``read_spherescout``."""

    filters: dict[str, Any]
    method: str
    chunksize: int | None = None
    nrows: int | None = None
    columns: tuple[str, ...] | None = None
    cache: bool | str = False
    dtype_backend: str = "pyarrow"
    budget: int | None = None

    def describe(self) -> str:
        parts = [json.dumps(self.filters, sort_keys=True), self.method]
        for name in ("chunksize", "nrows", "columns", "cache", "budget"):
            value = getattr(self, name)
            if value not in (None, False):
                parts.append(f"{name}={value}")
        if self.dtype_backend != "pyarrow":
            parts.append(self.dtype_backend)
        return " ".join(parts)

    def reference_key(self) -> str:
        """The same call without the cache (its fault-free result does not depend on it)."""
        return json.dumps(
            [
                self.filters,
                self.method,
                self.chunksize,
                self.nrows,
                self.columns,
                self.dtype_backend,
                self.budget,
            ],
            sort_keys=True,
        )

    @property
    def may_spend(self) -> bool:
        return self.method != "pages"


def draw_loads(rng: random.Random, n: int) -> list[Load]:
    """The loads of one round. Filters repeat within a round, so the same account meets its
    own cache entries and its delivered exports again."""
    pool = rng.sample(FILTER_POOL, 4)
    loads = []
    for _ in range(n):
        filters, pages_ok = rng.choice(pool)
        roll = rng.random()
        method = "pages" if pages_ok and roll < 0.35 else "auto" if roll < 0.47 else "export"
        cache = rng.choice(CACHE_MODES)
        if method == "auto":
            cache = False  # a cached "auto" read prefers an export entry: not the same call
        loads.append(
            Load(
                filters=filters,
                method=method,
                chunksize=rng.choice([None, None, 97, 250, 1_000]),
                nrows=rng.choice([None, None, None, 1, 50, 333]),
                columns=tuple(SOME_COLUMNS) if rng.random() < 0.2 else None,
                cache=cache,
                dtype_backend="numpy_nullable" if rng.random() < 0.2 else "pyarrow",
                budget=10**6 if method == "auto" or rng.random() < 0.2 else None,
            )
        )
    return loads


def read(load: Load, client: Client, cache_dir: Path | None) -> tuple[pd.DataFrame, int, str]:
    """Run ``load``; return the frame (chunks concatenated), the credits it says it spent and
    the reason its provenance gives."""
    kwargs: dict[str, Any] = {
        **load.filters,
        "client": client,
        "method": load.method,
        "nrows": load.nrows,
        "columns": list(load.columns) if load.columns else None,
        "dtype_backend": load.dtype_backend,
        "max_credits": load.budget,
        "progress": False,
    }
    if load.cache is not False and cache_dir is not None:
        kwargs.update(cache=load.cache, cache_dir=cache_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MaskedEmailWarning)
        warnings.simplefilter("ignore", PageDriftWarning)
        if load.chunksize is None:
            frame = read_spherescout(**kwargs)
            meta = frame.attrs["scoutframe"]
            return frame, int(meta["credits_spent"]), str(meta["reason"])
        chunks = list(read_spherescout(**kwargs, chunksize=load.chunksize))
    assert chunks, "a chunked read yields at least one chunk"
    assert all(len(c) <= load.chunksize for c in chunks)
    meta = chunks[-1].attrs["scoutframe"]
    return pd.concat(chunks, ignore_index=True), int(meta["credits_spent"]), str(meta["reason"])


def same_data(got: pd.DataFrame, expected: pd.DataFrame) -> str | None:
    """``None`` when the frames hold the same data, else what differs."""
    left, right = got.reset_index(drop=True), expected.reset_index(drop=True)
    left.attrs, right.attrs = {}, {}
    try:
        pd.testing.assert_frame_equal(left, right, check_dtype=True, check_exact=True)
    except AssertionError as exc:
        return str(exc)[:1500]
    return None


def reference_of(bench: Bench, load: Load) -> tuple[pd.DataFrame, int]:
    """The fault-free result of ``load`` (the same call, no cache, faults off) and the size of
    its search (what an export of it costs). The data never change in this module, so one
    reference serves every load of the same call."""
    key = load.reference_key()
    if key not in bench.references:
        assert not bench.faults_on
        frame, _, _ = read(load, bench.reference, None)
        size = bench.reference.search(**load.filters).total_count
        bench.references[key] = (frame, size)
    return bench.references[key]


# -- credits -------------------------------------------------------------------------------


@dataclass
class Attempt:
    """One run of a load: the ledger entries it added, its outcome."""

    begin: int
    end: int
    error: str | None = None
    spent: int | None = None
    reason: str = ""


@dataclass
class LoadRecord:
    load: Load
    size: int
    attempts: list[Attempt] = field(default_factory=list)
    entry_existed: bool = False
    outcome: str = ""


def check_credits(ledger: list[dict[str, Any]], records: list[LoadRecord]) -> list[str]:
    """What the account's ledger says against what the loads of the round did."""
    problems: list[str] = []
    refunded = Counter(
        e["ref"] for e in ledger if e["delta"] > 0 and str(e["reason"]).startswith("refund")
    )
    debits = [e for e in ledger if e["delta"] < 0]
    charged = Counter(e["ref"] for e in debits)
    for ref, n in charged.items():
        if n > 1:
            problems.append(f"task {ref} charged {n} times")
    for ref, n in refunded.items():
        if n > 1 or ref not in charged:
            problems.append(f"task {ref} refunded {n} times, charged {charged[ref]} times")
    for number, record in enumerate(records):
        what = f"load {number} ({record.load.describe()})"
        window = ledger[record.attempts[0].begin : record.attempts[-1].end]
        if not record.load.may_spend or record.entry_existed:
            if window:
                problems.append(f"{what}: needs no credits but the ledger moved: {window}")
            continue
        kept = []  # charged and not refunded, per attempt
        for attempt in record.attempts:
            mine = [e for e in ledger[attempt.begin : attempt.end] if e["delta"] < 0]
            for entry in mine:
                if -entry["delta"] != record.size:
                    problems.append(f"{what}: charged {-entry['delta']} for {record.size} rows")
            kept.append([e for e in mine if e["ref"] not in refunded])
            if attempt.spent is not None:
                paid_here = sum(-e["delta"] for e in kept[-1])
                if attempt.spent != paid_here:
                    problems.append(
                        f"{what}: the frame says {attempt.spent} credits spent, the "
                        f"ledger shows {paid_here} kept in that attempt"
                    )
        total_kept = sum(len(k) for k in kept)
        if total_kept > 1:
            problems.append(
                f"{what}: {total_kept} exports paid and kept for one load (per "
                f"attempt: {[[e['ref'] for e in k] for k in kept]}; errors: "
                f"{[a.error for a in record.attempts]})"
            )
    return problems


def check_history(client: Client, ledger: list[dict[str, Any]]) -> list[str]:
    """The account's export history and its ledger agree: the paid exports, the refunds."""
    refunded = {e["ref"] for e in ledger if e["delta"] > 0 and e["ref"]}
    kept = sum(-e["delta"] for e in ledger if e["delta"] < 0 and e["ref"] not in refunded)
    entries = [e for e in client.history.entries() if e.kind != "delta"]
    exported = sum(e.row_count or 0 for e in entries if e.status != "failed")
    failed = sum(1 for e in entries if e.status == "failed")
    problems = []
    if kept != exported:
        problems.append(
            f"the ledger kept {kept:,} credits, the history's paid exports hold {exported:,} rows"
        )
    if failed != len(refunded):
        problems.append(f"{failed} failed exports in the history, {len(refunded)} refunds")
    return problems


# -- the rounds ----------------------------------------------------------------------------

#: What a frame's provenance says about how it was had without paying (``reason`` notes).
RECOVERIES = {
    "resumed export": "sustained: paid exports resumed by a re-run",
    "downloaded again for free": "sustained: delivered exports downloaded again for free",
}


def run_load(
    bench: Bench, client: Client, account_id: int, record: LoadRecord, seed: int, what: str
) -> list[str]:
    """Run one load (and its re-runs); fill ``record``; return what went wrong."""
    expected, _ = reference_of(bench, record.load)
    wrong: list[str] = []
    for number in range(RERUNS_WITH_FAULTS + 2):
        with_faults = number <= RERUNS_WITH_FAULTS
        bench.faults(seed * 10 + number if with_faults else None)
        attempt = Attempt(begin=len(bench.sb.admin.ledger(account_id)), end=0)
        record.attempts.append(attempt)
        try:
            got, attempt.spent, reason = read(record.load, client, bench.cache_dir)
        except ScoutError as exc:
            attempt.error = f"{type(exc).__name__}: {str(exc)[:300]}"
            if not with_faults:
                wrong.append(f"{what}: raised with every fault off: {attempt.error}")
        except Exception as exc:  # anything else escaping is a wrong result
            attempt.error = f"{type(exc).__name__}: {exc}"
            wrong.append(
                f"{what}: {type(exc).__name__} escaped (attempt {number}):\n"
                f"{''.join(traceback.format_exception(exc))[-3000:]}"
            )
        else:
            difference = same_data(got, expected)
            if difference is not None:
                wrong.append(
                    f"{what}: attempt {number} differs from the fault-free result:\n{difference}"
                )
            attempt.reason = reason
        finally:
            attempt.end = len(bench.sb.admin.ledger(account_id))
        if attempt.error is None or wrong:
            break
    first = record.attempts[0].error
    record.outcome = "wrong" if wrong else "documented" if first else "identical"
    return wrong


def run_round(bench: Bench, seed: int, figures: Any) -> None:
    """One account, one client, ``LOADS_PER_ROUND`` loads drawn from ``seed``."""
    sb = bench.sb
    loads = draw_loads(random.Random(seed), LOADS_PER_ROUND)
    bench.faults(None)
    for load in loads:  # the fault-free results first
        reference_of(bench, load)
    account = sb.admin.create_account(credits=10**8)
    account_id = int(account["id"])
    # Odd rounds: the "mixed" profile; even ones: "rate-limited". The read timeout of 5 s
    # bounds how long a charging call that met a 502 (it may still run upstream) is watched
    # before the client gives up on it (at least 5 s whatever the setting): the slowest fault.
    bench.profile, cap = PROFILES["mixed" if seed % 2 else "rate-limited"]
    client = Client(
        account["api_key"],
        sb.url,
        allow_http=True,
        state_dir=bench.state_dir,
        config_file=bench.state_dir.parent / "no-config.toml",
        backoff_factor=0.01,
        poll_interval=(0.01, 0.05),
        retry_after_cap=cap,
        timeout=(2.0, 5.0),
    )
    records: list[LoadRecord] = []
    wrong: list[str] = []
    cached: set[str] = set()  # the cache entries this account has: filters and method
    before, noted = bench.counter.snapshot(), Counter(bench.notes.counts)
    with client:
        for number, load in enumerate(loads):
            entry = json.dumps([load.filters, load.method], sort_keys=True)
            existed = load.cache is not False and entry in cached
            record = LoadRecord(load, reference_of(bench, load)[1], entry_existed=existed)
            records.append(record)
            wrong += run_load(
                bench,
                client,
                account_id,
                record,
                seed * 100 + number,
                f"round {seed} load {number} ({load.describe()})",
            )
            if record.attempts[-1].error is None and load.cache is not False:
                cached.add(entry)
        bench.faults(None)
        ledger = sb.admin.ledger(account_id)
        problems = check_credits(ledger, records) + check_history(client, ledger)
    injected = bench.counter.snapshot() - before
    refunds = sum(1 for e in ledger if e["delta"] > 0 and e["ref"])
    figures.add("loads tried", len(loads))
    figures.add("faults injected", FaultCounter.faults(injected) + refunds)
    figures.add("identical results", sum(1 for r in records if r.outcome == "identical"))
    figures.add("documented errors", sum(1 for r in records if r.outcome == "documented"))
    figures.add("wrong results", sum(1 for r in records if r.outcome == "wrong"))
    figures.add("sustained: requests", FaultCounter.requests(injected))
    figures.add("sustained: exports paid", sum(1 for e in ledger if e["delta"] < 0) - refunds)
    figures.add("sustained: exports failed by the server, refunded", refunds)
    figures.add("sustained: re-runs", sum(len(r.attempts) - 1 for r in records))
    attempts = [a for r in records for a in r.attempts]
    for name, count in Counter(a.error.split(":")[0] for a in attempts if a.error).items():
        figures.add(f"sustained: {name} raised", count)
    for note, name in RECOVERIES.items():
        figures.add(name, sum(1 for a in attempts if note in a.reason))
    for name in RecoveryLog.NOTES.values():
        figures.add(name, bench.notes.counts[name] - noted[name])
    bench.injected += injected
    assert not wrong, "\n\n".join(wrong)
    assert not problems, "\n".join(problems)
    # The mix hits about a quarter of the requests; a round alone may be too small to show it.
    total = FaultCounter.requests(bench.injected)
    ratio = FaultCounter.faults(bench.injected) / max(1, total)
    assert total < 400 or ratio >= 0.2, (
        f"only {ratio:.0%} of {total} requests met a fault: {dict(bench.injected)}"
    )


def _soak(config: pytest.Config) -> bool:
    """``--soak`` or ``SCOUTFRAME_SOAK=1`` (as the suite's conftest decides)."""
    return bool(config.getoption("--soak", default=False)) or os.environ.get(
        "SCOUTFRAME_SOAK", ""
    ).strip() not in ("", "0")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One test per round: 8 by default, 48 with ``--soak`` (or ``SCOUTFRAME_SOAK=1``)."""
    if "round_seed" in metafunc.fixturenames:
        count = SOAK_ROUNDS if _soak(metafunc.config) else DEFAULT_ROUNDS
        metafunc.parametrize("round_seed", [BASE_SEED + n for n in range(count)])


def test_loads_under_sustained_faults_return_the_fault_free_frame_or_a_documented_error(
    bench: Bench, figures: Any, round_seed: int
) -> None:
    run_round(bench, round_seed, figures)


def test_a_paid_export_not_yet_delivered_is_resumed_under_faults_never_bought_again(
    bench: Bench, figures: Any, pytestconfig: pytest.Config
) -> None:
    """What a read that broke off after paying leaves (an export paid for, its handle saved
    ``active``, nothing delivered), read again under a storm of faults: every attempt returns
    the fault-free frame or a documented error, and none of them buys the export again."""
    cases = SOAK_RESUME_CASES if _soak(pytestconfig) else RESUME_CASES
    rng = random.Random(BASE_SEED - 1)
    wrong: list[str] = []
    problems: list[str] = []
    outcomes: Counter[str] = Counter()
    before = bench.counter.snapshot()
    for case in range(cases):
        filters = rng.choice(FILTER_POOL)[0]
        load = Load(
            filters=filters,
            method="export",
            chunksize=rng.choice([None, 250]),
            cache=rng.choice([False, True]),
        )
        bench.faults(None)
        size = reference_of(bench, load)[1]  # the fault-free frame first (run_load compares)
        account = bench.sb.admin.create_account(credits=10**8)
        account_id = int(account["id"])
        bench.profile, cap = STORM, 0.5
        with Client(
            account["api_key"],
            bench.sb.url,
            allow_http=True,
            state_dir=bench.state_dir,
            config_file=bench.state_dir.parent / "none.toml",
            backoff_factor=0.01,
            poll_interval=(0.01, 0.05),
            retry_after_cap=cap,
            timeout=(2.0, 5.0),
        ) as client:
            job = client.exports.start(filters)  # paid; its handle is saved, as a read leaves it
            record = LoadRecord(load, size)
            what = f"resume case {case} ({load.describe()}; export {job.job_id} paid)"
            wrong += run_load(bench, client, account_id, record, BASE_SEED * 7 + case * 10, what)
        bench.faults(None)
        outcomes[record.outcome] += 1
        paid = [(e["delta"], e["ref"]) for e in bench.sb.admin.ledger(account_id) if e["delta"] < 0]
        spent = [a.spent for a in record.attempts if a.spent is not None]
        if paid != [(-size, job.task_id)]:
            problems.append(
                f"{what}: the ledger shows {paid}, not the one export paid before "
                f"(errors met: {[a.error for a in record.attempts]})"
            )
        if spent and spent[-1] != 0:
            problems.append(f"{what}: the read says it spent {spent[-1]} credits")
    injected = bench.counter.snapshot() - before
    figures.add("loads tried", cases)
    figures.add("faults injected", FaultCounter.faults(injected))
    figures.add("sustained: requests", FaultCounter.requests(injected))
    figures.add("identical results", outcomes["identical"])
    figures.add("documented errors", outcomes["documented"])
    figures.add("wrong results", outcomes["wrong"])
    assert not wrong, "\n\n".join(wrong)
    assert not problems, "\n".join(problems)
