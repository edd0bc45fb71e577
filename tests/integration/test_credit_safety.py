"""Credits are spent only with consent, and never twice for the same data (issue: credit safety).

Crash tests run a read by export in a fresh process (``crash_read.py``), kill it at one phase
(SIGKILL, Ctrl-C, or the consumer's own exception in a chunk loop), then run the same read in
another fresh process: the ledger shows one charge, the second run pays nothing, and no file
is left in the system's temporary directory or in the state directory's downloads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scoutframe import ArgumentError, Client, ConsentError, read_spherescout
from scoutframe.sandbox import Sandbox

CRASH = Path(__file__).with_name("crash_read.py")
FILTERS = {"countries": "DE"}


def debits(sb: Sandbox, account_id: int) -> list[int]:
    return [int(e["delta"]) for e in sb.admin.ledger(account_id) if int(e["delta"]) < 0]


def run(
    sb: Sandbox,
    key: str,
    state: Path,
    scratch: Path,
    *,
    phase: str = "none",
    how: str = "KILL",
    at: int = 1,
    chunksize: int = 0,
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPHERESCOUT_", "SCOUTFRAME_"))}
    env["TMPDIR"] = str(scratch)
    args = [
        sys.executable,
        str(CRASH),
        "--url",
        sb.url,
        "--key",
        key,
        "--state",
        str(state),
        "--filters",
        json.dumps(FILTERS),
        "--phase",
        phase,
        "--signal",
        how,
        "--at",
        str(at),
        "--chunksize",
        str(chunksize),
    ]
    return subprocess.run(args, capture_output=True, text=True, timeout=180, env=env, check=False)


@pytest.fixture
def paid(sandbox_docs: Sandbox, tmp_path: Path) -> dict[str, Any]:
    account = sandbox_docs.admin.create_account(credits=1_000_000)
    with Client(
        account["api_key"], sandbox_docs.url, allow_http=True, state_dir=tmp_path / "probe"
    ) as client:
        expected = client.search(**FILTERS).total_count
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    return {
        "account": account,
        "expected": expected,
        "state": tmp_path / "state",
        "scratch": scratch,
    }


CASES = [
    ("start", "KILL", 1, 0),
    ("start", "INT", 1, 0),
    ("wait", "KILL", 1, 0),
    ("wait", "INT", 1, 0),
    ("download", "KILL", 1, 0),
    ("download", "INT", 1, 0),
    ("parse", "KILL", 1, 0),
    ("parse", "INT", 1, 0),
    ("chunk", "KILL", 1, 100),
    ("chunk", "INT", 1, 100),
    ("chunk", "RAISE", 2, 100),
]


@pytest.mark.parametrize(
    ("phase", "how", "at", "chunksize"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES]
)
def test_a_read_killed_at_any_phase_is_paid_once_and_leaves_no_contact_data(
    sandbox_docs: Sandbox, paid: dict[str, Any], phase: str, how: str, at: int, chunksize: int
) -> None:
    sb, account = sandbox_docs, paid["account"]
    crashed = run(
        sb,
        account["api_key"],
        paid["state"],
        paid["scratch"],
        phase=phase,
        how=how,
        at=at,
        chunksize=chunksize,
    )
    expected_code = {"KILL": -9, "INT": 130, "RAISE": 1}[how]
    assert crashed.returncode == expected_code, crashed.stderr[-2000:]
    if how == "INT":  # Ctrl-C ends with a note that names the job and how to resume
        note = crashed.stderr
        assert "scoutframe:" in note
        assert "again" in note
        if phase != "start":
            assert "is paid for" in note
            handle = next((paid["state"] / "jobs").glob("task_*.json"))
            assert handle.stem in note
        else:
            assert "adopts it without paying again" in note
    assert debits(sb, int(account["id"])) == [-paid["expected"]]  # the crashed run paid
    again = run(sb, account["api_key"], paid["state"], paid["scratch"])
    assert again.returncode == 0, again.stderr[-2000:]
    result = json.loads(again.stdout.strip().splitlines()[-1])
    assert result["rows"] == paid["expected"]
    assert result["credits_spent"] == 0  # the second run paid nothing
    assert debits(sb, int(account["id"])) == [-paid["expected"]]  # paid once in all
    assert list(paid["scratch"].rglob("*")) == []  # nothing in the system temp directory
    assert list((paid["state"] / "downloads").glob("*")) == []  # delivered: the file went


def test_a_finished_read_run_again_with_nothing_new_costs_nothing(
    sandbox_docs: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    account = sandbox_docs.admin.create_account(credits=1_000_000)
    with Client(
        account["api_key"], sandbox_docs.url, allow_http=True, state_dir=tmp_path / "state"
    ) as client:
        first = read_spherescout(**FILTERS, client=client, method="export", progress=False)
        again = read_spherescout(**FILTERS, client=client, method="export", progress=False)
        assert again.equals(first)
        assert again.attrs["scoutframe"]["credits_spent"] == 0
        assert "nothing is new since export" in again.attrs["scoutframe"]["reason"]
        assert debits(sandbox_docs, int(account["id"])) == [-len(first)]
        sandbox_docs.admin.recollect(5)
        new = client.history.freshness(first.attrs["scoutframe"]["history_id"]).new_count
        capsys.readouterr()
        third = read_spherescout(**FILTERS, client=client, method="export", progress=False)
        if new:  # something changed: a new export, and the notice says cache=True pays less
            err = capsys.readouterr().err
            assert f"{new:,} contacts are new or updated" in err
            assert "cache=True" in err
            assert third.attrs["scoutframe"]["credits_spent"] == len(third)
        else:
            assert third.attrs["scoutframe"]["credits_spent"] == 0


def test_a_search_without_filters_is_refused(sandbox_docs: Sandbox, tmp_path: Path) -> None:
    with Client(
        sandbox_docs.api_key, sandbox_docs.url, allow_http=True, state_dir=tmp_path / "state"
    ) as client:
        for method in ("auto", "pages", "export"):
            with pytest.raises(ArgumentError, match="all=True"):
                read_spherescout(client=client, method=method)
        plan = read_spherescout(client=client, all=True, dry_run=True)
        assert plan.rows == client.search().total_count


def test_the_client_default_budget_gives_consent(
    sandbox_docs: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = sandbox_docs.admin.create_account(credits=1_000_000)
    filters = {"countries": "FR"}
    with Client(
        account["api_key"], sandbox_docs.url, allow_http=True, state_dir=tmp_path / "a"
    ) as client:
        count = client.search(**filters).total_count
        with pytest.raises(ConsentError):
            read_spherescout(**filters, client=client, progress=False)
    monkeypatch.setenv("SCOUTFRAME_MAX_CREDITS", str(count))
    with Client(
        account["api_key"], sandbox_docs.url, allow_http=True, state_dir=tmp_path / "b"
    ) as client:
        assert client.max_credits == count
        df = read_spherescout(**filters, client=client, progress=False)
        assert df.attrs["scoutframe"]["credits_spent"] == count == len(df)
    with Client(
        account["api_key"],
        sandbox_docs.url,
        allow_http=True,
        max_credits=count - 1,
        state_dir=tmp_path / "c",
    ) as client:
        from scoutframe import BudgetError

        with pytest.raises(BudgetError, match=f"more than max_credits={count - 1}"):
            read_spherescout(**filters, client=client, progress=False)
    assert debits(sandbox_docs, int(account["id"])) == [-count]
