"""Calls that spend credits: refused when unaffordable, and never paid twice.

Export starts and delta downloads go through :func:`charge_once`, after the pattern of
google-cloud-bigquery's ``_job_helpers.query_jobs_insert``:

1. the call is sent once (the transport's *charging* policy retries only connection errors,
   where the request surely never reached the server);
2. a 429 was refused before anything ran: it is sent again after ``Retry-After`` (capped);
3. after an ambiguous failure (a 5xx, a broken or unreadable answer, a timeout) it **looks**
   before anything else: did the balance move, does the server know the job? What it finds is
   adopted; when the request may still run upstream (a read timeout, a gateway's 502/504) it
   watches for a while and, if nothing shows, raises rather than sending again;
4. only when the server surely did nothing (it answered, and the balance did not move) is the
   call sent once more, and never a third time.

Every outcome has one message, whatever the call; the caller picks the error class.

Before any charging call is sent, :func:`ensure_affordable` refuses it when its known cost is
over the caller's budget (:func:`check_budget`) or the account's balance: nothing is spent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from ..clock import clock, sleep
from ..errors import (
    APIError,
    BudgetError,
    InsufficientCreditsError,
    LocalFileError,
    RateLimitError,
    ScoutError,
    ServerError,
    TransportError,
)
from . import retry
from .wire_errors import WIRE_EXCEPTIONS

if TYPE_CHECKING:
    from .client import Client

__all__ = [
    "AmbiguousAnswerError",
    "ChargingCall",
    "charge_once",
    "check_budget",
    "ensure_affordable",
    "may_still_run",
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


class AmbiguousAnswerError(Exception):
    """The server answered a charging call with something unreadable: it may have charged."""


#: Failures after which the call may or may not have taken effect (5xx is an APIError).
AMBIGUOUS: tuple[type[BaseException], ...] = (
    TransportError,
    AmbiguousAnswerError,
    ValueError,
    *WIRE_EXCEPTIONS,
)
#: Failures of the free lookups that decide whether a call took effect.
_LOOKUP_FAILURES: tuple[type[BaseException], ...] = (APIError, *AMBIGUOUS)


@dataclass
class ChargingCall(Generic[_T]):
    """One charging call and how to recognise its effect.

    Attributes
    ----------
    what
        The call in words, for messages: ``"the export start"``.
    send
        Sends it once and returns its result.
    adopt
        After the balance moved: the result the lost call created, or ``None`` when it cannot
        be found (yet). May raise the lookups' errors; they are retried.
    trace
        Where the charge shows, for messages (``" as history entry 12"``); ``""`` if unknown.
    error
        Builds the error to raise from a message and whether the call was charged (``True``),
        surely not (``False``) or unknown (``None``); each caller keeps its documented class.
    """

    what: str
    send: Callable[[], _T]
    adopt: Callable[[], _T | None]
    error: Callable[[str, bool | None], ScoutError]
    trace: Callable[[], str] = lambda: ""


def charge_once(client: Client, call: ChargingCall[_T], *, balance: int) -> _T:
    """Send ``call`` so that it is charged at most once; return its result.

    Parameters
    ----------
    client
        The client (its retry policy, profile and timeouts are used).
    call
        The call and its lookups.
    balance
        The account's balance read just before (the baseline of "did it charge").

    Raises
    ------
    ScoutError
        ``call.error(...)`` when the outcome stays unknown or the call failed twice without
        taking effect; the call's own ``APIError`` for a refusal (400, 403, 404, ...).
    """
    policy = client.retry
    refused = policy.rate_limited().pauses()
    next(refused)  # the first send has no pause
    sends = 0
    while True:
        sent = clock().monotonic()
        try:
            return call.send()
        except RateLimitError as exc:
            # Refused before anything ran: wait (within the cap and the budget) and send again.
            wait = policy.retry_after(exc.retry_after)
            pause = None if wait is None else next(refused, None)
            if pause is None:
                raise
            sleep(max(pause, wait or 0.0))
            logger.info("%s was refused with 429; sent again", call.what)
            continue
        except APIError as exc:
            if not isinstance(exc, ServerError):
                raise
            error: BaseException = exc
        except LocalFileError:
            raise  # an OSError of the disk here, after the server answered: it says what is kept
        except AMBIGUOUS as exc:
            error = exc
        in_flight = may_still_run(client, error, clock().monotonic() - sent)
        patience = policy.settle_seconds(client.transport.timeout[1]) if in_flight else 0.0
        found, charged = _look(client, call.adopt, balance, patience)
        if found is not None:
            logger.info("%s lost its answer; adopted what it created", call.what)
            return found
        sends += 1
        message = _outcome(call, charged, in_flight, patience, sends)
        if message is not None:
            surely = None if in_flight and not charged else charged
            raise call.error(message, surely) from error
        logger.info("%s failed without taking effect; sending it once more", call.what)


def _outcome(
    call: ChargingCall[_T], charged: bool | None, in_flight: bool, patience: float, sends: int
) -> str | None:
    """Return the message for a call that lost its answer (``None``: send it again)."""
    if charged is None:
        return (
            f"{call.what} broke off and the account's balance could not be read afterwards, "
            "so whether it was charged is unknown; check client.profile().credits and "
            "client.history.list() before trying again"
        )
    if charged:
        return (
            f"{call.what} broke off after the server charged it{call.trace()}, and what it "
            "made could not be found; it was not sent again to avoid paying twice: check "
            "client.history.list() before trying again"
        )
    if in_flight:
        return (
            f"{call.what} got no answer in time and nothing shows it was charged after "
            f"{patience:g} s; the server may still run it, so it was not sent again: check "
            "client.profile().credits and client.history.list() in a minute before trying again"
        )
    if sends >= retry.CHARGING_SENDS:
        return (
            f"{call.what} failed {sends} times without taking effect; nothing was charged. "
            "Run it again in a minute"
        )
    return None


def _look(
    client: Client, adopt: Callable[[], _T | None], balance: int, patience: float
) -> tuple[_T | None, bool | None]:
    """Watch up to ``patience`` s for the charge and the result of a call that lost its answer.

    Returns what was adopted (or ``None``) and whether the balance shows the charge (``None``
    when the balance could not be read).
    """
    watch = client.retry.polling(patience).pauses()
    charged: bool | None = None
    for pause in watch:
        sleep(pause)
        charged = _charged_since(client, balance)
        if charged:
            try:
                found = retry.call_with_retries(retry.LOOKUP, adopt, _transient)
            except _LOOKUP_FAILURES:
                found = None  # not readable now: look again until the deadline
            if found is not None:
                return found, True
        if charged is None:
            break
    return None, charged


def _charged_since(client: Client, balance: int) -> bool | None:
    """Whether the balance dropped since ``balance`` was read; ``None`` if unknowable."""
    try:
        credits = retry.call_with_retries(
            retry.LOOKUP, lambda: client.profile().credits, _transient
        )
    except _LOOKUP_FAILURES:
        return None
    return credits < balance


def _transient(exc: Exception) -> float | None:
    """Retry policy of the free lookups: 429 and 5xx and broken answers yes, other 4xx no."""
    if isinstance(exc, APIError) and not isinstance(exc, ServerError | RateLimitError):
        return None
    if isinstance(exc, _LOOKUP_FAILURES):
        return 0.0
    return None


def may_still_run(client: Client, error: BaseException, elapsed: float) -> bool:
    """Whether a failed charging request may still be running on the server.

    A read timeout (the failure took about the read timeout) or a gateway's 502/504 leave the
    request possibly in flight upstream; a broken answer or a 500/503 mean the server has
    already decided, so the balance and the history show whether it took effect.
    """
    if isinstance(error, ServerError):
        return error.status in (502, 504)
    if isinstance(error, AmbiguousAnswerError):
        return False
    return elapsed >= 0.9 * client.transport.timeout[1]


def check_budget(cost: int | None, max_credits: int | None, *, what: str, hint: str) -> None:
    """Raise :class:`BudgetError` when ``cost`` credits are known to exceed ``max_credits``."""
    if max_credits is not None and cost is not None and cost > max_credits:
        raise BudgetError(
            f"{what} would cost {cost} credits, more than max_credits={max_credits}; nothing "
            f"was spent. {hint}"
        )


def ensure_affordable(
    client: Client, cost: int | None, max_credits: int | None, *, what: str, hint: str
) -> int:
    """Refuse a charging request before it is sent; return the balance it was checked against.

    ``BudgetError`` above ``max_credits``, then :class:`InsufficientCreditsError` above the
    account's balance (one free profile request). An unknown ``cost`` passes both.
    """
    check_budget(cost, max_credits, what=what, hint=hint)
    balance = client.profile().credits
    if cost is not None and cost > balance:
        raise InsufficientCreditsError.from_counts(cost, balance)
    return balance
