"""Transport pieces that need no socket: retry policies, URL checks, sessions, timeouts."""

from __future__ import annotations

import time

import pytest
import requests
import urllib3
from urllib3.response import HTTPResponse

from scoutframe.auth import ApiKeyAuth
from scoutframe.errors import ConfigurationError
from scoutframe.transport import (
    ScoutRetry,
    Transport,
    charging_retry,
    check_url,
    is_loopback,
    safe_retry,
    user_agent,
)

KEY = "ef" * 32


def response(status: int, retry_after: str | None = None) -> HTTPResponse:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return HTTPResponse(body=b"", headers=headers, status=status, preload_content=False)


def test_safe_policy_retries_idempotent_statuses_only():
    policy = safe_retry(5, 0.5, 60)
    assert policy.is_retry("GET", 503)
    assert policy.is_retry("GET", 429)
    assert policy.is_retry("DELETE", 500)
    assert not policy.is_retry("POST", 503)
    assert not policy.is_retry("GET", 404)


def test_charging_policy_retries_no_status_and_no_read_error():
    policy = charging_retry(5, 0.5, 60)
    for status in (429, 500, 503):
        assert not policy.is_retry("GET", status, has_retry_after=True)
    read_error = urllib3.exceptions.ReadTimeoutError(None, "/x", "read timed out")  # type: ignore[arg-type]
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        policy.increment("GET", "/x", error=read_error)
    connect_error = urllib3.exceptions.NewConnectionError(None, "refused")  # type: ignore[arg-type]
    assert policy.increment("GET", "/x", error=connect_error).connect == 4


def test_backoff_grows_with_jitter():
    policy = safe_retry(10, 1.0, 600)
    assert policy.get_backoff_time() == 0.0
    delays = []
    for _ in range(4):
        policy = policy.increment("GET", "/x", response=response(503))
        delays.append(policy.get_backoff_time())
    for n, delay in enumerate(delays):
        assert 2**n / 2 <= delay <= 2**n
    samples = {safe_retry(10, 1.0, 600).increment("GET", "/x", response=response(503))
               .increment("GET", "/x", response=response(503)).get_backoff_time()
               for _ in range(20)}  # fmt: skip
    assert len(samples) > 1  # jittered


def test_retry_after_above_cap_stops_retrying():
    policy = ScoutRetry(total=5, status_forcelist={429}, retry_after_cap=10.0)
    assert policy.increment("GET", "/x", response=response(429, "3")).total == 4
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        policy.increment("GET", "/x", response=response(429, "3600"))


def test_total_time_is_bounded():
    policy = ScoutRetry(total=100, status_forcelist={503}, backoff_factor=0.01, max_elapsed=5.0,
                        started=time.monotonic() - 10)  # fmt: skip
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        policy.increment("GET", "/x", response=response(503))
    fresh = ScoutRetry(total=100, status_forcelist={503}, backoff_factor=0.01, max_elapsed=5.0)
    copy = fresh.increment("GET", "/x", response=response(503))
    assert copy.started is not None
    assert copy.max_elapsed == 5.0
    assert copy.increment("GET", "/x", response=response(503)).started == copy.started


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.255.0.9", "::1", "[::1]",
                                  "app.localhost"])  # fmt: skip
def test_loopback_hosts(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["example.com", "10.0.0.1", "127.0.0.1.nip.io", "::2", ""])
def test_non_loopback_hosts(host):
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
    transport = Transport("https://www.spherescout.io", auth=ApiKeyAuth(KEY, "https://www.spherescout.io"),
                          secrets=[KEY])  # fmt: skip
    assert user_agent().startswith("scoutframe/")
    assert transport._session.headers["User-Agent"] == user_agent()
    assert transport._downloads.headers["User-Agent"] == user_agent()
    assert KEY not in repr(transport)
    transport.close()


def test_download_session_strips_authorization():
    transport = Transport("https://www.spherescout.io")
    request = requests.Request("GET", "https://storage.example/x.csv",
                               headers={"Authorization": "Bearer x"}, auth=("u", "p"))  # fmt: skip
    prepared = transport._downloads.prepare_request(request)
    assert "Authorization" not in prepared.headers
    transport.close()


def test_api_session_strips_authorization_on_redirect_to_another_origin():
    transport = Transport("https://www.spherescout.io")
    session = transport._session
    for target, kept in [("https://www.spherescout.io/api/y", True),
                         ("http://www.spherescout.io/api/y", False),
                         ("https://cdn.spherescout.io/y", False)]:  # fmt: skip
        prepared = requests.Request("GET", target, headers={"Authorization": "Bearer x"}).prepare()
        session.rebuild_auth(prepared, None)
        assert ("Authorization" in prepared.headers) is kept, target
    transport.close()


def test_charging_requests_use_the_charging_adapter():
    transport = Transport("https://www.spherescout.io")
    session = transport._session
    safe = session.get_adapter("https://www.spherescout.io/api/x")
    session.policy.charging = True
    try:
        charging = session.get_adapter("https://www.spherescout.io/api/x")
    finally:
        session.policy.charging = False
    assert safe.max_retries.status == 5
    assert charging.max_retries.status == 0
    assert charging.max_retries.read is False
    transport.close()
