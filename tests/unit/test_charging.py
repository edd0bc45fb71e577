"""The charging-call protocol without sockets: scripted answers, a fake clock, exact counts.

Each scenario scripts what the server does to the charging call (``sends``) and what the free
lookups see afterwards (``balances``, ``adopted``), and checks how many times the call was
sent, the pauses taken and the outcome: never a second send once the balance moved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from scoutframe import clock as seam
from scoutframe.api import retry
from scoutframe.api.billing import AmbiguousAnswerError, ChargingCall, charge_once
from scoutframe.api.retry import RetryPolicy
from scoutframe.errors import (
    BadRequestError,
    RateLimitError,
    ScoutError,
    ServerError,
    TransportError,
)

START_BALANCE = 1_000


class ScriptedError(ScoutError):
    """The error class this caller documents; it keeps what the protocol knew of the charge."""

    def __init__(self, message: str, charged: bool | None = None) -> None:
        super().__init__(message)
        self.charged = charged


@dataclass
class Script:
    """What the server answers, in order; the last balance repeats."""

    sends: list[Any]
    balances: list[Any] = field(default_factory=lambda: [START_BALANCE])
    adopted: list[Any] = field(default_factory=lambda: [None])
    sent: int = 0
    looks: int = 0
    adopt_calls: int = 0
    read_timeout: float = 60.0

    def send(self) -> str:
        self.sent += 1
        answer = self.sends.pop(0)
        if isinstance(answer, float):  # the request hangs this long, then times out
            seam.sleep(answer)
            raise TransportError("No answer within the read timeout")
        if isinstance(answer, BaseException):
            raise answer
        return str(answer)

    def profile(self) -> Any:
        self.looks += 1
        balance = self.balances.pop(0) if len(self.balances) > 1 else self.balances[0]
        if isinstance(balance, BaseException):
            raise balance
        return type("Profile", (), {"credits": balance})()

    def adopt(self) -> str | None:
        self.adopt_calls += 1
        found = self.adopted.pop(0) if len(self.adopted) > 1 else self.adopted[0]
        return None if found is None else str(found)


class FakeClient:
    def __init__(self, script: Script, **policy: Any) -> None:
        self.retry = RetryPolicy(**{"backoff_factor": 0.5, "poll_interval": (1.0, 2.0), **policy})
        self.transport = type("T", (), {"timeout": (5.0, script.read_timeout)})()
        self.profile = script.profile


def run(script: Script, **policy: Any) -> str:
    call = ChargingCall(
        what="the test start",
        send=script.send,
        adopt=script.adopt,
        error=ScriptedError,
        trace=lambda: " as history entry 9",
    )
    return charge_once(FakeClient(script, **policy), call, balance=START_BALANCE)  # type: ignore[arg-type]


def test_a_clean_answer_is_sent_once_and_nothing_is_looked_up(fake_clock: Any) -> None:
    script = Script(sends=["job-1"])
    assert run(script) == "job-1"
    assert (script.sent, script.looks, fake_clock.sleeps) == (1, 0, [])


def test_a_429_is_sent_again_after_retry_after(fake_clock: Any) -> None:
    script = Script(sends=[RateLimitError(429, "slow", retry_after=2.0), "job-1"])
    assert run(script) == "job-1"
    assert script.sent == 2
    assert script.looks == 0  # a 429 is refused before anything runs: nothing to check
    assert fake_clock.sleeps == [2.0]


def test_a_429_above_the_cap_is_raised_without_waiting(fake_clock: Any) -> None:
    script = Script(sends=[RateLimitError(429, "slow", retry_after=30.0), "job-1"])
    with pytest.raises(RateLimitError):
        run(script, retry_after_cap=10.0)
    assert (script.sent, fake_clock.sleeps) == (1, [])


def test_429s_stop_after_the_clients_retries(fake_clock: Any) -> None:
    script = Script(sends=[RateLimitError(429, "slow", retry_after=None)] * 10)
    with pytest.raises(RateLimitError):
        run(script, max_retries=2)
    assert script.sent == 3
    assert len(fake_clock.sleeps) == 2
    assert all(0.25 <= pause <= 1.0 for pause in fake_clock.sleeps)  # the client's backoff


def test_a_refusal_is_raised_at_once(fake_clock: Any) -> None:
    script = Script(sends=[BadRequestError(400, "bad", {"search_id": ["unknown"]})])
    with pytest.raises(BadRequestError):
        run(script)
    assert (script.sent, script.looks) == (1, 0)


def test_a_500_that_took_no_effect_is_sent_once_more(fake_clock: Any) -> None:
    script = Script(sends=[ServerError(500, "oops"), "job-2"])
    assert run(script) == "job-2"
    assert script.sent == 2
    assert script.looks == 1  # the balance was read once before sending again
    assert script.adopt_calls == 0


def test_two_failures_without_effect_stop_with_the_run_it_again_message(fake_clock: Any) -> None:
    script = Script(sends=[ServerError(503, "busy"), AmbiguousAnswerError("[]")])
    with pytest.raises(
        ScriptedError,
        match=r"failed 2 times without taking effect; nothing "
        r"was charged\. Run it again",
    ) as caught:
        run(script)
    assert script.sent == 2
    assert caught.value.charged is False


def test_a_charged_call_that_lost_its_answer_is_adopted_not_sent_again(fake_clock: Any) -> None:
    script = Script(
        sends=[AmbiguousAnswerError("[]")], balances=[START_BALANCE - 40], adopted=["job-found"]
    )
    assert run(script) == "job-found"
    assert script.sent == 1


def test_a_charge_whose_job_cannot_be_found_is_reported_with_its_trace(fake_clock: Any) -> None:
    script = Script(sends=[ServerError(500, "oops")], balances=[START_BALANCE - 40])
    with pytest.raises(ScriptedError, match="charged it as history entry 9") as caught:
        run(script)
    assert script.sent == 1
    assert "not sent again" in str(caught.value)
    assert isinstance(caught.value.__cause__, ServerError)
    assert caught.value.charged is True


def test_a_gateway_timeout_is_watched_then_adopted_when_the_charge_shows(fake_clock: Any) -> None:
    script = Script(
        sends=[ServerError(504, "gateway")],
        balances=[START_BALANCE, START_BALANCE, START_BALANCE - 40],
        adopted=[None, "job-late"],
    )
    assert run(script) == "job-late"
    assert script.sent == 1
    assert script.adopt_calls == 2  # the charge showed at the third look, the job at the fourth
    assert fake_clock.sleeps == [1.0, 1.5, 2.0]  # the poll pauses while watching


def test_a_request_that_may_still_run_is_never_sent_again(fake_clock: Any) -> None:
    script = Script(sends=[60.0, "job-2"], read_timeout=60.0)  # hangs for the read timeout
    with pytest.raises(
        ScriptedError, match="no answer in time and nothing shows it was charged after 60 s"
    ) as caught:
        run(script)
    assert script.sent == 1
    assert caught.value.charged is None  # it may still be charged
    waited = sum(fake_clock.sleeps) - 60.0
    assert waited == pytest.approx(60.0)  # watched for the settle time (read timeout, <= 60 s)


def test_an_unreadable_balance_says_the_outcome_is_unknown(fake_clock: Any) -> None:
    script = Script(sends=[ServerError(500, "oops")], balances=[ServerError(503, "down")])
    with pytest.raises(ScriptedError, match="balance could not be read") as caught:
        run(script)
    assert caught.value.charged is None
    assert script.sent == 1
    assert script.looks == retry.LOOKUP.attempts
