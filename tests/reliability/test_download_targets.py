"""Download URLs in every SSRF form: refused, and no connection is even attempted to them.

A hostile SphereScout hands out, as the signed link of a paid export, URLs that aim at what
only the client's machine can reach: the cloud metadata service, private networks, loopback
in every spelling (IPv6, IPv4-mapped IPv6, decimal, hex, octal, short forms), the unspecified
address, ``file:`` / ``ftp:`` / ``gopher:``, ``user:pass@``, names that resolve to such
addresses (one of several, or only the second time: DNS rebinding), and redirects of an
honest-looking storage to all of these.

An audit hook on ``socket.connect`` records every connection the process attempts while a
case runs and **blocks** any to an address other than the scripted servers' loopback ports,
so a failure of the rule cannot send traffic off this machine. Names resolve through a fake
resolver (``socket.getaddrinfo`` patched for ``*.test`` names only), so no DNS leaves either.

The API is reached as ``api.scout.test`` (resolving to the scripted server on loopback): a
client whose ``base_url`` is a name trusts only public addresses for downloads. The redirect
cases use a ``base_url`` of ``127.0.0.1``, whose downloads may use loopback (the sandbox's
storage) but nothing else that is not public.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scene import FILTERS, SIGNATURE, Scene, status_answer
from scripted import Answer, ScriptedServers

from scoutframe.errors import ConfigurationError

API_NAME = "api.scout.test"


class _Watch:
    """What the audit hook saw: the connections attempted while ``active``."""

    active = False
    allowed: set[tuple[str, int]] = set()
    attempts: list[tuple[str, int]] = []
    blocked: list[tuple[str, int]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "socket.connect" or not _Watch.active:
        return
    address = args[1]
    if not isinstance(address, tuple):
        return  # a Unix socket
    target = (str(address[0]), int(address[1]))
    _Watch.attempts.append(target)
    if target not in _Watch.allowed:
        _Watch.blocked.append(target)
        raise ConnectionRefusedError(f"blocked by the test's audit hook: {target}")


sys.addaudithook(_audit)  # for the process's life; it only acts while a case runs

_REAL_GETADDRINFO = socket.getaddrinfo


class FakeResolver:
    """``*.test`` names resolve to the addresses given (a list: one answer per lookup)."""

    def __init__(self, names: dict[str, list[list[str]]]) -> None:
        self.names = names
        self.lookups: dict[str, int] = {}

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = str(host).lower().rstrip(".")
        if not name.endswith(".test"):
            return _REAL_GETADDRINFO(host, port, *args, **kwargs)
        answers = self.names.get(name)
        if answers is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        turn = self.lookups.get(name, 0)
        self.lookups[name] = turn + 1
        found = []
        for text in answers[min(turn, len(answers) - 1)]:
            family = socket.AF_INET6 if ":" in text else socket.AF_INET
            sockaddr = (
                (text, int(port or 0), 0, 0)
                if family == socket.AF_INET6
                else (text, int(port or 0))
            )
            found.append((family, socket.SOCK_STREAM, 6, "", sockaddr))
        return found


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> FakeResolver:
    fake = FakeResolver(
        {
            API_NAME: [["127.0.0.1"]],
            "evil.test": [["169.254.169.254"]],
            "intranet.test": [["10.0.0.7"]],
            "home.test": [["127.0.0.1"]],
            "mixed.test": [["8.8.8.8", "10.0.0.7"]],
            "six.test": [["fd00::7"]],
            "rebind.test": [["8.8.8.8"], ["10.0.0.7"]],  # public when checked, private after
        }
    )
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


@pytest.fixture
def watched(tmp_path: Path, resolver: FakeResolver, figures: Any) -> Iterator[Scene]:
    with ScriptedServers() as servers:
        scene = Scene(servers, tmp_path)
        _Watch.allowed = {("127.0.0.1", origin.port) for origin in servers}
        _Watch.attempts, _Watch.blocked = [], []
        _Watch.active = True
        try:
            yield scene
        finally:
            _Watch.active = False
            scene.close()
    figures.add("download targets: connections blocked by the audit hook", len(_Watch.blocked))


def _refused(scene: Scene, client: Any, url: str) -> ConfigurationError:
    """The paid job with ``url`` as its link: its download must be refused, nothing sent."""
    scene.api.script("GET", "/api/download-status/", status_answer("ready", url))
    job = client.exports.start(FILTERS)
    target = scene.tmp / "out.csv"
    with pytest.raises(ConfigurationError) as caught:
        job.download(target)
    assert not target.exists()
    assert not job.part_path(target).exists()
    assert job.state == "active"  # paid, and still resumable once the server gives a good link
    assert SIGNATURE not in str(caught.value)
    assert "pass@" not in str(caught.value)
    return caught.value


def _port(scene: Scene) -> int:
    return scene.storage.port  # a real listener on loopback: it must receive nothing


#: (URL template, a phrase of the refusal). ``{port}``: the scripted storage's port.
REMOTE_API_CASES: dict[str, tuple[str, str]] = {
    "metadata (https)": ("https://169.254.169.254/latest/meta-data/", "link-local"),
    "metadata (http)": ("http://169.254.169.254/latest/meta-data/", "plain http"),
    "metadata as IPv4-mapped IPv6": ("https://[::ffff:a9fe:a9fe]/latest/", "link-local"),
    "private 10/8": ("https://10.0.0.7/x.csv", "private-network"),
    "private 192.168/16": ("https://192.168.1.1/x.csv", "private-network"),
    "private 172.16/12": ("https://172.16.5.4/x.csv", "private-network"),
    "shared 100.64/10": ("https://100.64.0.1/x.csv", "reserved"),
    "IPv6 unique local": ("https://[fd00::7]/x.csv", "private-network"),
    "IPv6 link-local": ("https://[fe80::1]/x.csv", "link-local"),
    "loopback": ("https://127.0.0.1:{port}/exports/x.csv", "loopback"),
    "loopback 127.8.8.8": ("https://127.8.8.8:{port}/exports/x.csv", "loopback"),
    "loopback IPv6": ("https://[::1]:{port}/exports/x.csv", "loopback"),
    "loopback IPv4-mapped": ("https://[::ffff:127.0.0.1]:{port}/exports/x.csv", "loopback"),
    "loopback decimal": ("https://2130706433:{port}/exports/x.csv", "loopback"),
    "loopback hex": ("https://0x7f000001:{port}/exports/x.csv", "loopback"),
    "loopback octal": ("https://0177.0.0.1:{port}/exports/x.csv", "loopback"),
    "loopback short": ("https://127.1:{port}/exports/x.csv", "loopback"),
    "unspecified": ("https://0.0.0.0:{port}/exports/x.csv", "unspecified"),
    "file": ("file:///etc/passwd", "not an http(s) URL"),
    "ftp": ("ftp://storage.example/x.csv", "not an http(s) URL"),
    "gopher": ("gopher://storage.example:70/_x", "not an http(s) URL"),
    "user:pass@": ("https://user:pass@storage.example/x.csv", "user name or password"),
    "name resolving to metadata": ("https://evil.test/x.csv", "link-local"),
    "name resolving to the private network": ("https://intranet.test/x.csv", "private-network"),
    "name resolving to IPv6 unique local": ("https://six.test/x.csv", "private-network"),
    "name resolving to loopback": ("https://home.test:{port}/exports/x.csv", "loopback"),
    "name with one private address of two": ("https://mixed.test/x.csv", "private-network"),
    "name rebinding between check and connect": ("https://rebind.test/x.csv", "private-network"),
}


@pytest.mark.parametrize("case", list(REMOTE_API_CASES))
def test_download_url_refused(
    watched: Scene, resolver: FakeResolver, case: str, figures: Any
) -> None:
    template, phrase = REMOTE_API_CASES[case]
    url = template.format(port=_port(watched)) + f"?signature={SIGNATURE}"
    client = watched.client(base_url=f"http://{API_NAME}:{watched.api.port}")
    error = _refused(watched, client, url)
    assert phrase in str(error), str(error)
    assert watched.storage.requests == []
    assert _Watch.blocked == []  # the rule refused it: the audit hook had nothing to stop
    assert set(_Watch.attempts) <= {("127.0.0.1", watched.api.port)}
    if case.startswith("name rebinding"):
        assert resolver.lookups["rebind.test"] >= 2  # checked once, refused at the connection
    watched.check(starts=1)
    figures.add("download targets: SSRF URLs refused", 1)


#: Where a storage on loopback (allowed: the API is on loopback too) redirects the download.
REDIRECTS: dict[str, tuple[str, str]] = {
    "to metadata": ("https://169.254.169.254/latest/meta-data/", "link-local"),
    "to metadata on http": ("http://169.254.169.254/latest/meta-data/", "plain http"),
    "to the private network": ("https://10.0.0.7/x.csv", "private-network"),
    "to a name resolving to metadata": ("https://evil.test/x.csv", "link-local"),
    "to a rebinding name": ("https://rebind.test/x.csv", "private-network"),
    "to file:": ("file:///etc/passwd", "not an http(s) URL"),
    "to user:pass@": ("https://user:pass@storage.example/x.csv", "user name or password"),
}


@pytest.mark.parametrize("case", list(REDIRECTS))
def test_download_redirect_refused(watched: Scene, case: str, figures: Any) -> None:
    location, phrase = REDIRECTS[case]
    watched.storage.script("GET", "/exports/", Answer(status=302, headers={"Location": location}))
    client = watched.client()
    job = client.exports.start(FILTERS)
    target = watched.tmp / "out.csv"
    with pytest.raises(ConfigurationError) as caught:
        job.download(target)
    assert phrase in str(caught.value), str(caught.value)
    assert not target.exists()
    assert job.state == "active"
    assert watched.storage.count("GET", "/exports/") == 1  # followed nowhere, not retried
    assert _Watch.blocked == []
    assert set(_Watch.attempts) <= {("127.0.0.1", o.port) for o in watched.servers}
    watched.check(starts=1)
    figures.add("download targets: SSRF redirects refused", 1)


def test_a_public_name_is_still_downloaded(watched: Scene, resolver: FakeResolver) -> None:
    """The rule refuses what it must and no more: the sandbox-like loopback storage works."""
    client = watched.client()
    job = client.exports.start(FILTERS)
    assert job.download(watched.tmp / "out.csv").read_bytes() == watched.csv
    assert _Watch.blocked == []
    assert ipaddress.ip_address(_Watch.attempts[-1][0]).is_loopback
    watched.check(starts=1)
