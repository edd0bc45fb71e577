"""The clock seam: time as every retry, polling and freshness decision sees it.

Wall time, monotonic time and sleep are read through :func:`clock`, the one seam tests swap
(:func:`use_clock`), so a test can run an hour of polling in no time and assert the pauses.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime

__all__ = ["Clock", "clock", "sleep", "use_clock"]


class Clock:
    """Time as every retry and polling loop sees it: wall time, monotonic time, sleep."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Pause the calling thread."""
        time.sleep(seconds)

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)


_clock = Clock()


def clock() -> Clock:
    """Return the clock in use (the real one unless a test swapped it)."""
    return _clock


@contextlib.contextmanager
def use_clock(replacement: Clock) -> Iterator[Clock]:
    """Run a block with another clock (tests: a fake one that records pauses)."""
    global _clock
    previous, _clock = _clock, replacement
    try:
        yield replacement
    finally:
        _clock = previous


def sleep(seconds: float) -> None:
    """Sleep on the current clock; a pause of 0 or less returns at once."""
    if seconds > 0:
        _clock.sleep(seconds)
