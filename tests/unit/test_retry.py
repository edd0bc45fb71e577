"""Every retry and polling budget, without sockets: urllib3 policies, loop budgets, the clock."""

from __future__ import annotations

from typing import Any

import pytest
import urllib3
from urllib3.response import HTTPResponse

from scoutframe import clock as seam
from scoutframe.api import retry
from scoutframe.api.retry import Budget, RetryPolicy, ScoutRetry, call_with_retries
from scoutframe.errors import NotFoundError, RateLimitError, ServerError


def response(status: int, retry_after: str | None = None) -> HTTPResponse:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return HTTPResponse(body=b"", headers=headers, status=status, preload_content=False)


def test_safe_policy_retries_idempotent_statuses_only():
    policy = RetryPolicy(max_retries=5, backoff_factor=0.5, max_elapsed=60).safe_urllib3()
    assert policy.is_retry("GET", 503)
    assert policy.is_retry("GET", 429)
    assert policy.is_retry("DELETE", 500)
    assert not policy.is_retry("POST", 503)
    assert not policy.is_retry("GET", 404)


def test_charging_policy_retries_no_status_and_no_read_error():
    policy = RetryPolicy(max_retries=5, backoff_factor=0.5, max_elapsed=60).charging_urllib3()
    for status in (429, 500, 503):
        assert not policy.is_retry("GET", status, has_retry_after=True)
    read_error = urllib3.exceptions.ReadTimeoutError(None, "/x", "read timed out")  # type: ignore[arg-type]
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        policy.increment("GET", "/x", error=read_error)
    connect_error = urllib3.exceptions.NewConnectionError(None, "refused")  # type: ignore[arg-type]
    assert policy.increment("GET", "/x", error=connect_error).connect == 4


def test_backoff_grows_with_jitter():
    policy = RetryPolicy(max_retries=10, backoff_factor=1.0, max_elapsed=600).safe_urllib3()
    assert policy.get_backoff_time() == 0.0
    delays = []
    for _ in range(4):
        policy = policy.increment("GET", "/x", response=response(503))
        delays.append(policy.get_backoff_time())
    for n, delay in enumerate(delays):
        assert 2**n / 2 <= delay <= 2**n
    fresh = RetryPolicy(max_retries=10, backoff_factor=1.0, max_elapsed=600).safe_urllib3
    samples = {
        fresh()
        .increment("GET", "/x", response=response(503))
        .increment("GET", "/x", response=response(503))
        .get_backoff_time()
        for _ in range(20)
    }
    assert len(samples) > 1  # jittered


def test_retry_after_above_cap_stops_retrying():
    policy = ScoutRetry(total=5, status_forcelist={429}, retry_after_cap=10.0)
    assert policy.increment("GET", "/x", response=response(429, "3")).total == 4
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        policy.increment("GET", "/x", response=response(429, "3600"))


def test_total_time_is_bounded():
    policy = ScoutRetry(
        total=100,
        status_forcelist={503},
        backoff_factor=0.01,
        max_elapsed=5.0,
        started=seam.clock().monotonic() - 10,
    )
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        policy.increment("GET", "/x", response=response(503))
    fresh = ScoutRetry(total=100, status_forcelist={503}, backoff_factor=0.01, max_elapsed=5.0)
    copy = fresh.increment("GET", "/x", response=response(503))
    assert copy.started is not None
    assert copy.max_elapsed == 5.0
    assert copy.increment("GET", "/x", response=response(503)).started == copy.started


def test_urllib3_sleeps_on_the_module_clock(fake_clock: Any) -> None:
    policy = RetryPolicy(backoff_factor=0.5).safe_urllib3()
    policy = policy.increment("GET", "/x", response=response(503))
    policy.sleep(response(429, "3"))
    policy.sleep(None)
    assert fake_clock.sleeps[0] == 3.0
    assert 0.25 <= fake_clock.sleeps[1] <= 0.5


def test_poll_budget_grows_by_half_then_caps_without_jitter(fake_clock: Any) -> None:
    pauses = RetryPolicy(poll_interval=(2.0, 5.0)).polling(None).pauses()
    assert [next(pauses) for _ in range(7)] == [0.0, 2.0, 3.0, 4.5, 5.0, 5.0, 5.0]


def test_time_bound_shortens_the_last_pause_then_stops(fake_clock: Any) -> None:
    budget = Budget("test", base=2.0, cap=2.0, total=5.0, jitter=False)
    taken = []
    for pause in budget.pauses():
        seam.sleep(pause)
        taken.append(pause)
    assert taken == [0.0, 2.0, 2.0, 1.0]
    assert fake_clock.sleeps == [2.0, 2.0, 1.0]


def test_attempts_bound_the_tries_and_restart_counts_again(fake_clock: Any) -> None:
    pauses = Budget("test", attempts=3, base=1.0, jitter=False).pauses()
    assert list(pauses) == [0.0, 1.0, 2.0]
    pauses = Budget("test", attempts=3, base=1.0, jitter=False).pauses()
    assert [next(pauses), next(pauses)] == [0.0, 1.0]
    pauses.restart()
    assert list(pauses) == [1.0, 2.0]


def test_equal_jitter_keeps_at_least_half_of_the_pause() -> None:
    budget = Budget("test", base=1.0, cap=100.0)
    for retry_number in range(1, 6):
        values = {budget.pause(retry_number) for _ in range(50)}
        full = 2 ** (retry_number - 1)
        assert all(full / 2 <= v <= full for v in values)
        assert len(values) > 1


def test_call_with_retries_raises_final_errors_at_once(fake_clock: Any) -> None:
    calls = []

    def lookup() -> int:
        calls.append(1)
        raise NotFoundError(404, "gone")

    with pytest.raises(NotFoundError):
        call_with_retries(
            retry.LOOKUP, lookup, lambda e: 0.0 if isinstance(e, ServerError) else None
        )
    assert len(calls) == 1
    assert fake_clock.sleeps == []


def test_call_with_retries_obeys_retry_after_then_gives_the_last_error(fake_clock: Any) -> None:
    answers: list[Any] = [
        RateLimitError(429, "slow", retry_after=4.0),
        ServerError(503, "busy"),
        42,
    ]

    def lookup() -> int:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return int(answer)

    def again(exc: Exception) -> float | None:
        return exc.retry_after if isinstance(exc, RateLimitError) else 0.0

    assert call_with_retries(retry.LOOKUP, lookup, again) == 42
    assert fake_clock.sleeps == [4.0, 0.2]  # Retry-After, then LOOKUP's second pause

    failing = [ServerError(503, f"busy {n}") for n in range(10)]

    def always() -> int:
        raise failing.pop(0)

    with pytest.raises(ServerError, match="busy 4"):
        call_with_retries(retry.LOOKUP, always, lambda e: 0.0)
    assert len(failing) == 5  # LOOKUP allows 5 tries


def test_retry_after_over_the_cap_is_refused() -> None:
    policy = RetryPolicy(retry_after_cap=10.0)
    assert policy.retry_after(None) == 0.0
    assert policy.retry_after(10.0) == 10.0
    assert policy.retry_after(10.5) is None


def test_client_budgets_follow_the_client_settings() -> None:
    policy = RetryPolicy(max_retries=2, backoff_factor=0.25, retry_after_cap=7.0)
    for budget in (policy.request(), policy.rate_limited()):
        assert budget.attempts == 3
        assert budget.base == 0.25
    assert policy.safe_urllib3().retry_after_cap == 7.0
    assert policy.charging_urllib3().total == 2
