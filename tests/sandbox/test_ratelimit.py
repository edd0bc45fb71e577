"""Token-bucket rate limiter: burst, refill, headers' values, threads, bounded memory."""

from __future__ import annotations

import threading

import pytest

from scoutframe.sandbox.ratelimit import RateLimiter


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_burst_then_refusal_with_retry_after() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=20, burst=40, clock=clock)
    decisions = [limiter.hit("key") for _ in range(41)]
    assert all(d.allowed for d in decisions[:40])
    assert [d.remaining for d in decisions[:3]] == [39, 38, 37]
    assert decisions[39].remaining == 0
    refused = decisions[40]
    assert not refused.allowed
    assert refused.limit == 40
    assert refused.remaining == 0
    assert refused.retry_after == 1
    assert refused.reset == pytest.approx(2.0)
    assert decisions[0].retry_after == 0


def test_refill_follows_the_clock() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=2, burst=2, clock=clock)
    assert limiter.hit("k").allowed
    assert limiter.hit("k").allowed
    assert not limiter.hit("k").allowed
    clock.now += 0.25  # half a token
    assert not limiter.hit("k").allowed
    clock.now += 0.25
    decision = limiter.hit("k")
    assert decision.allowed
    assert decision.remaining == 0
    clock.now += 100
    assert limiter.hit("k").remaining == 1  # capped at burst, minus this request


def test_slow_rate_retry_after_is_whole_seconds_until_next_token() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=10 / 60, burst=10, clock=clock)  # the public endpoint
    for _ in range(10):
        assert limiter.hit("1.2.3.4").allowed
    refused = limiter.hit("1.2.3.4")
    assert not refused.allowed
    assert refused.retry_after == 6
    assert refused.reset == pytest.approx(60.0)
    clock.now += 5.9
    assert not limiter.hit("1.2.3.4").allowed
    clock.now += 0.2
    assert limiter.hit("1.2.3.4").allowed


def test_keys_are_independent() -> None:
    limiter = RateLimiter(rate=1, burst=1, clock=FakeClock())
    assert limiter.hit("a").allowed
    assert not limiter.hit("a").allowed
    assert limiter.hit("b").allowed


def test_clock_stepping_back_does_not_drain_or_crash() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=1, burst=3, clock=clock)
    limiter.hit("k")
    clock.now -= 50
    decision = limiter.hit("k")
    assert decision.allowed
    assert decision.remaining == 1


def test_threads_never_get_more_than_the_burst() -> None:
    limiter = RateLimiter(rate=1e-9, burst=100, clock=FakeClock())
    allowed: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        results = [limiter.hit("shared").allowed for _ in range(50)]
        with lock:
            allowed.extend(results)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed) == 400
    assert sum(allowed) == 100


def test_idle_full_buckets_are_dropped() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=10, burst=5, clock=clock)
    for i in range(5000):
        limiter.hit(f"client-{i}")
    assert len(limiter) <= 5000
    clock.now += 1.0  # every bucket refilled: they carry no information any more
    for i in range(4000):
        limiter.hit(f"other-{i}")
    # Sweeps run when the table doubles (amortised O(1) a hit); by 8192 keys the 5000 idle
    # buckets have been dropped and only the recent ones remain.
    assert len(limiter) <= 4000
    # A dropped key starts again with a full bucket.
    assert limiter.hit("client-1").remaining == 4


def test_active_buckets_survive_a_sweep() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=0.001, burst=2, clock=clock)
    limiter.hit("busy")
    limiter.hit("busy")
    for i in range(3000):
        limiter.hit(f"c{i}")
    assert not limiter.hit("busy").allowed


@pytest.mark.parametrize(
    ("rate", "burst"), [(0, 1), (-1, 5), (float("nan"), 5), (1, 0), (1, 2.5), (1, True)]
)
def test_invalid_parameters(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match=r"rate|burst"):
        RateLimiter(rate=rate, burst=burst)
