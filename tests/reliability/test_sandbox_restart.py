"""A sandbox killed (SIGKILL) in the middle of an export, then restarted on its data dir.

The rule: after the restart every export either completed (ready, downloadable, charged
once) or failed and was refunded (the ledger shows it) — never charged and stuck in
``pending``/``processing``. Exports are started the contract's way with plain ``requests``:
search, then ``GET /api/download-csv?search_id=...``.
"""

from __future__ import annotations

import csv
import io
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from scoutframe.sandbox import Sandbox

CONTACTS = 3_000
FILTERS = {"category": "8059"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Path]:
    """Fresh data dirs holding hard links to a small dataset generated once per session."""
    from scoutframe.sandbox.dataset import load_or_generate

    base = tmp_path_factory.getbasetemp() / f"reliability-dataset-{CONTACTS}"
    base.mkdir(exist_ok=True)
    load_or_generate(base, contacts=CONTACTS, seed=0)

    def make() -> Path:
        path = tmp_path_factory.mktemp("restart")
        for src in base.glob("*.parquet"):
            os.link(src, path / src.name)
        return path

    return make


@pytest.fixture
def servers() -> Iterator[Callable[..., Sandbox]]:
    """Start process-mode sandboxes; stop whatever is still running at the end."""
    started: list[Sandbox] = []

    def start(data: Path, flavor: str = "docs") -> Sandbox:
        sb = Sandbox(CONTACTS, data_dir=data, flavor=flavor, rate_limit=0, mode="process")
        started.append(sb.start())
        return sb

    yield start
    for sb in started:
        sb.stop()


def _kill(sb: Sandbox) -> None:
    """SIGKILL the server process: no shutdown code runs."""
    assert sb.pid is not None
    os.kill(sb.pid, signal.SIGKILL)
    sb.stop()  # reaps the dead child


class Api:
    """The demo account over plain requests (``Token`` in the live flavour)."""

    def __init__(self, sb: Sandbox) -> None:
        self.url = sb.url
        self.live = sb.admin.info()["flavor"] == "live"
        self.session = requests.Session()
        self.session.trust_env = False
        prefix = "Token" if self.live else "Bearer"
        self.session.headers["Authorization"] = f"{prefix} {sb.api_key}"

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.session.get(self.url + path, timeout=30, **kw)

    def start_export(self) -> dict[str, Any]:
        sid = self.get("/api/companies", params=FILTERS).json()["search_id"]
        if self.live:
            r = self.get("/api/download-csv/", params=FILTERS)
            assert r.status_code == 200
            return {"search_id": sid, "ident": sid, "lead_count": r.json()["lead_count"]}
        r = self.get("/api/download-csv", params={"search_id": sid})
        assert r.status_code == 202
        body = r.json()
        return {"search_id": sid, "ident": body["task_id"], "lead_count": body["lead_count"]}

    def status(self, ident: str) -> dict[str, Any]:
        body: dict[str, Any] = self.get(f"/api/download-status/{ident}").json()
        return body

    def settle(self, ident: str, timeout: float = 30.0) -> dict[str, Any]:
        """Poll until the export is finished; a stuck one fails the test."""
        deadline = time.monotonic() + timeout
        while True:
            body = self.status(ident)
            if body["status"] in ("ready", "completed", "failed"):
                return body
            assert time.monotonic() < deadline, f"export stuck after restart: {body}"
            time.sleep(0.05)

    def download(self, ident: str, status: dict[str, Any]) -> str:
        if self.live:
            url = self.get(f"/api/download-completed-csv/{ident}/").json()["download_url"]
        else:
            url = status["download_url"]
        r = requests.get(url, timeout=30)  # pre-signed: no credential
        assert r.status_code == 200
        return r.text


def _check_money_and_outcome(sb: Sandbox, api: Api, exports: list[dict[str, Any]]) -> Counter:
    """Each export: ready (downloadable, charged once) or failed and refunded."""
    outcomes: Counter = Counter()
    # Finished as soon as the restarted server answers: nothing left pending or processing.
    statuses = [api.status(e["ident"]) for e in exports]
    assert all(s["status"] in ("ready", "completed", "failed") for s in statuses), statuses
    ledger = sb.admin.ledger(1)
    charges = [r for r in ledger if r["reason"] == "export"]
    assert len(charges) == len(exports)  # in the order the exports were started
    history = {e["search_id"]: e for e in api.get("/api/user/search-history").json()["results"]}
    for export, status, charge in zip(exports, statuses, charges, strict=True):
        assert charge["delta"] == -export["lead_count"]
        if not api.live:
            assert charge["ref"] == export["ident"] == status["task_id"]
        refunds = [r["delta"] for r in ledger if r["ref"] == charge["ref"] and r["delta"] > 0]
        if status["status"] in ("ready", "completed"):
            text = api.download(export["ident"], status)
            assert len(list(csv.DictReader(io.StringIO(text)))) == export["lead_count"]
            assert refunds == []  # charged once, kept
            outcomes["completed"] += 1
        else:
            assert "restarted" in status["error"]
            assert refunds == [export["lead_count"]]  # refunded, once
            outcomes["failed and refunded"] += 1
    if len({e["search_id"] for e in exports}) == len(exports) == 1:
        assert history[exports[0]["search_id"]]["status"] == statuses[0]["status"].replace(
            "completed", "ready"
        )
    # The balance is what the ledger says, and the ledger adds up.
    balance = api.get("/api/user/profile").json()["credits"]
    assert balance == ledger[-1]["balance"] == sum(r["delta"] for r in ledger)
    assert not [
        e
        for e in api.get("/api/user/search-history").json()["results"]
        if e["status"] in ("pending", "processing")
    ]
    return outcomes


def _record(figures: Any, outcomes: Counter) -> None:
    figures.add("sandbox restarts tried", 1)
    for name, n in outcomes.items():
        figures.add(f"restart outcome: {name}", n)


def _run(
    servers: Callable[..., Sandbox],
    data_dir: Callable[[], Path],
    figures: Any,
    *,
    flavor: str = "docs",
    exports: int = 1,
    before_kill: Callable[[Api, list[dict[str, Any]]], None],
) -> Counter:
    data = data_dir()
    sb = servers(data, flavor)
    sb.admin.set_export_pacing(processing_seconds=30)  # really unfinished until killed
    api = Api(sb)
    started = [api.start_export() for _ in range(exports)]
    before_kill(api, started)
    _kill(sb)
    again = servers(data, flavor)  # same data dir, new process, pacing back to normal
    outcomes = _check_money_and_outcome(again, Api(again), started)
    _record(figures, outcomes)
    return outcomes


def _wait_for(api: Api, started: list[dict[str, Any]], want: list[str]) -> None:
    deadline = time.monotonic() + 30
    while [api.status(e["ident"])["status"] for e in started] != want:
        assert time.monotonic() < deadline, want
        time.sleep(0.05)


def test_killed_right_after_the_start_answered(servers, data_dir, figures):
    outcomes = _run(servers, data_dir, figures, before_kill=lambda *_: None)
    assert outcomes == {"failed and refunded": 1}


def test_killed_while_processing_and_queued(servers, data_dir, figures):
    # Two workers hold their jobs in processing; the third job waits in the queue.
    outcomes = _run(
        servers,
        data_dir,
        figures,
        exports=3,
        before_kill=lambda api, started: _wait_for(
            api, started, ["processing", "processing", "pending"]
        ),
    )
    assert outcomes == {"failed and refunded": 3}


def test_live_flavour_killed_while_processing(servers, data_dir, figures):
    outcomes = _run(
        servers,
        data_dir,
        figures,
        flavor="live",
        before_kill=lambda api, started: _wait_for(api, started, ["processing"]),
    )
    assert outcomes == {"failed and refunded": 1}


def test_killed_with_one_export_ready_and_one_running(servers, data_dir, figures):
    data = data_dir()
    sb = servers(data)
    api = Api(sb)
    done = api.start_export()
    assert api.settle(done["ident"])["status"] == "ready"
    sb.admin.set_export_pacing(processing_seconds=30)
    running = api.start_export()
    _kill(sb)
    again = servers(data)
    outcomes = _check_money_and_outcome(again, Api(again), [done, running])
    _record(figures, outcomes)
    assert outcomes == {"completed": 1, "failed and refunded": 1}


def test_killed_at_random_moments(servers, data_dir, figures, soak):
    """Short real work, kills at seeded random delays: whatever the moment, the rule holds."""
    rng = random.Random(20240611)
    tries = 12 if soak else 2
    seen: Counter = Counter()
    for _ in range(tries):
        data = data_dir()
        sb = servers(data)
        sb.admin.set_export_pacing(processing_seconds=rng.uniform(0.0, 0.3))
        api = Api(sb)
        started = [api.start_export() for _ in range(rng.randint(1, 3))]
        time.sleep(rng.uniform(0.0, 0.6))
        _kill(sb)
        again = servers(data)
        outcomes = _check_money_and_outcome(again, Api(again), started)
        again.stop()
        seen.update(outcomes)
        _record(figures, outcomes)
    assert sum(seen.values()) >= tries
