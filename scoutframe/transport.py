"""The wire: one keep-alive session to the API, retry policies, error mapping, logging.

Retries, backoff with jitter and ``Retry-After`` come from urllib3's :class:`~urllib3.util.Retry`
mounted on a :class:`requests.adapters.HTTPAdapter` (no hand-written loop). Two policies:

*safe* (free calls)
    connection errors, read errors, 429 and 5xx are retried for idempotent methods, with
    jittered exponential backoff, ``Retry-After`` honoured up to a cap (a longer one raises
    :class:`~scoutframe.errors.RateLimitError` at once instead of sleeping), bounded in count
    and in total time.
*charging* (calls that spend credits)
    only connection errors, where the request surely never reached the server; anything else
    raises so the caller can look at the account before a second attempt.

Downloads of pre-signed URLs go through a second session that carries no auth at all.
"""

from __future__ import annotations

import ipaddress
import json as jsonlib
import logging
import random
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Self
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ._redact import redact, redact_url
from .auth import OriginAuth, origin_of
from .config import refuse_userinfo
from .errors import APIError, ConfigurationError, ScoutError, TransportError, error_for_status

__all__ = ["ScoutRetry", "Transport", "is_loopback", "user_agent"]

logger = logging.getLogger("scoutframe")


class _RedactingFilter(logging.Filter):
    """Scrub credentials from urllib3's own debug lines (they quote full request URLs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True


_URLLIB3_LOGGER = logging.getLogger("urllib3.connectionpool")
if not any(isinstance(f, _RedactingFilter) for f in _URLLIB3_LOGGER.filters):
    _URLLIB3_LOGGER.addFilter(_RedactingFilter())

Params = Sequence[tuple[str, str]] | Mapping[str, Any] | None
Timeout = float | tuple[float, float]

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


def user_agent() -> str:
    """``scoutframe/<version>`` (some edges block generic HTTP-library User-Agents)."""
    from . import __version__

    return f"scoutframe/{__version__}"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost``, in 127.0.0.0/8 or ``::1``."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, allow_http: bool, what: str = "base_url") -> None:
    """Refuse anything but https (or http to a loopback host, or with ``allow_http``)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        raise ConfigurationError(f"{what} {redact_url(url)!r} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigurationError(
            f"{what} {redact_url(url)!r} is not an http(s) URL; use e.g. "
            "'https://www.spherescout.io'"
        )
    if parts.scheme == "http" and not allow_http and not is_loopback(host):
        raise ConfigurationError(
            f"Refusing plain http to {host}: credentials and data would travel unencrypted. "
            "Use https, or pass allow_http=True if you really mean it"
        )


class ScoutRetry(Retry):
    """urllib3 ``Retry`` with full jitter, a cap on ``Retry-After`` and a total-time bound.

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
        """Exponential backoff with jitter, from the first retry on."""
        errors = 0
        for entry in reversed(self.history):
            if entry.redirect_location is not None:
                break
            errors += 1
        return jittered_backoff(self.backoff_factor, errors, self.backoff_max)

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
        started = self.started if self.started is not None else time.monotonic()
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
        if time.monotonic() - started + pause > self.max_elapsed:
            reason = error or urllib3.exceptions.ResponseError("retry time budget spent")
            raise urllib3.exceptions.MaxRetryError(_pool, url or "", reason)
        cause = type(error).__name__ if error is not None else getattr(response, "status", "?")
        logger.debug("retry %d of %s %s after %s, in %.2f s", len(new.history), method,
                     redact_url(url or ""), cause, pause)  # fmt: skip
        return new


def jittered_backoff(factor: float, errors: int, cap: float = 30.0) -> float:
    """Pause before retry number ``errors`` (1-based): exponential, with "equal jitter".

    At least half the exponential delay, so the backoff still grows; 0 before the first retry.
    """
    if errors <= 0 or factor <= 0:
        return 0.0
    value = min(cap, factor * (2 ** (errors - 1)))
    return float(value / 2 + random.uniform(0, value / 2))


def safe_retry(max_retries: int, backoff_factor: float, max_elapsed: float) -> ScoutRetry:
    """Return the policy for free calls."""
    return ScoutRetry(
        total=max_retries,
        connect=max_retries,
        read=max_retries,
        status=max_retries,
        other=0,
        redirect=None,
        allowed_methods=_IDEMPOTENT,
        status_forcelist=_RETRY_STATUSES,
        backoff_factor=backoff_factor,
        backoff_max=30.0,
        raise_on_status=False,
        raise_on_redirect=False,
        respect_retry_after_header=True,
        max_elapsed=max_elapsed,
    )


def charging_retry(max_retries: int, backoff_factor: float, max_elapsed: float) -> ScoutRetry:
    """Return the policy for calls that spend credits: connection errors only."""
    return ScoutRetry(
        total=max_retries,
        connect=max_retries,
        read=False,
        status=0,
        other=0,
        redirect=None,
        # No status retries: the forcelist is empty and Retry-After is not obeyed. (An empty
        # allowed_methods would be the same today but is deprecated in urllib3.)
        allowed_methods=None,
        status_forcelist=frozenset(),
        backoff_factor=backoff_factor,
        backoff_max=30.0,
        raise_on_status=False,
        raise_on_redirect=False,
        respect_retry_after_header=False,
        max_elapsed=max_elapsed,
    )


class _ApiSession(requests.Session):
    """The API session: picks the charging adapter when asked; strict about auth on redirects."""

    def __init__(self, origin: tuple[str, str, int], charging_adapter: HTTPAdapter) -> None:
        super().__init__()
        self._origin = origin
        self._charging_adapter = charging_adapter
        self.policy = threading.local()

    def get_adapter(self, url: str) -> Any:
        if getattr(self.policy, "charging", False):
            return self._charging_adapter
        return super().get_adapter(url)

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: Any) -> None:  # noqa: ARG002
        # requests strips Authorization only on a host change; we also strip it on a scheme or
        # port change, and never add netrc credentials to a redirect.
        url = prepared_request.url or ""
        if "Authorization" in prepared_request.headers and origin_of(url) != self._origin:
            del prepared_request.headers["Authorization"]


class _NoAuthSession(requests.Session):
    """The download session: never sends an Authorization header, whatever it is given."""

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        request.auth = None
        prepared = super().prepare_request(request)
        prepared.headers.pop("Authorization", None)
        prepared.headers.pop("Proxy-Authorization", None)
        return prepared

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: Any) -> None:  # noqa: ARG002
        prepared_request.headers.pop("Authorization", None)


class Transport:
    """HTTP to the API origin (signed) and to download hosts (never signed).

    Parameters
    ----------
    base_url
        The API origin (``https://www.spherescout.io``); a path is not allowed.
    auth
        Signs requests to ``base_url`` only; ``None`` for anonymous use.
    timeout
        ``(connect, read)`` seconds, or one number for both.
    max_retries
        Retries of one request under the safe policy (and of connection errors when charging).
    backoff_factor
        Base of the exponential backoff, in seconds.
    max_elapsed
        Bound on the total time spent retrying one request.
    retry_after_cap
        Longest ``Retry-After`` to wait for; a longer one raises ``RateLimitError``.
    allow_http
        Allow plain http to hosts other than loopback.
    secrets
        Values to scrub from every message (the key, the password).
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: OriginAuth | None = None,
        timeout: Timeout = (5.0, 60.0),
        max_retries: int = 5,
        backoff_factor: float = 0.5,
        max_elapsed: float = 120.0,
        retry_after_cap: float = 60.0,
        allow_http: bool = False,
        secrets: Sequence[str] = (),
    ) -> None:
        base_url = base_url.strip().rstrip("/")
        check_url(base_url, allow_http=allow_http)
        refuse_userinfo(base_url, "the Transport argument")
        path = urlsplit(base_url).path
        if path not in ("", "/") and path.rstrip("/") != "":
            if path.rstrip("/") == "/api":
                base_url = base_url[: -len(path)].rstrip("/")
            else:
                raise ConfigurationError(
                    f"base_url must be an origin such as 'https://www.spherescout.io', "
                    f"not {redact_url(base_url)!r} (every path is under /api/)"
                )
        self.base_url = base_url
        self.origin = origin_of(base_url)
        self.auth = auth
        self.timeout = _check_timeout(timeout)
        self.allow_http = allow_http
        self._secrets = tuple(s for s in secrets if s)
        safe = safe_retry(max_retries, backoff_factor, max_elapsed)
        safe.retry_after_cap = retry_after_cap
        charging = charging_retry(max_retries, backoff_factor, max_elapsed)
        self.safe_policy: ScoutRetry = safe
        self.charging_policy: ScoutRetry = charging
        # A body that breaks off after the headers is outside urllib3's Retry: same count and
        # time bound, applied in _send.
        self._body_tries = 1 + max_retries
        self._max_elapsed = max_elapsed
        self._session = _ApiSession(self.origin, HTTPAdapter(max_retries=charging))
        self._downloads = _NoAuthSession()
        for session in (self._session, self._downloads):
            adapter = HTTPAdapter(max_retries=safe)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers["User-Agent"] = user_agent()
            session.headers["Accept"] = "application/json"
        self._downloads.headers["Accept"] = "*/*"

    def __repr__(self) -> str:
        auth = "none" if self.auth is None else self.auth.kind
        return redact(f"<Transport {self.base_url} auth={auth}>", self._secrets)

    # -- API ---------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        json: Any = None,
        charging: bool = False,
        stream: bool = False,
        timeout: Timeout | None = None,
        headers: Mapping[str, str] | None = None,
        authenticate: bool = True,
    ) -> requests.Response:
        """Send one request to the API origin and return the (successful) response.

        Parameters
        ----------
        method
            HTTP method.
        path
            Path under the origin, e.g. ``"/api/companies"``.
        params
            Query parameters (pairs for repeated keys).
        json
            JSON body.
        charging
            The request spends credits: retry only where it surely never reached the server.
        stream
            Do not read the body yet (the caller reads and closes it).
        timeout
            Override of the client's ``(connect, read)`` timeout.
        headers
            Extra headers.
        authenticate
            Sign the request (``False`` for login and token refresh).

        Returns
        -------
        requests.Response
            A response with status < 400.

        Raises
        ------
        APIError
            The subclass for the status (after the retries, for retried statuses).
        TransportError
            Connection failed or timed out, after the retries.
        """
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', got {path!r}")
        method = method.upper()
        url = self.base_url + path
        auth = self.auth if authenticate else None
        if auth is not None:
            auth.prepare(self)
        response: requests.Response | None = None
        for attempt in range(2):
            response = self._send(
                self._session, method, url, params=params, json=json, stream=stream,
                timeout=timeout, headers=headers, auth=auth, charging=charging,
            )  # fmt: skip
            if response.status_code != 401 or auth is None:
                break
            if attempt == 0 and auth.recover(response, self):
                response.close()
                continue
            if attempt == 1:
                auth.replay_failed(response)
            break
        assert response is not None
        if response.status_code >= 400:
            raise self._api_error(response, method, url)
        if auth is not None:
            auth.on_success()
        return response

    def get_json(self, path: str, params: Params = None) -> Any:
        """``GET`` ``path`` and return the decoded JSON body."""
        response = self.request("GET", path, params=params)
        return self.json_of(response)

    def post_json(self, path: str, json: Any = None) -> Any:
        """``POST`` a JSON body to ``path`` and return the decoded JSON answer."""
        response = self.request("POST", path, json=json)
        return self.json_of(response) if response.content else None

    def json_of(self, response: requests.Response) -> Any:
        """Decode a JSON body, or raise :class:`~scoutframe.errors.APIError` saying what came."""
        try:
            content = response.content  # a streamed body is read here and may break off
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            method = str(response.request.method)
            raise self._transport_error(exc, method, response.url, 0.0, charging=True) from None
        try:
            return jsonlib.loads(content)
        except ValueError:
            kind = response.headers.get("Content-Type", "no content type")
            raise APIError(
                response.status_code,
                f"expected JSON from {self._where(response.request.method, response.url)} "
                f"but got {kind}",
                response.text[:200],
                hint="Check that base_url points at the SphereScout API",
            ) from None

    # -- downloads ---------------------------------------------------------------------------
    def download(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: Timeout | None = None,
    ) -> requests.Response:
        """Streaming ``GET`` of a pre-signed URL through a session with no auth at all.

        The caller reads ``response.raw`` (or ``iter_content``) and closes the response.

        Raises
        ------
        APIError
            On an error status (a 403 after the link expired, ...).
        TransportError
            Connection failed or timed out, after the retries.
        ConfigurationError
            For plain http to a host other than loopback (unless ``allow_http``).
        """
        check_url(url, allow_http=self.allow_http, what="download URL")
        response = self._send(
            self._downloads, "GET", url, params=None, json=None, stream=True,
            timeout=timeout, headers=headers, auth=None, charging=False,
        )  # fmt: skip
        if response.status_code >= 400:
            raise self._api_error(response, "GET", url)
        return response

    def close(self) -> None:
        """Close both sessions and their pooled connections."""
        self._session.close()
        self._downloads.close()

    # -- internals ---------------------------------------------------------------------------
    def _send(
        self,
        session: requests.Session,
        method: str,
        url: str,
        *,
        params: Params,
        json: Any,
        stream: bool,
        timeout: Timeout | None,
        headers: Mapping[str, str] | None,
        auth: OriginAuth | None,
        charging: bool,
    ) -> requests.Response:
        started = time.monotonic()
        policy = getattr(session, "policy", None)
        # urllib3's Retry covers everything up to the response headers; the body is read after
        # it returns. A free idempotent call whose body breaks off is sent again, up to
        # max_retries times, with the Retry policy's jittered backoff and total-time bound.
        body_tries = 1 if stream or charging or method not in _IDEMPOTENT else self._body_tries
        for body_try in range(body_tries):
            if policy is not None:
                policy.charging = charging
            in_body = False
            try:
                response = session.request(
                    method, url, params=params, json=json, stream=True, auth=auth,
                    headers=dict(headers) if headers else None,
                    timeout=_check_timeout(timeout) if timeout is not None else self.timeout,
                )  # fmt: skip
                if not stream:
                    in_body = True
                    _ = response.content
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                elapsed = time.monotonic() - started
                error = self._transport_error(exc, method, url, elapsed, charging)
                logger.debug("%s %s failed after %.3fs (body try %d): %s", method,
                             self._where(None, url), elapsed, body_try + 1, error)  # fmt: skip
                pause = jittered_backoff(self.safe_policy.backoff_factor, body_try + 1,
                                         self.safe_policy.backoff_max)  # fmt: skip
                if in_body and body_try + 1 < body_tries and elapsed + pause <= self._max_elapsed:
                    time.sleep(pause)
                    continue
                raise error from None
            finally:
                if policy is not None:
                    policy.charging = False
            break
        if logger.isEnabledFor(logging.DEBUG):  # skip the redaction work when nobody listens
            retries = getattr(getattr(response.raw, "retries", None), "history", ())
            logger.debug(
                "%s %s -> %d in %.3fs (retries %d)", method, self._where(None, response.url),
                response.status_code, time.monotonic() - started, len(retries) + body_try,
            )  # fmt: skip
        return response

    def _where(self, method: str | None, url: str | None) -> str:
        text = redact_url(url or "")
        if text.startswith(self.base_url):
            text = text[len(self.base_url) :] or "/"
        text = redact(text, self._secrets)
        return f"{method} {text}" if method else text

    def _api_error(self, response: requests.Response, method: str, url: str) -> APIError:
        try:
            content = response.content
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
            content = b""
        finally:
            response.close()
        content_type = response.headers.get("Content-Type", "")
        body: Any = None
        if content:
            try:
                body = response.json()
            except ValueError:
                body = content.decode("utf-8", "replace")[:2000]
        retry_after = _retry_after(response.headers.get("Retry-After"))
        request_id = response.headers.get("X-Request-Id") or response.headers.get("X-Request-ID")
        path = self._where(None, response.url or url)
        return error_for_status(
            response.status_code, body, content_type=content_type, request_id=request_id,
            retry_after=retry_after, method=method, url=path,
        )  # fmt: skip

    def _transport_error(
        self, exc: BaseException, method: str, url: str, elapsed: float, charging: bool
    ) -> ScoutError:
        try:
            parts = urlsplit(url)
            host = parts.netloc.rsplit("@", 1)[-1] or url
        except ValueError:
            host = "?"
        if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                            requests.exceptions.InvalidSchema, requests.exceptions.URLRequired,
                            requests.exceptions.InvalidHeader)):  # fmt: skip
            return ConfigurationError(
                f"Invalid request to {self._where(method, url)}: {type(exc).__name__}; check "
                "base_url and the arguments"
            )
        tries = "" if charging else " (after retries)"
        reason = _reason(exc)
        if isinstance(exc, requests.exceptions.ReadTimeout):
            read = self.timeout[1]
            text = (
                f"No answer from {host} within the read timeout ({read:g} s){tries} for "
                f"{self._where(method, url)}. The server may be overloaded; try again, or "
                "raise it: Client(timeout=(5, 120))"
            )
        elif isinstance(exc, requests.exceptions.ConnectTimeout):
            text = (
                f"Could not connect to {host} within {self.timeout[0]:g} s{tries}. Check the "
                "address (base_url / SPHERESCOUT_BASE_URL), your network, proxy and firewall"
            )
        elif isinstance(exc, requests.exceptions.SSLError):
            text = (
                f"TLS to {host} failed: {reason}. Check the system clock, corporate proxies "
                "that intercept TLS, and REQUESTS_CA_BUNDLE"
            )
        elif isinstance(exc, requests.exceptions.ProxyError):
            text = f"The proxy refused the connection to {host}: {reason}. Check HTTPS_PROXY"
        elif isinstance(exc, requests.exceptions.ConnectionError) and _is_connect_failure(exc):
            text = (
                f"Could not connect to {host}{tries}: {reason}. Check that the address is "
                "right (base_url / SPHERESCOUT_BASE_URL), that the server is up, and your "
                "network, proxy and firewall"
            )
        else:
            text = (
                f"The connection to {host} broke during {self._where(method, url)} after "
                f"{elapsed:.1f} s{tries}: {reason}. Try again; if it persists check your network"
            )
        return TransportError(redact(text, self._secrets))


def _is_connect_failure(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, urllib3.exceptions.NewConnectionError | ConnectionRefusedError):
            return True
        if isinstance(current, urllib3.exceptions.MaxRetryError) and isinstance(
            current.reason, urllib3.exceptions.NewConnectionError
        ):
            return True
        current = (current.args[0] if current.args and isinstance(current.args[0], BaseException)
                   else current.__cause__ or current.__context__)  # fmt: skip
    return False


def _reason(exc: BaseException) -> str:
    """Describe a low-level error briefly, without credentials."""
    inner: Any = exc.args[0] if exc.args else exc
    if isinstance(inner, urllib3.exceptions.MaxRetryError) and inner.reason is not None:
        inner = inner.reason
    if isinstance(inner, urllib3.exceptions.NewConnectionError):
        text = str(inner).split(": ", 1)[-1]
        return redact_url(text)
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


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _check_timeout(timeout: Timeout) -> tuple[float, float]:
    if isinstance(timeout, int | float) and not isinstance(timeout, bool):
        values: tuple[Any, ...] = (timeout, timeout)
    elif isinstance(timeout, tuple) and len(timeout) == 2:
        values = timeout
    else:
        raise ConfigurationError(
            f"timeout must be a number of seconds or a (connect, read) pair, not {timeout!r}"
        )
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in values):
        raise ConfigurationError(f"timeout values must be positive numbers, not {timeout!r}")
    return float(values[0]), float(values[1])
