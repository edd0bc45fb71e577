"""The wire: one keep-alive session to the API, one without auth for downloads.

Retries, backoff with jitter and ``Retry-After`` come from urllib3's :class:`~urllib3.util.Retry`
mounted on a :class:`requests.adapters.HTTPAdapter` (the policies live in
:mod:`scoutframe.api.retry`): *safe* for free calls, *charging* for calls that spend credits.
What requests and urllib3 raise is translated by the table in :mod:`scoutframe.api.wire_errors`.
Downloads of pre-signed URLs go through a second session that carries no auth at all.
"""

from __future__ import annotations

import json as jsonlib
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from .._redact import redact, redact_url
from ..clock import clock, sleep
from ..errors import (
    AnswerTooLargeError,
    APIError,
    ConfigurationError,
    ScoutError,
    TransportError,
    error_for_status,
)
from . import retry as retries
from .auth import OriginAuth, origin_of
from .bodies import (
    MAX_ANSWER_BYTES,
    MAX_ERROR_BYTES,
    BodyTooLargeError,
    BodyTooSlowError,
    read_answer,
)
from .config import refuse_userinfo
from .egress import AddressRule, pinned_adapter
from .retry import IDEMPOTENT_METHODS, RetryPolicy
from .sessions import (
    ApiSession,
    NoAuthSession,
    check_download_url,
    check_url,
    is_loopback,
    user_agent,
)
from .wire_errors import WIRE_EXCEPTIONS, Failure, translate

__all__ = ["Transport", "check_download_url", "check_url", "is_loopback", "user_agent"]

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
#: What reading an error answer's body may raise (the message then does without it).
_UNREADABLE: tuple[type[BaseException], ...] = (
    *WIRE_EXCEPTIONS,
    BodyTooLargeError,
    BodyTooSlowError,
)
Timeout = float | tuple[float, float]


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
    retry
        The retry settings (:class:`~scoutframe.api.retry.RetryPolicy`).
    allow_http
        Allow plain http to hosts other than loopback.
    secrets
        Values to scrub from every message (the key, the password).
    missing_credential
        With no ``auth``: the message of the :class:`~scoutframe.errors.ConfigurationError`
        raised, before anything is sent, by a request that needs authentication.
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: OriginAuth | None = None,
        timeout: Timeout = (5.0, 60.0),
        retry: RetryPolicy | None = None,
        allow_http: bool = False,
        secrets: Sequence[str] = (),
        missing_credential: str | None = None,
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
        self._missing_credential = missing_credential
        self.retry = retry if retry is not None else RetryPolicy()
        self._session = ApiSession(
            self.origin, HTTPAdapter(max_retries=self.retry.charging_urllib3())
        )
        self._downloads = NoAuthSession()
        self._downloads.allow_http = allow_http
        self._downloads.api_host = self.origin[1]
        rule = AddressRule(self.origin[1])
        for session in (self._session, self._downloads):
            adapter = (
                HTTPAdapter(max_retries=self.retry.safe_urllib3())
                if session is self._session
                else pinned_adapter(rule, max_retries=self.retry.safe_urllib3())
            )
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
        if authenticate and self.auth is None and self._missing_credential is not None:
            raise ConfigurationError(self._missing_credential)
        auth = self.auth if authenticate else None
        if auth is not None:
            auth.prepare(self)
        response: requests.Response | None = None
        for attempt in range(2):
            response = self._send(
                self._session,
                method,
                url,
                params=params,
                json=json,
                stream=stream,
                timeout=timeout,
                headers=headers,
                auth=auth,
                charging=charging,
            )
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
        method = str(response.request.method)
        try:
            content = self.body_of(response)  # a streamed body is read here and may break off
        except WIRE_EXCEPTIONS as exc:
            raise self._translate(exc, method, response.url, 0.0, charging=True) from None
        except BodyTooSlowError as exc:
            raise self._too_slow(method, response.url, exc) from None
        except BodyTooLargeError as exc:
            raise self._too_large(response, method, exc) from None
        try:
            return jsonlib.loads(content)
        except ValueError:
            where = self._where(response.request.method, response.url)
            kind = response.headers.get("Content-Type", "")
            if not content.strip():
                detail = f"{where} answered {response.status_code} with an empty body"
            elif "json" in kind.lower():
                detail = (
                    f"{where} answered {response.status_code} with malformed JSON "
                    f"({len(content):,} bytes)"
                )
            else:
                raise self._not_the_api(response, where) from None
            raise APIError(
                response.status_code,
                detail,
                content[:200].decode("utf-8", "replace"),
                hint="The server sent a broken answer; try again in a minute, and check "
                "SPHERESCOUT_BASE_URL if it persists",
            ) from None

    def body_of(self, response: requests.Response, *, limit: int = MAX_ANSWER_BYTES) -> bytes:
        """Return the body, read once within bounds (:func:`~scoutframe.api.bodies.read_answer`).

        Raises ``BodyTooLargeError`` / ``BodyTooSlowError`` (and what a broken stream raises).
        """
        if not response._content:  # not read yet (False), or empty
            # requests' own slot for the body: .content, .text and .json() then use it.
            response._content = read_answer(response, limit=limit, seconds=self.timeout[1])
        return response.content

    def _too_slow(self, method: str, url: str | None, exc: BodyTooSlowError) -> TransportError:
        return TransportError(
            f"{self._where(method, url)}: the answer came too slowly ({exc}; it must arrive "
            f"whole within the read timeout, {self.timeout[1]:g} s, after its headers). The "
            "server or the network is too slow: try again later, or raise the read timeout "
            "with Client(timeout=(connect, read))"
        )

    def _too_large(
        self, response: requests.Response, method: str, exc: BodyTooLargeError
    ) -> AnswerTooLargeError:
        return AnswerTooLargeError(
            response.status_code,
            f"{self._where(method, response.url)} answered with more than {exc.limit:,} bytes "
            f"(the most scoutframe reads of one answer; an honest one is far smaller), so it "
            "was refused and not read further",
            limit=exc.limit,
            hint="The server is not behaving as the SphereScout API does: check "
            "SPHERESCOUT_BASE_URL, and tell SphereScout support if it persists",
        )

    def _not_the_api(self, response: requests.Response, where: str) -> ConfigurationError:
        """Explain an answer that is not JSON: ``base_url`` points at another HTTP server."""
        kind = response.headers.get("Content-Type", "").split(";")[0].strip() or "no type"
        return ConfigurationError(
            f"{self.base_url} does not look like the SphereScout API: {where} answered "
            f"{response.status_code} with {kind}, not JSON. Check base_url "
            "(SPHERESCOUT_BASE_URL): it must be the API origin, e.g. https://www.spherescout.io"
        )

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
        check_download_url(url, api_host=self.origin[1], allow_http=self.allow_http)
        response = self._send(
            self._downloads,
            "GET",
            url,
            params=None,
            json=None,
            stream=True,
            timeout=timeout,
            headers=headers,
            auth=None,
            charging=False,
        )
        if response.status_code >= 400:
            raise self._api_error(response, "GET", url, api=False)
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
        started = clock().monotonic()
        # urllib3's Retry covers everything up to the response headers; the body is read after
        # it returns. A free idempotent call whose body breaks off is sent again under the
        # policy's request budget (same count and time bound as urllib3's retries).
        again = not (stream or charging or method not in IDEMPOTENT_METHODS)
        budget = self.retry.request() if again else retries.Budget("one try", attempts=1)
        pauses = budget.pauses()
        error: ScoutError | None = None
        for pause in pauses:
            sleep(pause)
            if isinstance(session, ApiSession):
                session.charging(charging)
            try:
                response = session.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    stream=True,
                    auth=auth,
                    headers=dict(headers) if headers else None,
                    timeout=_check_timeout(timeout) if timeout is not None else self.timeout,
                )
            except WIRE_EXCEPTIONS as exc:
                raise self._translate(exc, method, url, started, charging) from None
            finally:
                if isinstance(session, ApiSession):
                    session.charging(False)
            if stream:
                break
            try:
                self.body_of(response)
            except BodyTooLargeError as exc:
                raise self._too_large(response, method, exc) from None
            except BodyTooSlowError as exc:
                error = self._too_slow(method, url, exc)
                logger.debug("%s: %s (try %d)", self._where(method, url), exc, pauses.tries)
                continue
            except WIRE_EXCEPTIONS as exc:
                error = self._translate(exc, method, url, started, charging)
                logger.debug(
                    "%s %s: the body broke off (try %d): %s",
                    method,
                    self._where(None, url),
                    pauses.tries,
                    error,
                )
                continue
            error = None
            break
        if error is not None:
            raise error
        if logger.isEnabledFor(logging.DEBUG):  # skip the redaction work when nobody listens
            raw_retries = getattr(response.raw, "retries", None)  # urllib3's, not ours
            history = raw_retries.history if raw_retries is not None else ()
            logger.debug(
                "%s %s -> %d in %.3fs (retries %d)",
                method,
                self._where(None, response.url),
                response.status_code,
                clock().monotonic() - started,
                len(history) + pauses.tries - 1,
            )
        return response

    def _where(self, method: str | None, url: str | None) -> str:
        text = redact_url(url or "")
        if text.startswith(self.base_url):
            text = text[len(self.base_url) :] or "/"
        text = redact(text, self._secrets)
        return f"{method} {text}" if method else text

    def _api_error(
        self, response: requests.Response, method: str, url: str, *, api: bool = True
    ) -> ScoutError:
        try:
            content = self.body_of(response, limit=MAX_ERROR_BYTES)
        except _UNREADABLE:
            content = b""  # the message says what it can without it
        finally:
            response.close()
        content_type = response.headers.get("Content-Type", "")
        if api and response.status_code in (404, 405) and "json" not in content_type.lower():
            # The API answers every unknown path and id with a JSON body: this is another server.
            return self._not_the_api(response, self._where(method, response.url or url))
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
            response.status_code,
            body,
            content_type=content_type,
            request_id=request_id,
            retry_after=retry_after,
            method=method,
            url=path,
        )

    def _translate(
        self, exc: BaseException, method: str, url: str, started: float, charging: bool
    ) -> ScoutError:
        try:
            host = urlsplit(url).netloc.rsplit("@", 1)[-1] or url
        except ValueError:
            host = "?"
        failure = Failure(
            host=host,
            where=self._where(method, url),
            elapsed=clock().monotonic() - started if started else 0.0,
            charging=charging,
            timeout=self.timeout,
            secrets=self._secrets,
        )
        return translate(exc, failure)


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
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - clock().now()).total_seconds())


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
