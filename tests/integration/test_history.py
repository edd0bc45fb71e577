"""Export history, freshness and delta downloads against the real sandbox, both flavours."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from scoutframe import Client
from scoutframe.errors import BudgetError, InsufficientCreditsError, NotFoundError, TransportError

FILTERS = {"countries": "FR", "email": True}


@pytest.fixture
def account(
    sandbox: Any, client_for: Callable[..., Client], fresh_account: Callable[..., dict[str, Any]]
) -> Callable[..., SimpleNamespace]:
    """Make a fresh account (own credits, ledger and history) and a client for it."""

    def make(credits: int = 100_000, **client_kwargs: Any) -> SimpleNamespace:
        info = fresh_account(sandbox, credits=credits)
        client = client_for(sandbox, api_key=info["api_key"], **client_kwargs)
        return SimpleNamespace(client=client, id=int(info["id"]))

    return make


def exported(client: Client, tmp_path: Path) -> tuple[int, list[dict[str, str]]]:
    """Run a full export of FILTERS; return its history entry id and its rows."""
    job = client.exports.start(FILTERS)
    job.wait(timeout=60)
    path = job.download(tmp_path / f"full-{job.job_id}.csv")
    newest = client.history.entries()[0]
    assert newest.search_id == job.search_id
    assert newest.kind == "full"
    return newest.id, read_rows(path)


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def debits(sandbox: Any, account_id: int) -> list[int]:
    return [
        int(r["delta"])
        for r in sandbox.admin.ledger(account_id)
        if r["reason"] != "opening balance"
    ]


def test_list_gives_typed_frame(account: Any, tmp_path: Path) -> None:
    acct = account()
    entry_id, rows = exported(acct.client, tmp_path)
    frame = acct.client.history.list()
    assert list(frame["id"]) == [entry_id]
    assert frame["id"].dtype == "int64"
    assert isinstance(frame["created_at"].dtype, pd.DatetimeTZDtype)
    assert str(frame["created_at"].dt.tz) == "UTC"
    assert frame.loc[0, "kind"] == "full"
    assert frame.loc[0, "row_count"] == len(rows)
    assert frame["parent_id"].dtype == "Int64"
    assert frame["parent_id"].isna().all()
    assert "download_url" not in frame.columns


def test_delta_holds_exactly_the_new_and_recollected_rows(
    sandbox: Any, account: Any, tmp_path: Path
) -> None:
    acct = account()
    history = acct.client.history
    entry_id, full_rows = exported(acct.client, tmp_path)
    assert history.freshness(entry_id).is_fresh
    sandbox.admin.add_contacts(3_000)
    sandbox.admin.recollect(3_000)
    freshness = history.freshness(entry_id)
    assert freshness.new_count > 0
    assert not freshness.is_fresh
    before = debits(sandbox, acct.id)

    delta = history.download_delta(entry_id, tmp_path / "delta.csv")
    rows = read_rows(delta.path)
    assert delta.row_count == len(rows) == freshness.new_count == delta.credits_spent
    assert debits(sandbox, acct.id) == [*before, -len(rows)]
    newest = history.entries()[0]
    assert (newest.id, newest.kind, newest.parent_id) == (delta.history_id, "delta", entry_id)

    # A fresh full export tells which rows changed since the first one: exactly the delta's.
    _, now_rows = exported(acct.client, tmp_path)
    old = {r["place_id"]: r["collected_at"] for r in full_rows}
    changed = {r["place_id"] for r in now_rows if old.get(r["place_id"]) != r["collected_at"]}
    assert {r["place_id"] for r in rows} == changed
    assert any(r["place_id"] in old for r in rows)  # re-collected ones
    assert any(r["place_id"] not in old for r in rows)  # new businesses
    cut_off = freshness.exported_at
    assert cut_off is not None
    # (timestamps are whole seconds, so a row collected in the export's second compares equal)
    assert all(
        datetime.fromisoformat(r["collected_at"].replace("Z", "+00:00")) >= cut_off for r in rows
    )
    assert history.freshness(delta.history_id).is_fresh


def test_delta_over_budget_spends_nothing(sandbox: Any, account: Any, tmp_path: Path) -> None:
    acct = account()
    entry_id, _ = exported(acct.client, tmp_path)
    sandbox.admin.add_contacts(2_000)
    new_count = acct.client.history.freshness(entry_id).new_count
    assert new_count > 1
    before = debits(sandbox, acct.id)
    target = tmp_path / "delta.csv"
    with pytest.raises(BudgetError, match=str(new_count)):
        acct.client.history.download_delta(entry_id, target, max_credits=new_count - 1)
    assert debits(sandbox, acct.id) == before
    assert not target.exists()


def test_delta_beyond_balance_spends_nothing(sandbox: Any, account: Any, tmp_path: Path) -> None:
    probe = account()
    count = probe.client.search(FILTERS).total_count
    acct = account(credits=count + 1)
    entry_id, _ = exported(acct.client, tmp_path)
    sandbox.admin.add_contacts(2_000)
    with pytest.raises(InsufficientCreditsError) as caught:
        acct.client.history.download_delta(entry_id, tmp_path / "delta.csv")
    assert caught.value.available_credits == 1
    assert debits(sandbox, acct.id) == [-count]


def test_other_accounts_entry_is_not_found(sandbox: Any, account: Any, tmp_path: Path) -> None:
    owner = account()
    entry_id, _ = exported(owner.client, tmp_path)
    stranger = account()
    with pytest.raises(NotFoundError):
        stranger.client.history.freshness(entry_id)
    with pytest.raises(NotFoundError):
        stranger.client.history.download_delta(entry_id, tmp_path / "theirs.csv")
    assert debits(sandbox, stranger.id) == []
    assert stranger.client.history.entries() == []


def _break_first_delta(sandbox: Any, client: Client, fault: str, level: float = 1.0) -> list[str]:
    """Make the first delta request meet ``fault``; returns the list of broken paths."""
    real_request = client.transport.request
    broken: list[str] = []

    def first_delta_breaks(method: str, path: str, **kwargs: Any) -> Any:
        if path.endswith("download-delta") and not broken:
            broken.append(path)
            sandbox.admin.set_faults(**{fault: level})
            try:
                return real_request(method, path, **kwargs)
            finally:
                sandbox.admin.set_faults(**{fault: 0.0})
        return real_request(method, path, **kwargs)

    client.transport.request = first_delta_breaks  # type: ignore[method-assign]
    return broken


def test_delta_refused_by_a_5xx_is_retried_once_and_charged_once(
    sandbox: Any, account: Any, tmp_path: Path
) -> None:
    acct = account()
    entry_id, _ = exported(acct.client, tmp_path)
    sandbox.admin.add_contacts(2_000)
    expected = acct.client.history.freshness(entry_id).new_count
    before = debits(sandbox, acct.id)
    broken = _break_first_delta(sandbox, acct.client, "p503")
    delta = acct.client.history.download_delta(entry_id, tmp_path / "delta.csv")
    assert broken
    assert delta.row_count == expected == len(read_rows(delta.path))
    assert debits(sandbox, acct.id) == [*before, -expected]


def test_delta_cut_after_the_charge_is_not_paid_twice(
    sandbox: Any, account: Any, tmp_path: Path
) -> None:
    acct = account()
    entry_id, _ = exported(acct.client, tmp_path)
    sandbox.admin.add_contacts(2_000)
    expected = acct.client.history.freshness(entry_id).new_count
    before = debits(sandbox, acct.id)
    _break_first_delta(sandbox, acct.client, "reset")
    target = tmp_path / "delta.csv"
    with pytest.raises(TransportError, match="history entry") as caught:
        acct.client.history.download_delta(entry_id, target)
    recorded = acct.client.history.entries()[0]
    assert recorded.kind == "delta"
    assert str(recorded.id) in str(caught.value)
    assert debits(sandbox, acct.id) == [*before, -expected]
    assert not target.exists()


def test_delta_answered_too_late_is_not_asked_again(
    sandbox: Any, account: Any, tmp_path: Path
) -> None:
    acct = account(timeout=(5.0, 0.5))
    entry_id, _ = exported(acct.client, tmp_path)
    sandbox.admin.add_contacts(2_000)
    expected = acct.client.history.freshness(entry_id).new_count
    before = debits(sandbox, acct.id)
    # The server sleeps 1.5 s before handling the delta; the client gives up after 0.5 s.
    _break_first_delta(sandbox, acct.client, "latency_ms", 1500)
    # The client watches for the charge (as for an export start) and names the entry made.
    with pytest.raises(TransportError, match="charged it as history entry") as caught:
        acct.client.history.download_delta(entry_id, tmp_path / "delta.csv")
    assert str(acct.client.history.entries()[0].id) in str(caught.value)
    deadline = time.monotonic() + 10
    while debits(sandbox, acct.id) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)  # a second (wrong) request would have been charged by now as well
    assert debits(sandbox, acct.id) == [*before, -expected]
