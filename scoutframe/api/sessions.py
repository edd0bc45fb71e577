"""Who may be reached, and how: URL checks and the two :mod:`requests` sessions.

* :func:`check_url` / :func:`check_download_url`: https only, plain http only to loopback
  (or where the user allowed it); a download on plain http never to a third host, never with
  a user name or password in it, and only to addresses :mod:`scoutframe.api.egress` allows;
* :class:`ApiSession`: the API session; strips ``Authorization`` on any change of origin and
  refuses a redirect that leaves the API origin;
* :class:`NoAuthSession`: the download session; never sends ``Authorization``, checks
  every redirect as a download URL, and connects only to checked addresses.

:class:`~scoutframe.api.transport.Transport` builds one of each.
"""

from __future__ import annotations

import ipaddress
import threading
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from .._redact import redact_url
from .._version import __version__
from ..errors import ConfigurationError
from .auth import origin_of
from .egress import AddressRule

__all__ = [
    "ApiSession",
    "NoAuthSession",
    "check_download_url",
    "check_url",
    "is_loopback",
    "user_agent",
]


def user_agent() -> str:
    """``scoutframe/<version>`` (some edges block generic HTTP-library User-Agents)."""
    return f"scoutframe/{__version__}"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` itself or a literal loopback address (127/8, ``::1``).

    Names under ``.localhost`` are not trusted: a resolver may send them anywhere.
    """
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost":
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


def check_download_url(
    url: str, *, api_host: str, allow_http: bool, what: str = "download URL"
) -> None:
    """Refuse a download URL the server handed out unless it is https or on loopback.

    ``allow_http`` lets plain http reach the API's own host (a test server elsewhere), never a
    third host: a signed URL names the data it opens, and plain http would show it to anyone
    on the way. A URL with a user name or password is refused (a signed URL has none), and so
    is a host that is, or resolves to, an address downloads may not reach
    (:class:`~scoutframe.api.egress.AddressRule`: the cloud metadata service, the private
    network, this machine).
    """
    check_url(url, allow_http=allow_http, what=what)
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ConfigurationError(f"the {what} {redact_url(url)!r} is not a valid URL") from None
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError(
            f"Refusing the {what}: it carries a user name or password "
            f"({redact_url(url)}); a SphereScout download link never does. Nothing was sent; "
            "tell SphereScout support"
        )
    if parts.scheme == "http" and not is_loopback(host) and host != api_host:
        raise ConfigurationError(
            f"Refusing the {what} on plain http to {host}: it is neither the API's host nor "
            "a loopback address, and the signed link and the contacts would travel "
            "unencrypted. Ask SphereScout support for an https download link"
        )
    AddressRule(api_host).check_url(url, host, port, what)


class ApiSession(requests.Session):
    """The API session: picks the charging adapter when asked; strict about auth on redirects."""

    def __init__(self, origin: tuple[str, str, int], charging_adapter: HTTPAdapter) -> None:
        super().__init__()
        self._origin = origin
        self._charging_adapter = charging_adapter
        self._policy = threading.local()

    def charging(self, value: bool) -> None:
        """Route this thread's next requests through the charging adapter (or not)."""
        self._policy.charging = value

    def get_adapter(self, url: str) -> Any:
        """Return the charging adapter if this thread asked for it, else the mounted one."""
        if vars(self._policy).get("charging", False):
            return self._charging_adapter
        return super().get_adapter(url)

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: Any) -> None:  # noqa: ARG002
        """Drop ``Authorization`` from a redirect that leaves the API origin."""
        # requests strips Authorization only on a host change; we also strip it on a scheme or
        # port change, and never add netrc credentials to a redirect.
        url = prepared_request.url or ""
        if "Authorization" in prepared_request.headers and origin_of(url) != self._origin:
            del prepared_request.headers["Authorization"]

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        """Follow a redirect only within the API origin; refuse one that leaves it."""
        target = super().get_redirect_target(resp)
        if target is None:
            return None
        absolute = urljoin(resp.url, target)
        if origin_of(absolute) != self._origin:
            resp.close()
            raise ConfigurationError(
                f"the API answered {resp.status_code} with a redirect to another origin "
                f"({redact_url(absolute)}); scoutframe does not follow redirects away from the "
                "API origin, whose answers it could not trust. Check base_url "
                "(SPHERESCOUT_BASE_URL): it must be the API origin itself"
            )
        return target


class NoAuthSession(requests.Session):
    """The download session: never sends an Authorization header, whatever it is given."""

    allow_http = False
    api_host = ""

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        """Prepare ``request`` without any auth or ``Authorization`` header."""
        request.auth = None
        prepared = super().prepare_request(request)
        prepared.headers.pop("Authorization", None)
        prepared.headers.pop("Proxy-Authorization", None)
        return prepared

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: Any) -> None:  # noqa: ARG002
        """Never add (nor keep) ``Authorization`` on a redirect."""
        prepared_request.headers.pop("Authorization", None)

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        """Check every redirect of a download as a direct download URL is checked."""
        target = super().get_redirect_target(resp)
        if target is not None:
            try:
                check_download_url(
                    urljoin(resp.url, target),
                    api_host=self.api_host,
                    allow_http=self.allow_http,
                    what="download redirect",
                )
            except ConfigurationError:
                resp.close()
                raise
        return target
