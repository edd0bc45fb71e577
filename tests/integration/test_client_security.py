"""Credentials stay with the API origin and out of every repr, message and log line."""

from __future__ import annotations

import json
import logging

import pytest
import requests

from scoutframe.api.client import Client
from scoutframe.errors import AuthenticationError, ConfigurationError, ScoutError

KEY = "ab" * 32  # shaped like a real key (64 hex)


def json_answer(body: object, status: int = 200) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


PROFILE = {"id": 1, "email": "a@b.c", "username": "a", "credits": 5, "credits_used": 0}


def test_redirect_to_another_origin_is_refused(loopback_server, client_for, sandbox_docs):
    """An API answer that redirects elsewhere is not followed (its answer could not be trusted,
    and nothing is sent there); a redirect within the API origin keeps the credential."""
    other = loopback_server(lambda *_: json_answer(PROFILE))

    def api(method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if path.startswith("/api/user/profile"):
            return 302, {"Location": f"{other.url}/elsewhere/profile"}, b""
        if path == "/api/companies":  # same-origin redirect: credential kept
            return 302, {"Location": "/api/companies-moved"}, b""
        return json_answer({"totalCount": 0, "search_id": None, "preview": []})

    origin = loopback_server(api)
    client = client_for(sandbox_docs, KEY, base_url=origin.url)
    with pytest.raises(ConfigurationError, match="redirect to another origin") as caught:
        client.profile()
    assert KEY not in str(caught.value)
    assert origin.requests[0][2]["Authorization"] == f"Bearer {KEY}"
    assert other.requests == []  # nothing went to the other origin
    client.transport.get_json("/api/companies")
    assert origin.requests[-1][1] == "/api/companies-moved"
    assert origin.requests[-1][2]["Authorization"] == f"Bearer {KEY}"


def test_download_session_never_sends_authorization(loopback_server, client_for, sandbox_docs):
    storage = loopback_server(lambda *_: (206, {"Content-Type": "text/csv"}, b"a,b\n"))
    client = client_for(sandbox_docs, KEY)
    response = client.transport.download(
        f"{storage.url}/exports/x.csv?expires=1&signature=s3cr3t",
        headers={"Authorization": f"Bearer {KEY}", "Range": "bytes=0-"},
    )
    assert response.content == b"a,b\n"
    response.close()
    sent = storage.requests[0][2]
    assert "Authorization" not in sent
    assert sent["Range"] == "bytes=0-"
    assert sent["User-Agent"].startswith("scoutframe/")


def test_auth_object_signs_only_its_origin(client_for, sandbox_docs, loopback_server):
    other = loopback_server(lambda *_: json_answer({}))
    client = client_for(sandbox_docs, KEY)
    with requests.Session() as session:
        session.get(f"{other.url}/x", auth=client.transport.auth, timeout=5).close()
    assert "Authorization" not in other.requests[0][2]


@pytest.mark.parametrize(
    "url", ["http://example.com", "http://10.0.0.1:8000", "http://127.0.0.1.example.com"]
)
def test_plain_http_refused_except_loopback(url, tmp_path):
    with pytest.raises(ConfigurationError, match="allow_http=True"):
        Client(KEY, url, config_file=tmp_path / "none.toml")
    Client(KEY, url, allow_http=True, config_file=tmp_path / "none.toml").close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000",
        "http://127.9.9.9",
        "http://localhost:1",
        "http://[::1]:8000",
        "https://api.spherescout.io",
    ],
)
def test_loopback_http_and_https_accepted(url, tmp_path):
    Client(KEY, url, config_file=tmp_path / "none.toml").close()


def test_download_over_plain_http_refused(tmp_path):
    client = Client(KEY, "https://www.spherescout.io", config_file=tmp_path / "n.toml")
    with client, pytest.raises(ConfigurationError, match="plain http"):
        client.transport.download("http://storage.example.com/f.csv?signature=x")


def wrong_key(key: str) -> str:
    """The same key with its last hex digit changed: well-formed, and surely not the key."""
    last = (int(key[-1], 16) + 1) % 16
    return key[:-1] + format(last, "x")


@pytest.mark.parametrize("last", "0123456789abcdef")
def test_the_wrong_key_differs_from_the_key_whatever_its_last_digit(last: str) -> None:
    key = "ab" * 31 + "c" + last
    wrong = wrong_key(key)
    assert wrong != key
    assert len(wrong) == 64
    assert int(wrong, 16) >= 0  # still 64 hex digits, as the API's keys are


def test_no_credential_in_reprs_messages_or_logs(sandbox_live, client_for, caplog, fresh_account):
    caplog.set_level(logging.DEBUG)  # every logger, urllib3 included
    sb = sandbox_live
    account = fresh_account(sb)
    texts: list[str] = []
    key_client = client_for(sb, account["api_key"])
    key_client.profile()  # Bearer refused, Token accepted
    texts += [
        repr(key_client),
        str(key_client),
        repr(key_client.transport),
        repr(key_client.transport.auth),
    ]
    jwt_client = client_for(sb, username=account["email"], password=account["password"])
    jwt_client.profile()
    auth = jwt_client.transport.auth
    tokens = [auth._access, auth._refresh]
    texts += [repr(jwt_client), repr(auth)]
    sb.admin.advance_clock(16 * 60)
    jwt_client.profile()  # refresh
    tokens.append(auth._access)
    created = key_client.api_keys.create(name="leak-check")
    texts += [repr(created), str(created), repr(key_client.api_keys.list())]
    errors: list[ScoutError] = []
    for make in (
        lambda: client_for(sb, wrong_key(account["api_key"])).profile(),
        lambda: client_for(
            sb, username=account["email"], password="not-" + account["password"]
        ).profile(),
        lambda: Client(account["api_key"], "http://example.com"),
        lambda: key_client.transport.download(f"{sb.url}/nothing?signature=abc123def456"),
    ):
        with pytest.raises(ScoutError) as caught:
            make()
        errors.append(caught.value)
    assert isinstance(errors[0], AuthenticationError)
    texts += [str(e) for e in errors] + [repr(e) for e in errors]
    texts.append(caplog.text)
    secrets = [account["api_key"], account["password"], created.key, *tokens, "abc123def456"]
    assert all(secrets)
    for text in texts:
        for secret in secrets:
            assert secret not in text
