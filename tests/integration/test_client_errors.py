"""Every error path of the client core, against the sandbox (and a tiny loopback server)."""

from __future__ import annotations

import socket
import time

import pytest
import requests
import urllib3

from scoutframe.api.client import Client
from scoutframe.api.filters import Filters
from scoutframe.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    EdgeBlockedError,
    FilterError,
    InsufficientCreditsError,
    NotFoundError,
    RateLimitError,
    ScoutError,
    ServerError,
    TransportError,
)
from scoutframe.read import read_spherescout


def request_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "scoutframe"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_400_carries_field_errors(sandbox, client_for):
    client = client_for(sandbox)
    with pytest.raises(BadRequestError) as caught:
        client.api_keys.create(name="x", expiry="not a date")
    assert caught.value.status == 400
    assert list(caught.value.field_errors) == ["expiry"]
    assert "expiry" in str(caught.value)


def test_400_for_unknown_filter_values_in_docs_flavour(sandbox_docs, client_for):
    client = client_for(sandbox_docs)
    with pytest.raises(BadRequestError) as caught:
        client.transport.get_json("/api/companies", params=[("countries", "XX")])
    assert "countries" in caught.value.field_errors
    assert "XX" in caught.value.field_errors["countries"][0]


def test_401_wrong_key(sandbox, client_for):
    client = client_for(sandbox, "0" * 64)
    with pytest.raises(AuthenticationError) as caught:
        client.profile()
    assert caught.value.status == 401
    assert "API key" in str(caught.value)  # says what to check
    assert client.auth_scheme == "Bearer"  # the failed fallback is not remembered


def test_no_credential_fails_before_any_request(loopback_server, monkeypatch):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    server = loopback_server(lambda *_: (200, {"Content-Type": "application/json"}, b"{}"))
    client = Client(base_url=server.url, allow_http=True, config_file="/nonexistent/c.toml")
    try:
        for call in (
            client.profile,
            lambda: client.search(countries="FR"),
            lambda: read_spherescout(countries="FR", client=client),
        ):
            with pytest.raises(ConfigurationError) as caught:
                call()
            message = str(caught.value)
            assert "SPHERESCOUT_API_KEY" in message
            assert "SPHERESCOUT_USERNAME" in message
            assert "/nonexistent/c.toml" in message
        assert server.requests == []  # refused before anything was sent
    finally:
        client.close()


def test_a_server_that_is_not_the_api_is_named_as_such(loopback_server):
    html = b"<html><body>Welcome to nginx!</body></html>"
    server = loopback_server(lambda *_: (404, {"Content-Type": "text/html"}, html))
    client = Client("k" * 64, server.url, allow_http=True, config_file="/nonexistent/c.toml")
    try:
        with pytest.raises(
            ConfigurationError, match="does not look like the SphereScout API"
        ) as caught:
            client.profile()
        assert "SPHERESCOUT_BASE_URL" in str(caught.value)
        assert "text/html" in str(caught.value)
    finally:
        client.close()


def test_403_insufficient_credits(sandbox, client_for, fresh_account):
    account = fresh_account(sandbox, credits=3)
    client = client_for(sandbox, account["api_key"])
    filters = Filters(countries="FR").resolve(client)
    page = client.search(filters)
    if sandbox.flavor_name == "docs":
        path, params = "/api/download-csv", [("search_id", str(page.search_id))]
    else:
        path, params = "/api/download-csv/", filters.to_params()
    with pytest.raises(InsufficientCreditsError) as caught:
        client.transport.request("GET", path, params=params, charging=True)
    assert caught.value.status == 403
    assert caught.value.required_credits == page.total_count
    assert caught.value.available_credits == 3
    assert "Nothing was charged" in str(caught.value)
    assert client.profile().credits == 3


def test_404(sandbox, client_for):
    client = client_for(sandbox)
    with pytest.raises(NotFoundError) as caught:
        client.api_keys.revoke(987654)
    assert caught.value.status == 404
    assert "987654" in str(caught.value)  # the request is named
    assert "Check the id" in str(caught.value)
    assert "num_pages" not in str(caught.value)
    last = client.search(countries="FR", page=1).num_pages
    with pytest.raises(NotFoundError, match="page number against num_pages") as caught:
        client.search(countries="FR", page=last + 1)
    assert "Check the id" not in str(caught.value)


def test_429_retry_after_above_cap_raises_at_once(sandbox, client_for, caplog):
    client = client_for(sandbox, retry_after_cap=0.5)
    client.profile()  # settle the auth scheme first
    sandbox.admin.set_faults(p429=1.0, seed=1)
    caplog.set_level("DEBUG", logger="scoutframe")
    with pytest.raises(RateLimitError) as caught:
        client.profile()
    assert caught.value.retry_after == 1.0
    assert "try again in 1 s" in str(caught.value)
    assert request_lines(caplog) == [line for line in request_lines(caplog) if "retries 0" in line]


def test_429_is_retried_after_retry_after(sandbox, client_for, caplog):
    client = client_for(sandbox, max_retries=4)
    balance = client.profile().credits
    sandbox.admin.set_faults(p429=0.5, seed=3)
    caplog.set_level("DEBUG", logger="scoutframe")
    for _ in range(3):
        assert client.profile().credits == balance
    retried = [line for line in request_lines(caplog) if "retries 0" not in line]
    assert retried, "the seeded 429s should have forced at least one retry"


def test_5xx_retried_then_success(sandbox, client_for, caplog):
    client = client_for(sandbox, max_retries=6)
    expected = client.categories("plumb", limit=3)
    sandbox.admin.set_faults(p503=0.5, seed=11)
    caplog.set_level("DEBUG", logger="scoutframe")
    results = [client.categories("plumb", limit=3) for _ in range(6)]
    assert all(r.equals(expected) for r in results)
    assert expected["name"].iloc[0] == "Plumber"
    counted = sum(
        int(line.rsplit("retries ", 1)[1].rstrip(")"))
        for line in request_lines(caplog)
        if "retries" in line
    )
    announced = [line for line in request_lines(caplog) if line.startswith("retry ")]
    assert counted >= 1
    assert len(announced) == counted
    assert all("GET /api/categories" in line and "after 503" in line for line in announced)


def test_5xx_exhausted_raises_server_error(sandbox, client_for, caplog):
    client = client_for(sandbox, max_retries=2)
    client.profile()
    sandbox.admin.set_faults(p500=1.0, seed=5)
    caplog.set_level("DEBUG", logger="scoutframe")
    with pytest.raises(ServerError) as caught:
        client.profile()
    assert caught.value.status == 500
    assert "retries 2" in request_lines(caplog)[-1]


def test_charging_request_is_not_retried_on_5xx(sandbox, client_for, caplog):
    client = client_for(sandbox, max_retries=3)
    client.profile()
    sandbox.admin.set_faults(p503=1.0, seed=5)
    caplog.set_level("DEBUG", logger="scoutframe")
    with pytest.raises(ServerError):
        client.transport.request("GET", "/api/user/profile", charging=True)
    assert "retries 0" in request_lines(caplog)[-1]


def test_connection_refused_is_a_transport_error(client_for, sandbox_docs):
    port = free_port()
    client = client_for(sandbox_docs, "k" * 64, base_url=f"http://127.0.0.1:{port}", max_retries=1)
    with pytest.raises(TransportError) as caught:
        client.profile()
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "Check that the address is right" in message
    assert caught.value.__cause__ is None


def test_read_timeout_is_a_transport_error(sandbox, client_for):
    client = client_for(sandbox, timeout=(2.0, 0.2), max_retries=1)
    client.profile()
    sandbox.admin.set_faults(latency_ms=600)
    with pytest.raises(TransportError, match="read timeout"):
        client.profile()
    time.sleep(0.7)  # let the abandoned requests finish before the next test sets faults


def _answers(client) -> list[int]:
    """Record the status of every answer whose headers reach the API session (a hook)."""
    statuses: list[int] = []
    client.transport._session.hooks["response"].append(
        lambda response, *args, **kwargs: statuses.append(response.status_code)
    )
    return statuses


def test_body_cut_off_is_retried_then_mapped(sandbox, client_for):
    client = client_for(sandbox, max_retries=2)
    client.profile()
    sandbox.admin.set_faults(reset=1.0, seed=2)
    answers = _answers(client)
    with pytest.raises(TransportError, match="broke"):
        client.categories()
    assert answers == [200, 200, 200]  # headers came each time, the body broke: 1 + 2 retries
    sandbox.admin.set_faults(reset=0.3, seed=4)
    answers.clear()
    for _ in range(4):
        assert client.categories("plumb", limit=2)["name"].iloc[0] == "Plumber"
    assert len(answers) > 4  # some bodies broke off and were fetched again


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_page_walk_survives_bodies_cut_off_with_default_retries(sandbox, client_for, seed):
    client = client_for(sandbox)  # default max_retries; the fixture only shortens the backoff
    first = client.search(countries="FR", page=1)
    pages = min(30, first.num_pages or 0)
    assert pages >= 20
    sandbox.admin.set_faults(reset=0.3, seed=seed)
    walked = [client.search(countries="FR", page=n) for n in range(1, pages + 1)]
    assert walked[0].contacts == first.contacts
    ids = {contact["place_id"] for page in walked for contact in page.contacts}
    assert len(ids) == 50 * pages


def test_edge_blocked_html_403(loopback_server, client_for, sandbox_docs):
    html = b"<!DOCTYPE html><html><body>Access denied | edge</body></html>"
    edge = loopback_server(lambda *_: (403, {"Content-Type": "text/html; charset=utf-8"}, html))
    client = client_for(sandbox_docs, "k" * 64, base_url=edge.url)
    with pytest.raises(EdgeBlockedError) as caught:
        client.profile()
    assert caught.value.status == 403
    assert "User-Agent" in str(caught.value)
    assert "network" in str(caught.value)
    assert edge.requests[0][2]["User-Agent"].startswith("scoutframe/")


def _invalid_url(client_for, sb):
    Client("k", "http://", allow_http=True)


def _bad_scheme(client_for, sb):
    Client("k", "ftp://example.com")


def _refused(client_for, sb):
    client_for(sb, "k", base_url=f"http://127.0.0.1:{free_port()}", max_retries=0).profile()


def _invalid_download_url(client_for, sb):
    client_for(sb).transport.download("http:///nohost")


def _download_refused(client_for, sb):
    client_for(sb).transport.download(f"http://127.0.0.1:{free_port()}/file.csv")


def _read_timeout(client_for, sb):
    client = client_for(sb, timeout=(1.0, 0.05), max_retries=0)
    sb.admin.set_faults(latency_ms=300)
    client.transport.get_json("/api/companies", params=[("countries", "FR")])


def _body_cut(client_for, sb):
    client = client_for(sb, max_retries=0)
    sb.admin.set_faults(reset=1.0)
    client.categories()


@pytest.mark.parametrize(
    "make_call",
    [
        _invalid_url,
        _bad_scheme,
        _refused,
        _invalid_download_url,
        _download_refused,
        _read_timeout,
        _body_cut,
    ],
)
def test_no_requests_or_urllib3_exception_escapes(make_call, client_for, sandbox_docs):
    try:
        with pytest.raises(ScoutError) as caught:
            make_call(client_for, sandbox_docs)
    finally:
        sandbox_docs.admin.set_faults(latency_ms=0, reset=0)
    assert not isinstance(caught.value, requests.RequestException | urllib3.exceptions.HTTPError)
    assert isinstance(caught.value, ConfigurationError | TransportError)
    assert caught.value.__cause__ is None or isinstance(caught.value.__cause__, ScoutError)


def test_html_answers_say_the_origin_is_not_the_api(loopback_server, client_for, sandbox_docs):
    page = b"<html><body>captive portal</body></html>"
    portal = loopback_server(lambda *_: (200, {"Content-Type": "text/html"}, page))
    for client in (
        client_for(sandbox_docs, "k" * 64, base_url=portal.url),
        client_for(sandbox_docs, username="me@x.io", password="pw", base_url=portal.url),
    ):
        with pytest.raises(ConfigurationError, match="does not look like the SphereScout API"):
            client.profile()


@pytest.mark.parametrize(
    ("body", "words"),
    [(b"", "with an empty body"), (b'{"credits": 1', r"with malformed JSON \(13 bytes\)")],
)
def test_broken_json_answers_say_what_came(loopback_server, client_for, sandbox_docs, body, words):
    server = loopback_server(lambda *_: (200, {"Content-Type": "application/json"}, body))
    client = client_for(sandbox_docs, "k" * 64, base_url=server.url)
    with pytest.raises(APIError, match=words) as caught:
        client.profile()
    assert "but got application/json" not in str(caught.value)
    assert not isinstance(caught.value, requests.RequestException | ValueError)


def test_ids_are_checked_and_a_missing_country_list_is_asked_for_once(
    loopback_server, client_for, sandbox_docs
):
    json_type = {"Content-Type": "application/json"}
    categories = b'[{"id": 8059, "name": "Plumber", "gcid": "gcid:plumber"}]'

    def answer(method, path, headers):
        if path.startswith("/api/categories"):
            return 200, json_type, categories
        if path.startswith("/api/companies"):
            return 200, json_type, b'{"totalCount": 0, "results": []}'
        return 404, json_type, b'{"detail": "Not found."}'

    server = loopback_server(answer)
    client = client_for(sandbox_docs, "k" * 64, base_url=server.url)
    for _ in range(3):
        assert client.search(countries="xx", category=8059).total_count == 0  # codes accepted
    with pytest.raises(FilterError, match="Unknown category id 4"):
        client.search(countries="FR", category=4)
    paths = [request[1].split("?")[0] for request in server.requests]
    assert paths.count("/api/locations/countries") == 1
    assert paths.count("/api/categories") == 1
    assert paths.count("/api/companies") == 3
