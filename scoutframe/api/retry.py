"""Every retry and polling decision of the client, in one place, with its reason.

Two scopes, as in google-cloud-bigquery's ``retry.py``:

*one request* (the wire)
    urllib3's :class:`~urllib3.util.Retry` mounted on the sessions (:class:`ScoutRetry`):
    the *safe* policy for free calls (connect and read errors, 429 and 5xx, jittered backoff,
    ``Retry-After`` obeyed up to a cap), the *charging* policy for calls that spend credits
    (connection errors only, where the request surely never reached the server).
*a loop of requests* (the client)
    a :class:`Budget` per loop: how many tries, the pause before each, the total time. Loops
    are written ``for pause in budget.pauses(): sleep(pause); try ...``.

The budgets that follow the client's settings (``max_retries``, ``backoff_factor``,
``retry_after_cap``, ``poll_interval``) come from its :class:`RetryPolicy`; the fixed ones are
module constants below. Time is read and slept through :mod:`scoutframe.clock`, the one seam
tests swap.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self, TypeVar

import urllib3.exceptions
from urllib3.util.retry import Retry

from .._redact import redact_url
from ..clock import clock, sleep

__all__ = [
    "CHARGING_SENDS",
    "DOWNLOAD_STALLS",
    "LOOKUP",
    "SETTLE_SECONDS",
    "STATUS_NOT_FOUND_GRACE",
    "Budget",
    "Pauses",
    "RetryPolicy",
    "ScoutRetry",
    "call_with_retries",
]

logger = logging.getLogger("scoutframe")
_T = TypeVar("_T")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


# --------------------------------------------------------------------------------------------
# Budgets of loops


@dataclass(frozen=True)
class Budget:
    """How a loop tries again: ``attempts`` tries in all, growing pauses, a total time.

    Attributes
    ----------
    reason
        What the loop retries and why it may (documentation, and log lines).
    attempts
        Tries in all, the first one included; ``None``: bounded by ``total`` only.
    base
        Pause before the first retry, in seconds.
    cap
        Longest pause.
    factor
        Growth of the pause from one retry to the next.
    total
        Seconds from the first try after which no retry starts; the last pause is shortened
        so that it ends on time. ``None``: no time bound.
    jitter
        "Equal jitter": each pause is drawn between half of it and all of it, so clients that
        failed together do not retry together.
    """

    reason: str
    attempts: int | None = None
    base: float = 0.1
    cap: float = 30.0
    factor: float = 2.0
    total: float | None = None
    jitter: bool = True

    def pause(self, retry: int) -> float:
        """Return the pause before retry number ``retry`` (1-based), jitter included."""
        if retry <= 0 or self.base <= 0:
            return 0.0
        value = min(self.cap, self.base * self.factor ** (retry - 1))
        return value / 2 + random.uniform(0, value / 2) if self.jitter else value

    def pauses(self) -> Pauses:
        """Return the pauses of one run: ``0.0`` before the first try, then one a retry."""
        return Pauses(self)


class Pauses:
    """The pauses of one run of a :class:`Budget` (an iterator; it sleeps nothing itself).

    :meth:`at_least` raises the next pause, e.g. to a server's ``Retry-After``.
    """

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.started = clock().monotonic()
        self.tries = 0
        self._at_least = 0.0

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> float:
        budget = self.budget
        if self.tries == 0:
            self.tries = 1
            return 0.0
        if budget.attempts is not None and self.tries >= budget.attempts:
            raise StopIteration
        pause = max(budget.pause(self.tries), self._at_least)
        self._at_least = 0.0
        if budget.total is not None:
            remaining = budget.total - (clock().monotonic() - self.started)
            if remaining <= 0:
                raise StopIteration
            pause = min(pause, remaining)
        self.tries += 1
        return pause

    def restart(self) -> None:
        """Count from the start again (progress was made): the next pause is the first one."""
        self.tries = 1
        self.started = clock().monotonic()
        self._at_least = 0.0

    def at_least(self, seconds: float) -> None:
        """Make the next pause at least ``seconds`` long."""
        self._at_least = max(self._at_least, seconds)


def call_with_retries(
    budget: Budget,
    operation: Callable[[], _T],
    retry_on: Callable[[Exception], float | None],
) -> _T:
    """Run ``operation`` under ``budget``; the last error is raised when the budget is spent.

    Parameters
    ----------
    budget
        The loop's budget.
    operation
        The call to make.
    retry_on
        Given an exception, return ``None`` when it is final (raised at once), or the least
        number of seconds to pause before trying again (0 for the budget's own backoff).
    """
    error: Exception | None = None
    pauses = budget.pauses()
    for pause in pauses:
        sleep(pause)
        try:
            return operation()
        except Exception as exc:
            wait = retry_on(exc)
            if wait is None:
                raise
            pauses.at_least(wait)
            error = exc
            logger.debug("%s: try %d failed (%s)", budget.reason, pauses.tries, type(exc).__name__)
    assert error is not None  # the first pause is always given
    raise error


#: Free, read-only lookups (balance, history, status) after a charging call lost its answer:
#: they decide whether credits were spent, so a transient failure is worth a few quick tries.
LOOKUP = Budget(
    "free lookup after a charging call lost its answer",
    attempts=5,
    base=0.1,
    cap=1.0,
    jitter=False,
)
#: A download of a signed URL that keeps failing without adding a byte: give up after this
#: many attempts in a row (any progress starts the count again; the part file is kept).
DOWNLOAD_STALLS = Budget(
    "download attempts in a row without progress",
    attempts=6,
    base=0.2,
    cap=2.0,
    jitter=False,
)
#: Seconds after an export was created during which a 404 from its status means "not visible
#: yet" (replication lag), not "no such export".
STATUS_NOT_FOUND_GRACE = 30.0
#: How long to watch for the effect of a charging call that may still run on the server (a
#: read timeout, a gateway's 502/504): at least the read timeout, within these bounds.
SETTLE_SECONDS = (5.0, 60.0)
#: Times a charging call is sent when the first one surely took no effect (the balance and
#: the history did not move): once more, never a third time.
CHARGING_SENDS = 2
#: Extra tries of one search page after the transport's own retries gave up on a 429 (many
#: pages in flight against a rate-limited server can spend the per-request budget).
PAGE_RATE_LIMIT_ATTEMPTS = 6


# --------------------------------------------------------------------------------------------
# The client's settings


@dataclass(frozen=True)
class RetryPolicy:
    """The client's retry settings, and the budgets and urllib3 policies made from them.

    Attributes
    ----------
    max_retries
        Retries of one free request (and of connection errors when charging).
    backoff_factor
        Pause before the first retry, in seconds; doubles each time.
    backoff_max
        Longest backoff pause.
    retry_after_cap
        Longest ``Retry-After`` obeyed; a longer one raises ``RateLimitError`` at once.
    max_elapsed
        Seconds one request may spend retrying.
    poll_interval
        ``(first, longest)`` pause between export status polls (the API documentation
        recommends 2-5 s with exponential backoff).
    """

    max_retries: int = 5
    backoff_factor: float = 0.5
    backoff_max: float = 30.0
    retry_after_cap: float = 60.0
    max_elapsed: float = 120.0
    poll_interval: tuple[float, float] = (2.0, 5.0)

    def request(self) -> Budget:
        """Budget one free request whose body broke off after the headers.

        urllib3's retries end with the headers; this has the same count and time bound.
        """
        return Budget(
            "free request whose answer broke off",
            attempts=1 + self.max_retries,
            base=self.backoff_factor,
            cap=self.backoff_max,
            total=self.max_elapsed,
        )

    def rate_limited(self) -> Budget:
        """Budget a request refused with 429 before it ran (nothing happened) and sent again.

        The pause is the server's ``Retry-After`` (see :meth:`retry_after`) or the backoff.
        """
        return Budget(
            "request refused with 429",
            attempts=1 + self.max_retries,
            base=self.backoff_factor,
            cap=self.backoff_max,
        )

    def page_rate_limited(self) -> Budget:
        """Budget a search page whose transport retries all met 429s (many pages in flight)."""
        return Budget(
            "search page refused with 429",
            attempts=PAGE_RATE_LIMIT_ATTEMPTS,
            base=max(self.backoff_factor, 0.5),
            cap=self.backoff_max,
        )

    def polling(self, timeout: float | None) -> Budget:
        """Budget the status polls of an export until ``timeout`` s (``None``: for ever)."""
        first, longest = self.poll_interval
        return Budget(
            "export status poll",
            base=first,
            cap=longest,
            factor=1.5,
            total=timeout,
            jitter=False,
        )

    def retry_after(self, seconds: float | None) -> float | None:
        """Return the pause a ``Retry-After`` asks for, or ``None`` when over the cap."""
        if seconds is None:
            return 0.0
        return seconds if seconds <= self.retry_after_cap else None

    def settle_seconds(self, read_timeout: float) -> float:
        """Return how long to watch for a charging call that may still run on the server."""
        low, high = SETTLE_SECONDS
        return min(max(low, read_timeout), high)

    def safe_urllib3(self) -> ScoutRetry:
        """Return the urllib3 policy of free calls."""
        return ScoutRetry(
            total=self.max_retries,
            connect=self.max_retries,
            read=self.max_retries,
            status=self.max_retries,
            other=0,
            redirect=None,
            allowed_methods=IDEMPOTENT_METHODS,
            status_forcelist=RETRY_STATUSES,
            backoff_factor=self.backoff_factor,
            backoff_max=self.backoff_max,
            raise_on_status=False,
            raise_on_redirect=False,
            respect_retry_after_header=True,
            retry_after_cap=self.retry_after_cap,
            max_elapsed=self.max_elapsed,
        )

    def charging_urllib3(self) -> ScoutRetry:
        """Return the urllib3 policy of calls that spend credits: connection errors only."""
        return ScoutRetry(
            total=self.max_retries,
            connect=self.max_retries,
            read=False,
            status=0,
            other=0,
            redirect=None,
            # No status retries: the forcelist is empty and Retry-After is not obeyed. (An
            # empty allowed_methods would be the same today but is deprecated in urllib3.)
            allowed_methods=None,
            status_forcelist=frozenset(),
            backoff_factor=self.backoff_factor,
            backoff_max=self.backoff_max,
            raise_on_status=False,
            raise_on_redirect=False,
            respect_retry_after_header=False,
            retry_after_cap=self.retry_after_cap,
            max_elapsed=self.max_elapsed,
        )


class ScoutRetry(Retry):
    """urllib3 ``Retry`` with equal jitter, a ``Retry-After`` cap, a time bound, our clock.

    Parameters
    ----------
    retry_after_cap
        Longest ``Retry-After`` (seconds) to sleep for; a longer one stops the retries so the
        caller sees the 429 (:class:`~scoutframe.errors.RateLimitError` with ``retry_after``).
    max_elapsed
        Give up retrying once this many seconds have passed since the first failure.
    **kwargs
        Passed to :class:`urllib3.util.Retry`.
    """

    def __init__(
        self,
        *args: Any,
        retry_after_cap: float = 60.0,
        max_elapsed: float = 120.0,
        started: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after_cap = retry_after_cap
        self.max_elapsed = max_elapsed
        self.started = started

    def new(self, **kw: Any) -> Self:
        """Copy with changes, keeping the cap, the time bound and the start time."""
        kw.setdefault("retry_after_cap", self.retry_after_cap)
        kw.setdefault("max_elapsed", self.max_elapsed)
        kw.setdefault("started", self.started)
        return super().new(**kw)

    def get_backoff_time(self) -> float:
        """Exponential backoff with equal jitter, from the first retry on."""
        errors = 0
        for entry in reversed(self.history):
            if entry.redirect_location is not None:
                break
            errors += 1
        return Budget("urllib3", base=self.backoff_factor, cap=self.backoff_max).pause(errors)

    def sleep(self, response: Any = None) -> None:
        """Sleep before the next try on the module's clock: ``Retry-After`` or the backoff."""
        if response is not None and self.respect_retry_after_header:
            wait = self.get_retry_after(response)
            if wait:
                sleep(wait)
                return
        sleep(self.get_backoff_time())

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> Self:
        """Count one more retry; give up early on a long Retry-After or a spent time budget."""
        now = clock().monotonic()
        started = self.started if self.started is not None else now
        if response is not None and self.respect_retry_after_header:
            wait = self.get_retry_after(response)
            if wait is not None and wait > self.retry_after_cap:
                raise urllib3.exceptions.MaxRetryError(
                    _pool, url or "", urllib3.exceptions.ResponseError("Retry-After above cap")
                )
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        new.started = started
        pause = new.get_backoff_time()
        if response is not None:
            pause = max(pause, new.get_retry_after(response) or 0.0)
        if now - started + pause > self.max_elapsed:
            reason = error or urllib3.exceptions.ResponseError("retry time budget spent")
            raise urllib3.exceptions.MaxRetryError(_pool, url or "", reason)
        cause = (
            type(error).__name__
            if error is not None
            else str(response.status)
            if response is not None
            else "?"
        )
        logger.debug(
            "retry %d of %s %s after %s, in %.2f s",
            len(new.history),
            method,
            redact_url(url or ""),
            cause,
            pause,
        )
        return new
