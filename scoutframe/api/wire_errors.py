"""What requests and urllib3 raise, translated into scoutframe errors: a table, not a chain.

:data:`TABLE` lists the lower libraries' exception classes, most specific first, each with
the builder of our error; :func:`translate` takes the first row that matches. The catch-all
rows at the end only exist for classes a future release may add: ``tests/unit/test_wire_errors``
walks every exception class of both libraries and fails on any that only a catch-all places.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import requests.exceptions as rex
import urllib3.exceptions as uex

from .._redact import redact, redact_url
from ..errors import ConfigurationError, ScoutError, TransportError

__all__ = ["TABLE", "WIRE_EXCEPTIONS", "Failure", "Row", "place", "translate"]

#: Everything the HTTP stack may raise while sending a request or reading its body.
WIRE_EXCEPTIONS: tuple[type[BaseException], ...] = (
    rex.RequestException,
    uex.HTTPError,
    uex.ProxySchemeUnsupported,  # a ValueError, not an HTTPError
    OSError,
)


@dataclass(frozen=True)
class Failure:
    """What was being done when the exception came: for the message.

    Attributes
    ----------
    host
        The host asked (no credentials).
    where
        ``METHOD /path`` with credentials removed.
    elapsed
        Seconds since the request started.
    charging
        Whether it was a charging call (it is not retried, so "after retries" is not said).
    timeout
        The ``(connect, read)`` timeout in force.
    secrets
        Exact values to scrub from the message.
    """

    host: str
    where: str
    elapsed: float
    charging: bool
    timeout: tuple[float, float]
    secrets: tuple[str, ...] = ()

    @property
    def tries(self) -> str:
        """``" (after retries)"`` for free calls, which were retried; ``""`` when charging."""
        return "" if self.charging else " (after retries)"


Builder = Callable[[BaseException, Failure], ScoutError]


@dataclass(frozen=True)
class Row:
    """One line of the table: the classes it places and the builder of our error."""

    classes: tuple[type[BaseException], ...]
    build: Builder
    catch_all: bool = False


def _invalid_request(exc: BaseException, at: Failure) -> ScoutError:
    return ConfigurationError(
        f"Invalid request to {at.where}: {type(exc).__name__}; check base_url, "
        "the proxy settings and the arguments"
    )


def _read_timeout(_: BaseException, at: Failure) -> ScoutError:
    return TransportError(
        f"No answer from {at.host} within the read timeout ({at.timeout[1]:g} s){at.tries} "
        f"for {at.where}. The server may be overloaded; try again, or raise it: "
        "Client(timeout=(5, 120))"
    )


def _connect_timeout(_: BaseException, at: Failure) -> ScoutError:
    return TransportError(
        f"Could not connect to {at.host} within {at.timeout[0]:g} s{at.tries}. Check the "
        "address (base_url / SPHERESCOUT_BASE_URL), your network, proxy and firewall"
    )


def _name_resolution(exc: BaseException, at: Failure) -> ScoutError:
    return TransportError(
        f"Could not resolve the host name {at.host}{at.tries}: {reason(exc)}. Check the "
        "address (base_url / SPHERESCOUT_BASE_URL) and your DNS or network"
    )


def _connect_failed(exc: BaseException, at: Failure) -> ScoutError:
    return TransportError(
        f"Could not connect to {at.host}{at.tries}: {reason(exc)}. Check that the address "
        "is right (base_url / SPHERESCOUT_BASE_URL), that the server is up, and your "
        "network, proxy and firewall"
    )


def _tls(exc: BaseException, at: Failure) -> ScoutError:
    return TransportError(
        f"TLS to {at.host} failed: {reason(exc)}. Check the system clock, corporate proxies "
        "that intercept TLS, and REQUESTS_CA_BUNDLE"
    )


def _proxy(exc: BaseException, at: Failure) -> ScoutError:
    return TransportError(
        f"The proxy refused the connection to {at.host}: {reason(exc)}. Check HTTPS_PROXY"
    )


def _broken(exc: BaseException, at: Failure) -> ScoutError:
    return TransportError(
        f"The connection to {at.host} broke during {at.where} after {at.elapsed:.1f} s"
        f"{at.tries}: {reason(exc)}. Try again; if it persists check your network"
    )


def _connection(exc: BaseException, at: Failure) -> ScoutError:
    """Tell "could not connect" from "broke off" (requests' ConnectionError wraps both)."""
    causes = list(_chain(exc))
    for kind, build in (
        (uex.NameResolutionError, _name_resolution),
        (uex.NewConnectionError | ConnectionRefusedError, _connect_failed),
        (uex.ReadTimeoutError, _read_timeout),  # the last retry timed out
        (uex.ConnectTimeoutError, _connect_timeout),
    ):
        found = next((c for c in causes if isinstance(c, kind)), None)
        if found is not None:
            return build(exc if build is _connect_failed else found, at)
    return _broken(exc, at)


def _redirects(_: BaseException, at: Failure) -> ScoutError:
    return TransportError(
        f"{at.where} was redirected too many times; check base_url (SPHERESCOUT_BASE_URL): "
        "the SphereScout API does not redirect"
    )


def _retries_spent(exc: BaseException, at: Failure) -> ScoutError:
    return TransportError(
        f"{at.where} kept failing{at.tries}: {reason(exc)}. Try again in a minute"
    )


def _library_state(exc: BaseException, at: Failure) -> ScoutError:
    return TransportError(
        f"The HTTP library failed on {at.where} ({type(exc).__name__}: {reason(exc)}). Try "
        "again; if it persists please report it with this message"
    )


#: Most specific first: the first row whose classes match an exception builds our error.
TABLE: tuple[Row, ...] = (
    Row(
        (
            rex.InvalidURL,
            rex.MissingSchema,
            rex.InvalidSchema,
            rex.URLRequired,
            rex.InvalidHeader,
            uex.LocationValueError,
            uex.ProxySchemeUnsupported,
            uex.InvalidHeader,
        ),
        _invalid_request,
    ),
    Row((rex.ConnectTimeout,), _connect_timeout),
    Row((rex.ReadTimeout, uex.ReadTimeoutError), _read_timeout),
    Row((rex.SSLError, uex.SSLError), _tls),
    Row((rex.ProxyError, uex.ProxyError), _proxy),
    Row((uex.NameResolutionError,), _name_resolution),
    Row((uex.NewConnectionError, ConnectionRefusedError), _connect_failed),
    Row((uex.ConnectTimeoutError,), _connect_timeout),
    Row((rex.ConnectionError,), _connection),
    Row((rex.Timeout, uex.TimeoutError), _read_timeout),
    Row((rex.TooManyRedirects,), _redirects),
    Row(
        (
            rex.ChunkedEncodingError,
            rex.ContentDecodingError,
            uex.ProtocolError,
            uex.IncompleteRead,
            uex.InvalidChunkLength,
            uex.DecodeError,
            uex.HeaderParsingError,
            uex.BodyNotHttplibCompatible,
            ConnectionError,
            TimeoutError,
        ),
        _broken,
    ),
    Row((rex.RetryError, uex.MaxRetryError, uex.ResponseError), _retries_spent),
    Row(
        (
            rex.StreamConsumedError,
            rex.UnrewindableBodyError,
            rex.InvalidJSONError,
            rex.HTTPError,
            uex.PoolError,
            uex.TimeoutStateError,
            uex.UnrewindableBodyError,
        ),
        _library_state,
    ),
    # Only for classes a future release of requests or urllib3 may add.
    Row((rex.RequestException, uex.HTTPError, OSError), _broken, catch_all=True),
)


def place(kind: type[BaseException]) -> Row | None:
    """Return the first row of :data:`TABLE` that places the exception class ``kind``."""
    for row in TABLE:
        if issubclass(kind, row.classes):
            return row
    return None


def translate(exc: BaseException, at: Failure) -> ScoutError:
    """Return the scoutframe error for ``exc`` (an exception of :data:`WIRE_EXCEPTIONS`)."""
    row = place(type(exc))
    build = row.build if row is not None else _library_state
    error = build(exc, at)
    return type(error)(redact(error.message, at.secrets))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """Yield ``exc`` and what it wraps (args, a MaxRetryError's reason, causes, contexts)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        nxt: Any = None
        if isinstance(current, uex.MaxRetryError) and current.reason is not None:
            nxt = current.reason
        elif current.args and isinstance(current.args[0], BaseException):
            nxt = current.args[0]
        else:
            nxt = current.__cause__ or current.__context__
        current = nxt if isinstance(nxt, BaseException) else None


def reason(exc: BaseException) -> str:
    """Describe a low-level error briefly, without credentials or request URLs."""
    inner: Any = exc.args[0] if exc.args else exc
    if isinstance(inner, uex.MaxRetryError) and inner.reason is not None:
        inner = inner.reason
    if isinstance(inner, uex.NewConnectionError):
        return redact_url(str(inner).split(": ", 1)[-1])
    if isinstance(inner, tuple | list) and inner and isinstance(inner[0], str):
        inner = inner[0]  # ("Connection broken: ...", IncompleteRead(...))
    elif (
        isinstance(inner, BaseException) and len(inner.args) > 1 and isinstance(inner.args[0], str)
    ):
        inner = inner.args[0]
    text = str(inner)
    # urllib3 messages quote the request path (and its query) after "url:".
    if "url:" in text:
        text = text.split("url:", 1)[0].rstrip(" (,")
    return redact(text)[:300] or type(inner).__name__
