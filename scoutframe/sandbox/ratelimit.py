"""Token-bucket rate limiting per key (credential or client address), thread-safe.

Each key owns a bucket of ``burst`` tokens refilled at ``rate`` tokens a second; a request
takes one token or is refused. Buckets that have refilled completely carry no information
(a new bucket would be identical), so they are dropped in amortised sweeps: memory stays
proportional to the number of recently active keys.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RateDecision", "RateLimiter"]

# Sweep idle buckets once the table has grown to this many keys (then to twice the survivors).
_MIN_SWEEP_SIZE = 1024


@dataclass(frozen=True)
class RateDecision:
    """The outcome of one :meth:`RateLimiter.hit`.

    Attributes
    ----------
    allowed
        Whether the request may proceed (a token was taken).
    limit
        The bucket's capacity (``burst``), for ``X-RateLimit-Limit``.
    remaining
        Whole tokens left after this request, for ``X-RateLimit-Remaining``.
    reset
        Seconds until the bucket is full again, for ``X-RateLimit-Reset``.
    retry_after
        Whole seconds until the next token when refused (at least 1); 0 when allowed.
    """

    allowed: bool
    limit: int
    remaining: int
    reset: float
    retry_after: int


class RateLimiter:
    """Token buckets keyed by string.

    Parameters
    ----------
    rate
        Tokens added per second (> 0).
    burst
        Bucket capacity: how many requests may come at once (>= 1).
    clock
        Monotonic time source in seconds; injectable for tests.
    """

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not (isinstance(rate, int | float) and math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a positive number of tokens per second, got {rate!r}")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"burst must be an integer >= 1, got {burst!r}")
        self.rate = float(rate)
        self.burst = burst
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (tokens, time of last update)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._sweep_at = _MIN_SWEEP_SIZE

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate!r}, burst={self.burst!r}, keys={len(self._buckets)})"

    def __len__(self) -> int:
        """Return the number of buckets held (full, idle buckets are dropped)."""
        return len(self._buckets)

    def hit(self, key: str) -> RateDecision:
        """Take one token from ``key``'s bucket, if there is one.

        Parameters
        ----------
        key
            Who is asking: a credential id or a client address.

        Returns
        -------
        RateDecision
            Whether the request is allowed, and the values for the rate-limit headers.
        """
        with self._lock:
            now = self._clock()
            tokens = self._tokens(key, now)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) >= self._sweep_at:
                self._sweep(now)
        missing = self.burst - tokens
        retry_after = 0 if allowed else max(1, math.ceil((1.0 - tokens) / self.rate))
        return RateDecision(
            allowed=allowed,
            limit=self.burst,
            remaining=int(tokens),
            reset=max(0.0, missing / self.rate),
            retry_after=retry_after,
        )

    def _tokens(self, key: str, now: float) -> float:
        """Tokens in ``key``'s bucket at ``now`` (caller holds the lock)."""
        state = self._buckets.get(key)
        if state is None:
            return float(self.burst)
        tokens, updated = state
        # A clock that steps back (an injected one) must not drain the bucket.
        elapsed = max(0.0, now - updated)
        return min(float(self.burst), tokens + elapsed * self.rate)

    def _sweep(self, now: float) -> None:
        """Drop the buckets that are full again (caller holds the lock)."""
        full = [key for key in self._buckets if self._tokens(key, now) >= self.burst]
        for key in full:
            del self._buckets[key]
        self._sweep_at = max(_MIN_SWEEP_SIZE, 2 * len(self._buckets))
