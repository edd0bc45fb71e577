"""Where a download may connect: the address rule, and connections pinned to checked addresses.

A download URL comes from the server, so a hostile (or hijacked) server could aim it at what
only this machine can reach: a cloud metadata service (``169.254.169.254``), a router or a
database on the private network, a port on loopback, in any spelling (``[::ffff:127.0.0.1]``,
``2130706433``, ``0x7f.1``, a name that resolves there). The rule:

* a download connects only to **public** addresses (``ipaddress``'s ``is_global``, IPv4-mapped
  IPv6 read as the IPv4 address), except that when the API's own ``base_url`` is a literal
  address that is not public (``localhost``, ``127.0.0.1``: the sandbox, a test server, a
  gateway at ``10.0.0.5``), addresses of that same kind are allowed too;
* every address a name resolves to must pass, not only the first;
* :class:`AddressRule.check_url` applies it before a request (a clear error, nothing sent);
  :func:`pinned_adapter` applies it again when each connection is made and connects to the
  very address it checked, so a name that resolves elsewhere the second time (DNS
  rebinding) or a redirect cannot get around it. Behind a proxy, the proxy connects: only the
  check before the request applies.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from .._redact import redact_url
from ..errors import ConfigurationError

__all__ = ["AddressRule", "address_kind", "pinned_adapter"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Why an address is refused, by kind (for messages).
_KINDS = {
    "loopback": "an address of this machine (loopback)",
    "link-local": "a link-local address (cloud metadata services live there)",
    "private": "a private-network address",
    "unspecified": "the unspecified address (this machine)",
    "multicast": "a multicast address",
    "reserved": "a reserved address",
    "public": "a public address",
}


def _address(text: str) -> Address | None:
    try:
        found = ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped is not None:
        return found.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return found


def address_kind(address: Address) -> str:
    """Return the kind of an address: ``public``, ``loopback``, ``private``, ``link-local``..."""
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_global:
        return "public"
    if address.is_private:
        return "private"
    return "reserved"


def _resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to (``socket.gaierror`` when it resolves to none)."""
    found = []
    for *_, sockaddr in socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM):
        address = _address(str(sockaddr[0]))
        if address is not None and address not in found:
            found.append(address)
    return found


class AddressRule:
    """The addresses downloads may reach (see the module documentation).

    Parameters
    ----------
    api_host
        The host of the client's ``base_url``: when it is a literal address that is not
        public (or ``localhost``), its kind is allowed too.
    """

    def __init__(self, api_host: str) -> None:
        host = api_host.strip("[]").lower().rstrip(".")
        literal = ipaddress.ip_address("127.0.0.1") if host == "localhost" else _address(host)
        kind = None if literal is None else address_kind(literal)
        self.allowed = frozenset(
            {"public"} | ({kind} if kind in ("loopback", "private") else set())
        )

    def __repr__(self) -> str:
        return f"AddressRule(allowed={sorted(self.allowed)})"

    def refusal(self, host: str, addresses: Sequence[Address], what: str) -> str | None:
        """Return why ``host`` may not be reached (one of its addresses is refused), or ``None``."""
        for address in addresses:
            kind = address_kind(address)
            if kind not in self.allowed:
                shown = host if str(address) == host.strip("[]") else f"{host} ({address})"
                return (
                    f"Refusing the {what}: {shown} is {_KINDS[kind]}. A SphereScout download "
                    "link points at public storage; one that leads into this machine or its "
                    "network is not followed (the server may be hostile or hijacked). Nothing "
                    "was sent there; check SPHERESCOUT_BASE_URL, and tell SphereScout support"
                )
        return None

    def check_url(self, url: str, host: str, port: int, what: str) -> None:
        """Raise :class:`~scoutframe.errors.ConfigurationError` if ``url``'s host is refused.

        A host that resolves to nothing passes: the connection then fails by itself.
        """
        try:
            addresses = _resolve(host, port)
        except (socket.gaierror, UnicodeError):
            return
        reason = self.refusal(host, addresses, what)
        if reason is not None:
            raise ConfigurationError(f"{reason} (URL {redact_url(url)})")


class _Pinned:
    """A urllib3 connection that checks every address before connecting, and connects there."""

    rule: AddressRule
    # Provided by the urllib3 connection class this is mixed into:
    host: str
    proxy: Any
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        # urllib3's own _new_conn resolves and connects in one step; this one resolves, checks
        # each address, then connects to the checked address itself (no second resolution).
        if self.proxy is not None:  # the proxy connects to the target, not us
            return super()._new_conn()  # type: ignore[misc, no-any-return]
        host = self.host
        try:
            addresses = _resolve(host, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(host, self, exc) from exc  # type: ignore[arg-type]
        reason = self.rule.refusal(host, addresses, "download connection")
        if reason is not None:
            raise ConfigurationError(reason)
        error: OSError | None = None
        for address in addresses:
            try:
                sock = urllib3_connection.create_connection(
                    (str(address), self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                raise ConnectTimeoutError(
                    self, f"Connection to {host} timed out. (connect timeout={self.timeout})"
                ) from exc
            except OSError as exc:
                error = exc
                continue
            return sock
        raise NewConnectionError(
            self,  # type: ignore[arg-type]
            f"Failed to establish a new connection: {error}",
        ) from error


def pinned_adapter(rule: AddressRule, **options: Any) -> HTTPAdapter:
    """Return an :class:`~requests.adapters.HTTPAdapter` whose connections obey ``rule``."""

    class PinnedHTTPConnection(_Pinned, HTTPConnection):
        pass

    class PinnedHTTPSConnection(_Pinned, HTTPSConnection):
        pass

    PinnedHTTPConnection.rule = PinnedHTTPSConnection.rule = rule

    class PinnedHTTPPool(HTTPConnectionPool):
        ConnectionCls = PinnedHTTPConnection

    class PinnedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = PinnedHTTPSConnection

    class PinnedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {
                "http": PinnedHTTPPool,
                "https": PinnedHTTPSPool,
            }

    return PinnedAdapter(**options)
