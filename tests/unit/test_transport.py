"""Transport pieces that need no socket: URL checks, sessions, timeouts, adapters."""

from __future__ import annotations

import pytest
import requests

from scoutframe.api.auth import ApiKeyAuth
from scoutframe.api.transport import Transport, check_url, is_loopback, user_agent
from scoutframe.errors import ConfigurationError

KEY = "ef" * 32


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST.", "127.0.0.1", "127.255.0.9", "::1", "[::1]"]
)
def test_loopback_hosts(host):
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host",
    ["example.com", "10.0.0.1", "127.0.0.1.nip.io", "::2", "", "evil.localhost", "app.localhost"],
)
def test_non_loopback_hosts(host):
    """Only literal loopback addresses and localhost itself: a name is resolved elsewhere."""
    assert not is_loopback(host)


def test_check_url():
    check_url("https://www.spherescout.io", allow_http=False)
    check_url("http://127.0.0.1:9", allow_http=False)
    check_url("http://example.com", allow_http=True)
    with pytest.raises(ConfigurationError, match="plain http"):
        check_url("http://example.com", allow_http=False)
    with pytest.raises(ConfigurationError, match="not an http"):
        check_url("ftp://example.com", allow_http=True)
    with pytest.raises(ConfigurationError, match="not an http"):
        check_url("www.spherescout.io", allow_http=True)


def test_base_url_must_be_an_origin():
    assert Transport("https://www.spherescout.io/api/").base_url == "https://www.spherescout.io"
    assert Transport("https://www.spherescout.io/").base_url == "https://www.spherescout.io"
    with pytest.raises(ConfigurationError, match="must be an origin"):
        Transport("https://www.spherescout.io/v2")
    with pytest.raises(ConfigurationError, match="api_key=") as caught:
        Transport("http://bob:hunter2@127.0.0.1:9")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("timeout", [0, -1, (1, 0), (1,), "5", True, (1, None)])
def test_bad_timeouts_are_refused(timeout):
    with pytest.raises(ConfigurationError, match="timeout"):
        Transport("https://www.spherescout.io", timeout=timeout)


def test_sessions_user_agent_and_repr():
    transport = Transport(
        "https://www.spherescout.io",
        auth=ApiKeyAuth(KEY, "https://www.spherescout.io"),
        secrets=[KEY],
    )
    assert user_agent().startswith("scoutframe/")
    assert transport._session.headers["User-Agent"] == user_agent()
    assert transport._downloads.headers["User-Agent"] == user_agent()
    assert KEY not in repr(transport)
    transport.close()


def test_download_session_strips_authorization():
    transport = Transport("https://www.spherescout.io")
    request = requests.Request(
        "GET",
        "https://storage.example/x.csv",
        headers={"Authorization": "Bearer x"},
        auth=("u", "p"),
    )
    prepared = transport._downloads.prepare_request(request)
    assert "Authorization" not in prepared.headers
    transport.close()


def test_api_session_strips_authorization_on_redirect_to_another_origin():
    transport = Transport("https://www.spherescout.io")
    session = transport._session
    for target, kept in [
        ("https://www.spherescout.io/api/y", True),
        ("http://www.spherescout.io/api/y", False),
        ("https://cdn.spherescout.io/y", False),
    ]:
        prepared = requests.Request("GET", target, headers={"Authorization": "Bearer x"}).prepare()
        session.rebuild_auth(prepared, None)
        assert ("Authorization" in prepared.headers) is kept, target
    transport.close()


def test_charging_requests_use_the_charging_adapter():
    transport = Transport("https://www.spherescout.io")
    session = transport._session
    safe = session.get_adapter("https://www.spherescout.io/api/x")
    session.charging(True)
    try:
        charging = session.get_adapter("https://www.spherescout.io/api/x")
    finally:
        session.charging(False)
    assert safe.max_retries.status == 5
    assert charging.max_retries.status == 0
    assert charging.max_retries.read is False
    transport.close()
