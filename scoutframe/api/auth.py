"""Request signing that only ever signs requests to the API origin.

Each auth object is a :class:`requests.auth.AuthBase` bound to one origin (scheme, host, port):
a request to any other origin (a pre-signed download, a redirect elsewhere) leaves without an
``Authorization`` header, whatever session it goes through.

- :class:`ApiKeyAuth` sends ``Authorization: Bearer <key>`` (the documented scheme) and, if the
  server answers 401 to ``Bearer``, tries ``Token <key>`` once (the live API's scheme) and
  remembers whichever worked.
- :class:`JWTAuth` logs in with a username and password, sends the access token, refreshes it
  once when the server says it expired, and logs in again when the refresh token expired too.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase

from .._redact import MASK
from ..errors import AuthenticationError

if TYPE_CHECKING:
    from .transport import Transport

__all__ = ["ApiKeyAuth", "JWTAuth", "OriginAuth", "origin_of"]

Origin = tuple[str, str, int]
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> Origin:
    """Return ``(scheme, host, port)`` of ``url``, with the default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    host = (parts.hostname or "").lower()
    return scheme, host, port if port is not None else _DEFAULT_PORTS.get(scheme, 0)


class OriginAuth(AuthBase):
    """Base class: signs a request only when its URL is on :attr:`origin`."""

    def __init__(self, base_url: str) -> None:
        self.origin = origin_of(base_url)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Sign ``request`` if it goes to the API origin; strip any credential otherwise."""
        if request.url and origin_of(request.url) == self.origin:
            header = self.header()
            if header:
                request.headers["Authorization"] = header
                return request
        request.headers.pop("Authorization", None)
        return request

    def header(self) -> str | None:
        """Return the ``Authorization`` value to send now, or ``None``."""
        return None

    def prepare(self, transport: Transport) -> None:  # noqa: ARG002 - hook for subclasses
        """Get a credential before the first request (JWT login)."""
        return

    def recover(self, response: requests.Response, transport: Transport) -> bool:  # noqa: ARG002
        """React to a 401 answer; return ``True`` when the request should be sent again."""
        return False

    def replay_failed(self, response: requests.Response) -> None:  # noqa: ARG002
        """Learn that the request sent again after :meth:`recover` was refused too."""
        return

    def on_success(self) -> None:
        """Learn that an authenticated request succeeded."""
        return

    @property
    def kind(self) -> str:
        """A short description for ``repr`` (no credential)."""
        return "none"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind}>"


def _sent_scheme(response: requests.Response) -> str:
    sent = response.request.headers.get("Authorization", "") if response.request else ""
    return str(sent).partition(" ")[0].lower()


def _error_code(response: requests.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, Mapping):
        code = body.get("code")
        return code if isinstance(code, str) else None
    return None


class ApiKeyAuth(OriginAuth):
    """API key auth: ``Bearer`` first, ``Token`` once if ``Bearer`` is refused, then remembered.

    Parameters
    ----------
    api_key
        The key.
    base_url
        The API origin; no other origin ever sees the key.
    scheme
        The scheme to start with (``"Bearer"`` or ``"Token"``).
    """

    def __init__(self, api_key: str, base_url: str, *, scheme: str = "Bearer") -> None:
        super().__init__(base_url)
        self._key = api_key
        self.scheme = scheme
        self.confirmed = False  # a request with self.scheme succeeded: never fall back again
        self._lock = threading.Lock()

    def header(self) -> str:
        """``"<scheme> <key>"``."""
        return f"{self.scheme} {self._key}"

    def on_success(self) -> None:
        """Remember that the current scheme works: no fallback from now on."""
        self.confirmed = True

    def recover(self, response: requests.Response, transport: Transport) -> bool:  # noqa: ARG002
        """On a 401 to ``Bearer``, switch to ``Token`` for one more try."""
        sent = _sent_scheme(response)
        with self._lock:
            if sent != self.scheme.lower():
                return True  # another thread already switched: just send again
            if self.confirmed or self.scheme != "Bearer":
                return False
            self.scheme = "Token"
            return True

    def replay_failed(self, response: requests.Response) -> None:  # noqa: ARG002
        """``Token`` was refused too: the key itself is bad; back to the documented scheme."""
        with self._lock:
            if not self.confirmed:
                self.scheme = "Bearer"

    @property
    def kind(self) -> str:
        """``"api key (<scheme>)"``."""
        return f"api key ({self.scheme})"

    def __repr__(self) -> str:
        return f"<ApiKeyAuth scheme={self.scheme} key={MASK}>"


class JWTAuth(OriginAuth):
    """Username/password login with JWT access and refresh tokens.

    The access token is refreshed once when a request answers 401 with code
    ``token_not_valid``; when the refresh token has expired as well, the client logs in again
    if it knows the password, else raises :class:`~scoutframe.errors.AuthenticationError`.
    """

    LOGIN_PATH = "/api/auth/login"
    REFRESH_PATH = "/api/token/refresh"

    def __init__(self, username: str, password: str | None, base_url: str) -> None:
        super().__init__(base_url)
        self.username = username
        self._password = password
        self._access: str | None = None
        self._refresh: str | None = None
        self.user: Mapping[str, Any] | None = None
        self._lock = threading.RLock()

    def header(self) -> str | None:
        """``"Bearer <access>"`` once logged in."""
        return f"Bearer {self._access}" if self._access else None

    def prepare(self, transport: Transport) -> None:
        """Log in before the first authenticated request."""
        if self._access is None:
            with self._lock:
                if self._access is None:
                    self.login(transport)

    def login(self, transport: Transport) -> None:
        """``POST /api/auth/login`` and keep the tokens."""
        if not self._password:
            raise AuthenticationError(
                401,
                f"no password known for user {self.username!r}",
                hint="Pass password=..., set SPHERESCOUT_PASSWORD, store it in the keyring "
                "(service 'scoutframe'), or use an API key",
            )
        try:
            response = transport.request(
                "POST",
                self.LOGIN_PATH,
                json={"username": self.username, "password": self._password},
                authenticate=False,
            )
        except AuthenticationError as exc:
            raise AuthenticationError(
                401,
                f"login as {self.username!r} was refused: {exc.detail}",
                exc.body,
                exc.request_id,
                hint="Check the username (your account email) and the password",
            ) from None
        data = transport.json_of(response)
        access = data.get("access") if isinstance(data, Mapping) else None
        if not isinstance(access, str):
            raise AuthenticationError(
                200,
                "the login answer holds no access token",
                hint="The server does not speak the documented API",
            )
        self._access = access
        refresh = data.get("refresh")
        self._refresh = refresh if isinstance(refresh, str) else None
        user = data.get("user")
        self.user = user if isinstance(user, Mapping) else None

    def _refresh_access(self, transport: Transport) -> bool:
        if not self._refresh:
            return False
        try:
            response = transport.request(
                "POST", self.REFRESH_PATH, json={"refresh": self._refresh}, authenticate=False
            )
        except AuthenticationError:
            self._refresh = None
            return False
        data = transport.json_of(response)
        access = data.get("access") if isinstance(data, Mapping) else None
        if not isinstance(access, str):
            return False
        self._access = access
        if isinstance(data.get("refresh"), str):  # rotation, if the server does it
            self._refresh = data["refresh"]
        return True

    def recover(self, response: requests.Response, transport: Transport) -> bool:
        """Refresh (or log in again) after a 401 ``token_not_valid``; ``True`` to replay."""
        sent = response.request.headers.get("Authorization") if response.request else None
        with self._lock:
            if self._access and sent != self.header():
                return True  # another thread refreshed meanwhile
            if _error_code(response) not in ("token_not_valid", None):
                return False
            if self._refresh_access(transport):
                return True
            if self._password:
                self.login(transport)
                return True
            raise AuthenticationError(
                401,
                "the session expired (access and refresh tokens are no longer valid)",
                hint="Log in again with Client(username=..., password=...), or set "
                "SPHERESCOUT_PASSWORD so scoutframe can log in by itself, or use an API key",
            )

    @property
    def kind(self) -> str:
        """``"jwt user '<name>'"``."""
        return f"jwt user {self.username!r}"

    def __repr__(self) -> str:
        return f"<JWTAuth user={self.username!r} logged_in={self._access is not None}>"
