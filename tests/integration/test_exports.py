"""Export jobs against the real sandbox over loopback, in both API flavours."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from scoutframe import Client
from scoutframe.api.jobs import ExportJob
from scoutframe.errors import (
    BadRequestError,
    BudgetError,
    DownloadExpiredError,
    ExportError,
    ExportFailedError,
    InsufficientCreditsError,
    NotFoundError,
    RateLimitError,
    TransportError,
)

FILTERS = {"countries": "FR", "email": True}


@pytest.fixture
def account(
    sandbox: Any,
    client_for: Callable[..., Client],
    fresh_account: Callable[..., dict[str, Any]],
    tmp_path: Path,
) -> Iterator[Callable[..., SimpleNamespace]]:
    """Make a fresh account (own credits and ledger) and a client for it; reset pacing after."""

    def make(
        credits: int = 100_000,
        state_dir: Path | None = None,
        api_key: str | None = None,
        **client_kwargs: Any,
    ) -> SimpleNamespace:
        info = fresh_account(sandbox, credits=credits) if api_key is None else None
        key = api_key if info is None else info["api_key"]
        client = client_for(
            sandbox, api_key=key, state_dir=state_dir or tmp_path / "state", **client_kwargs
        )
        return SimpleNamespace(
            client=client, id=-1 if info is None else int(info["id"]), api_key=key
        )

    yield make
    sandbox.admin.set_export_pacing(min_polls=0, delay_seconds=0)


def charges(sandbox: Any, account_id: int) -> list[int]:
    """The account's ledger movements after its opening balance (debits negative)."""
    return [
        int(row["delta"])
        for row in sandbox.admin.ledger(account_id)
        if not str(row["reason"]).startswith(("opening", "initial", "account"))
    ]


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_life_cycle_start_wait_download(sandbox: Any, account: Any, tmp_path: Path) -> None:
    acct = account()
    client = acct.client
    account_id = acct.id
    expected = client.search(FILTERS).total_count
    job = client.exports.start(FILTERS)
    assert job.lead_count == expected > 0
    assert [j.job_id for j in client.exports.list_saved()] == [job.job_id]
    seen: list[str] = []
    status = job.wait(timeout=60, on_status=lambda s: seen.append(s.status))
    assert status.status == "ready"
    assert seen[-1] == "ready"
    progress: list[tuple[int, int | None]] = []
    path = job.download(tmp_path / "export.csv", on_bytes=lambda d, t: progress.append((d, t)))
    rows = read_rows(path)
    assert len(rows) == expected
    assert all("*" not in row["email"] and "@" in row["email"] for row in rows)
    assert progress[-1] == (path.stat().st_size, path.stat().st_size)
    assert not job.part_path(path).exists()
    assert job.history_id == client.history.entries()[0].id  # the parent of future deltas
    assert charges(sandbox, account_id) == [-expected]
    assert client.exports.list_saved() == []
    assert client.flavor == sandbox.flavor_name


def test_failed_export_raises_and_is_refunded(sandbox: Any, account: Any) -> None:
    acct = account(credits=5_000)
    client = acct.client
    account_id = acct.id
    sandbox.admin.set_faults(export_fail=1.0)
    job = client.exports.start(FILTERS)
    with pytest.raises(ExportFailedError, match="injected fault") as caught:
        job.wait(timeout=60)
    assert caught.value.job is job
    moves = charges(sandbox, account_id)
    assert moves == [-job.lead_count, job.lead_count]
    assert client.profile().credits == 5_000


def test_insufficient_credits_refused_before_any_charge(sandbox: Any, account: Any) -> None:
    acct = account(credits=10)
    client = acct.client
    account_id = acct.id
    with pytest.raises(InsufficientCreditsError) as caught:
        client.exports.start(FILTERS)
    assert caught.value.available_credits == 10
    assert caught.value.required_credits == client.search(FILTERS).total_count
    assert caught.value.__cause__ is not caught.value  # the transport's error, raised as it is
    assert charges(sandbox, account_id) == []


def test_server_side_insufficient_credits_maps_to_the_same_error(
    sandbox: Any, account: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    acct = account(credits=10)
    client = acct.client
    account_id = acct.id
    # Bypass the client's own balance check so that the server's 403 is what answers.
    monkeypatch.setattr(client, "profile", lambda: SimpleNamespace(credits=10**9))
    with pytest.raises(InsufficientCreditsError) as caught:
        client.exports.start(FILTERS)
    assert caught.value.available_credits == 10
    assert caught.value.required_credits == client.search(FILTERS).total_count
    assert caught.value.__cause__ is not caught.value  # the transport's error, raised as it is
    assert charges(sandbox, account_id) == []


def test_max_credits_refuses_before_spending(sandbox: Any, account: Any) -> None:
    acct = account()
    client = acct.client
    account_id = acct.id
    count = client.search(FILTERS).total_count
    with pytest.raises(BudgetError, match=str(count)):
        client.exports.start(FILTERS, max_credits=count - 1)
    assert charges(sandbox, account_id) == []
    assert client.exports.list_saved() == []


@pytest.mark.parametrize("fault", ["truncate", "reset"])
def test_dropped_download_resumes_to_an_identical_file(
    sandbox: Any, account: Any, tmp_path: Path, fault: str
) -> None:
    acct = account()
    client = acct.client
    job = client.exports.start(FILTERS)
    job.wait(timeout=60)
    clean = job.download(tmp_path / "clean.csv").read_bytes()

    ranges: list[str | None] = []
    real_download = client.transport.download

    def spy(url: str, **kwargs: Any) -> Any:
        ranges.append((kwargs.get("headers") or {}).get("Range"))
        return real_download(url, **kwargs)

    client.transport.download = spy  # type: ignore[method-assign]
    sandbox.admin.set_faults(**{fault: 1.0})

    def heal_after_first_bytes(done: int, total: int | None) -> None:
        if done and sandbox.admin.faults()[fault]:
            sandbox.admin.set_faults(**{fault: 0.0})  # only the first response is cut

    again = job.download(tmp_path / "resumed.csv", on_bytes=heal_after_first_bytes)
    assert again.read_bytes() == clean
    assert ranges[0] is None
    assert len(ranges) >= 2
    assert ranges[1] is not None
    assert ranges[1].startswith("bytes=")
    assert ranges[1] != "bytes=0-"


def test_expired_link_raises_download_expired(sandbox: Any, account: Any, tmp_path: Path) -> None:
    acct = account()
    client = acct.client
    job = client.exports.start(FILTERS)
    job.wait(timeout=60)
    sandbox.admin.advance_clock(31 * 86400)
    target = tmp_path / "late.csv"
    with pytest.raises(DownloadExpiredError) as caught:
        job.download(target)
    assert caught.value.job is job
    assert not target.exists()


def test_refused_link_is_replaced_by_a_fresh_one(
    sandbox: Any, account: Any, tmp_path: Path
) -> None:
    acct = account()
    client = acct.client
    job = client.exports.start(FILTERS)
    status = job.wait(timeout=60)
    assert status.download_url is not None
    # A link the storage refuses with 403 (as after expiry): the job must ask for a new one.
    import dataclasses

    job.last_status = dataclasses.replace(
        status, download_url=status.download_url.replace("signature=", "signature=00")
    )
    rows = read_rows(job.download(tmp_path / "fresh.csv"))
    assert len(rows) == job.lead_count


def test_interrupted_job_resumes_from_a_new_client_without_paying_again(
    sandbox: Any, account: Any, tmp_path: Path
) -> None:
    state = tmp_path / "shared-state"
    acct = account(state_dir=state)
    first = acct.client
    account_id = acct.id
    job_id = first.exports.start(FILTERS).job_id
    first.close()  # the notebook kernel died here

    acct = account(state_dir=state, api_key=acct.api_key)
    second = acct.client
    assert [j.job_id for j in second.exports.list_saved()] == [job_id]
    job = second.export_job(job_id)
    assert isinstance(job, ExportJob)
    assert job.filters is not None
    job.wait(timeout=60)
    rows = read_rows(job.download(tmp_path / "resumed.csv"))
    assert len(rows) == job.lead_count
    assert charges(sandbox, account_id) == [-job.lead_count]
    assert second.exports.list_saved() == []


@pytest.mark.parametrize("fault", ["reset", "p503"])
def test_ambiguous_start_failure_charges_once(
    sandbox: Any, account: Any, tmp_path: Path, fault: str
) -> None:
    acct = account()
    client = acct.client
    account_id = acct.id
    real_request = client.transport.request
    injected: list[str] = []

    def first_start_breaks(method: str, path: str, **kwargs: Any) -> Any:
        if "download-csv" in path and not injected:
            injected.append(path)
            sandbox.admin.set_faults(**{fault: 1.0})
            try:
                return real_request(method, path, **kwargs)
            finally:
                sandbox.admin.set_faults(**{fault: 0.0})
        return real_request(method, path, **kwargs)

    client.transport.request = first_start_breaks  # type: ignore[method-assign]
    job = client.exports.start(FILTERS)
    assert injected
    job.wait(timeout=60)
    rows = read_rows(job.download(tmp_path / "once.csv"))
    count = client.search(FILTERS).total_count
    assert len(rows) == count
    assert charges(sandbox, account_id) == [-count]


def test_poll_loop_waits_through_pacing(sandbox: Any, account: Any) -> None:
    acct = account()
    client = acct.client
    sandbox.admin.set_export_pacing(min_polls=4)
    job = client.exports.start(FILTERS)
    seen: list[str] = []
    job.wait(timeout=60, on_status=lambda s: seen.append(s.status))
    assert seen[-1] == "ready"
    assert len(seen) >= 4
    assert set(seen[:-1]) <= {"pending", "processing"}


def test_404_tolerated_only_during_the_grace_period(sandbox: Any, account: Any) -> None:
    acct = account()
    client = acct.client
    flavor = sandbox.flavor_name
    job = ExportJob(
        client,
        search_id="srch_00000000",
        task_id="task_0000000000000000" if flavor == "docs" else None,
        flavor=flavor,
    )
    job.not_found_grace = 0.3
    polls: list[str] = []
    real_get = client.transport.get_json

    def spy(path: str, *args: Any, **kwargs: Any) -> Any:
        polls.append(path)
        return real_get(path, *args, **kwargs)

    client.transport.get_json = spy  # type: ignore[method-assign]
    with pytest.raises(NotFoundError):
        job.wait(timeout=30)
    assert len(polls) >= 3  # several 404s were taken as "not visible yet"


def test_start_from_a_bare_search_id(sandbox: Any, account: Any, tmp_path: Path) -> None:
    acct = account()
    client = acct.client
    page = client.search(FILTERS)
    assert page.search_id is not None
    # The cost of a search id whose filters this client never saw cannot be checked first.
    with pytest.raises(BudgetError, match="pass the filters"):
        client.exports.start(page.search_id, max_credits=10**6)
    if sandbox.flavor_name == "docs":
        job = client.exports.start(page.search_id)
        assert job.lead_count == page.total_count
    else:  # the live API starts exports from filters only; the sandbox refuses a bare id
        with pytest.raises((BadRequestError, ExportError)):  # refused by server or client
            client.exports.start(page.search_id)
        job = client.exports.start(FILTERS)
    job.wait(timeout=60)
    job.download(tmp_path / "first.csv")
    # Once exported, the search id's filters are in the history: budgets can be checked.
    with pytest.raises(BudgetError, match=str(page.total_count)):
        client.exports.start(job.search_id, max_credits=page.total_count - 1)
    assert charges(sandbox, acct.id) == [-page.total_count]


def test_start_answered_too_late_is_adopted_not_repeated(
    sandbox: Any, account: Any, tmp_path: Path
) -> None:
    acct = account(timeout=(5.0, 0.5))
    client = acct.client
    real_request = client.transport.request
    slowed: list[str] = []

    def first_start_is_slow(method: str, path: str, **kwargs: Any) -> Any:
        if "download-csv" in path and not slowed:
            slowed.append(path)
            # The server sleeps 1.5 s before handling it: the client gives up after 0.5 s.
            sandbox.admin.set_faults(latency_ms=1500)
            try:
                return real_request(method, path, **kwargs)
            finally:
                sandbox.admin.set_faults(latency_ms=0)
        return real_request(method, path, **kwargs)

    client.transport.request = first_start_is_slow  # type: ignore[method-assign]
    job = client.exports.start(FILTERS)
    assert slowed
    job.wait(timeout=60)
    count = client.search(FILTERS).total_count
    assert len(read_rows(job.download(tmp_path / "late.csv"))) == count
    assert charges(sandbox, acct.id) == [-count]


def test_rate_limited_starts_are_sent_again_and_charged_once(sandbox: Any, account: Any) -> None:
    # A 429 is refused before anything runs: the start waits Retry-After and goes again.
    acct = account()
    client = acct.client
    filters = [{"countries": c, "email": True} for c in ("FR", "DE", "US", "GB", "ES")]
    counts = [client.search(f).total_count for f in filters]
    sandbox.admin.set_faults(p429=0.3, seed=3)
    refused: list[int] = []
    real_request = client.transport.request

    def count_refusals(method: str, path: str, **kwargs: Any) -> Any:
        try:
            return real_request(method, path, **kwargs)
        except RateLimitError:
            if "download-csv" in path:
                refused.append(1)
            raise

    client.transport.request = count_refusals  # type: ignore[method-assign]
    try:
        jobs = [client.exports.start(f) for f in filters]
    finally:
        sandbox.admin.set_faults(p429=0)
    assert refused  # the seed refuses at least one start
    assert all(job.job_id for job in jobs)
    assert sorted(charges(sandbox, acct.id)) == sorted(-c for c in counts)


def test_lookups_after_a_broken_start_are_retried_before_concluding(
    sandbox: Any, account: Any
) -> None:
    # The start's connection is reset after the charge; the free lookups that follow (balance,
    # history/status) fail too for a while. They are retried, so the paid job is adopted.
    acct = account()
    client = acct.client
    real_request = client.transport.request
    broken: list[str] = []

    def start_then_flaky_lookups(method: str, path: str, **kwargs: Any) -> Any:
        if "download-csv" in path and not broken:
            broken.append(path)
            sandbox.admin.set_faults(reset=1.0)
            try:
                return real_request(method, path, **kwargs)
            finally:
                sandbox.admin.set_faults(reset=0.0)
        if broken and len(broken) < 4 and "download-csv" not in path:
            broken.append(path)  # the first three lookups after the break fail
            raise TransportError(f"connection reset (simulated) on {path}")
        return real_request(method, path, **kwargs)

    client.transport.request = start_then_flaky_lookups  # type: ignore[method-assign]
    job = client.exports.start(FILTERS)
    assert len(broken) == 4
    job.wait(timeout=60)
    count = client.search(FILTERS).total_count
    assert charges(sandbox, acct.id) == [-count]


def test_unknown_charge_is_not_reported_as_a_charge(sandbox: Any, account: Any) -> None:
    acct = account()
    client = acct.client
    real_request = client.transport.request
    broken: list[str] = []

    def start_breaks_and_nothing_answers(method: str, path: str, **kwargs: Any) -> Any:
        if "download-csv" in path and not broken:
            broken.append(path)
            sandbox.admin.set_faults(reset=1.0)
            try:
                return real_request(method, path, **kwargs)
            finally:
                sandbox.admin.set_faults(reset=0.0)
        if broken:
            raise TransportError(f"connection reset (simulated) on {path}")
        return real_request(method, path, **kwargs)

    client.transport.request = start_breaks_and_nothing_answers  # type: ignore[method-assign]
    with pytest.raises(ExportError, match="could not be read") as caught:
        client.exports.start(FILTERS)
    assert "after the server charged it" not in str(caught.value)


def test_resume_by_search_id_without_a_saved_handle(
    sandbox: Any, account: Any, tmp_path: Path
) -> None:
    # Another machine (no saved handle) resumes by search id: the documented flavour has no
    # status by search id, so the export history is followed instead of a 404.
    acct = account(state_dir=tmp_path / "first")
    search_id = acct.client.exports.start(FILTERS).search_id
    other = account(state_dir=tmp_path / "elsewhere", api_key=acct.api_key).client
    assert other.exports.list_saved() == []
    job = other.export_job(search_id)
    job.wait(timeout=60)
    rows = read_rows(job.download(tmp_path / "by-search-id.csv"))
    count = other.search(FILTERS).total_count
    assert len(rows) == count
    assert charges(sandbox, acct.id) == [-count]
    fresh = account(state_dir=tmp_path / "third", api_key=acct.api_key).client
    with pytest.raises(NotFoundError, match="no export of search"):
        fresh.export_job("srch_00000000").wait(timeout=5)


def _export_server(loopback_server: Any, start_answer: tuple[int, dict[str, str], bytes]) -> Any:
    """A scripted API: profile and an empty history answer; every export start gets
    ``start_answer``."""
    import json

    def respond(method: str, path: str, headers: dict[str, str]) -> Any:
        if path.startswith("/api/user/profile"):
            return 200, {"Content-Type": "application/json"}, json.dumps({"credits": 10}).encode()
        if path.startswith("/api/user/search-history"):
            body = json.dumps({"count": 0, "results": []}).encode()
            return 200, {"Content-Type": "application/json"}, body
        if path.startswith("/api/download-csv"):
            return start_answer
        return 404, {"Content-Type": "application/json"}, b'{"detail": "Not found."}'

    return loopback_server(respond)


def _starts(server: Any) -> int:
    return sum(1 for _, path, _ in server.requests if path.startswith("/api/download-csv"))


def test_export_start_429_obeys_the_clients_retry_after_cap(
    loopback_server: Any, client_for: Any, fake_clock: Any
) -> None:
    """Regression: the start's 429 loop read retry_after_cap off the transport with getattr and
    a default of 60 s, so Client(retry_after_cap=...) was ignored."""
    refused = (
        429,
        {"Retry-After": "1", "Content-Type": "application/json"},
        b'{"detail": "Slow down."}',
    )
    server = _export_server(loopback_server, refused)
    client = client_for(SimpleNamespace(url=server.url, api_key="a" * 64), retry_after_cap=0.5)
    with pytest.raises(RateLimitError) as caught:
        client.exports.start("srch_1")
    assert caught.value.retry_after == 1.0
    assert _starts(server) == 1  # 1 s is over the 0.5 s cap: not sent again, not waited for
    assert fake_clock.sleeps == []


def test_export_start_429_backs_off_with_the_clients_backoff_factor(
    loopback_server: Any, client_for: Any, fake_clock: Any
) -> None:
    refused = (429, {"Content-Type": "application/json"}, b'{"detail": "Slow down."}')
    server = _export_server(loopback_server, refused)
    client = client_for(
        SimpleNamespace(url=server.url, api_key="a" * 64), max_retries=2, backoff_factor=0.01
    )
    with pytest.raises(RateLimitError):
        client.exports.start("srch_1")
    assert _starts(server) == 3  # the first send and max_retries more
    assert len(fake_clock.sleeps) == 2
    assert all(pause <= 0.02 for pause in fake_clock.sleeps)  # 0.01 then 0.02 at most
