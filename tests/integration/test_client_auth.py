"""Authentication against the sandbox: API key schemes, JWT login, expiry, refresh, re-login."""

from __future__ import annotations

import pytest

from scoutframe.api.client import Client
from scoutframe.errors import AuthenticationError

DAY = 86_400


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "scoutframe"]


def test_api_key_scheme_fallback_is_tried_once_and_remembered(sandbox, client_for, caplog):
    client = client_for(sandbox)
    caplog.set_level("DEBUG", logger="scoutframe")
    for _ in range(3):
        client.profile()
    sent = lines(caplog)
    if sandbox.flavor_name == "live":
        # Bearer refused once, Token accepted, then Token straight away.
        assert [s.split(" -> ")[1].split(" ")[0] for s in sent] == ["401", "200", "200", "200"]
        assert client.auth_scheme == "Token"
    else:
        assert [s.split(" -> ")[1].split(" ")[0] for s in sent] == ["200", "200", "200"]
        assert client.auth_scheme == "Bearer"


def test_client_configures_itself_from_the_environment(sandbox, monkeypatch, tmp_path):
    for name, value in sandbox.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SPHERESCOUT_CONFIG", str(tmp_path / "none.toml"))
    with Client(state_dir=tmp_path) as client:  # loopback http needs no allow_http
        assert client.base_url == sandbox.url
        assert client.profile().email == sandbox.username
        assert "environment" in repr(client)


def test_jwt_login_and_key_management(sandbox, client_for, caplog):
    caplog.set_level("DEBUG", logger="scoutframe")
    client = client_for(sandbox, username=sandbox.username, password=sandbox.password)
    assert client.profile().email == sandbox.username
    assert [k.name for k in client.api_keys.list()]  # key management accepts a JWT
    assert "POST /api/auth/login -> 200" in lines(caplog)[0]
    assert sum("/api/auth/login" in s for s in lines(caplog)) == 1


def test_jwt_access_expiry_refreshes_once(sandbox, client_for, caplog):
    client = client_for(sandbox, username=sandbox.username, password=sandbox.password)
    client.profile()
    sandbox.admin.advance_clock(16 * 60)  # access tokens live 15 minutes
    caplog.set_level("DEBUG", logger="scoutframe")
    assert client.profile().email == sandbox.username
    sent = [s.split(" in ")[0] for s in lines(caplog)]
    assert sent == [
        "GET /api/user/profile -> 401",
        "POST /api/token/refresh -> 200",
        "GET /api/user/profile -> 200",
    ]
    caplog.clear()
    client.profile()
    assert len(lines(caplog)) == 1


def test_jwt_refresh_expiry_logs_in_again_with_the_password(sandbox, client_for, caplog):
    client = client_for(sandbox, username=sandbox.username, password=sandbox.password)
    client.profile()
    sandbox.admin.advance_clock(8 * DAY)  # refresh tokens live 7 days
    caplog.set_level("DEBUG", logger="scoutframe")
    assert client.profile().email == sandbox.username
    sent = [s.split(" in ")[0] for s in lines(caplog)]
    assert sent == [
        "GET /api/user/profile -> 401",
        "POST /api/token/refresh -> 401",
        "POST /api/auth/login -> 200",
        "GET /api/user/profile -> 200",
    ]


def test_jwt_refresh_expiry_without_password_says_what_to_do(sandbox, client_for):
    client = client_for(sandbox, username=sandbox.username, password=sandbox.password)
    client.profile()
    client.transport.auth._password = None  # a session whose password is no longer known
    sandbox.admin.advance_clock(8 * DAY)
    with pytest.raises(AuthenticationError, match="session expired") as caught:
        client.profile()
    assert "Client(username=..., password=...)" in str(caught.value)


def test_jwt_wrong_password(sandbox, client_for):
    client = client_for(sandbox, username=sandbox.username, password="wrong password")
    with pytest.raises(AuthenticationError, match=r"login as .* was refused") as caught:
        client.profile()
    assert "wrong password" not in str(caught.value)


def test_username_without_password_is_explained(sandbox, client_for):
    client = client_for(sandbox, username=sandbox.username)
    with pytest.raises(AuthenticationError, match="no password known"):
        client.profile()


def _in_threads(call, n: int = 8) -> list[object]:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: call(), range(n)))


def test_scheme_fallback_from_many_threads(sandbox_live, client_for, caplog):
    client = client_for(sandbox_live)
    caplog.set_level("DEBUG", logger="scoutframe")
    profiles = _in_threads(client.profile)
    assert {p.email for p in profiles} == {sandbox_live.username}
    assert client.auth_scheme == "Token"
    refused = [s for s in lines(caplog) if "-> 401" in s]
    assert 1 <= len(refused) <= 8  # at most one Bearer try per thread that raced the switch
    caplog.clear()
    client.profile()
    assert "-> 200" in lines(caplog)[0]


def test_jwt_refresh_from_many_threads_refreshes_once(sandbox, client_for, caplog):
    client = client_for(sandbox, username=sandbox.username, password=sandbox.password)
    client.profile()
    sandbox.admin.advance_clock(16 * 60)
    caplog.set_level("DEBUG", logger="scoutframe")
    profiles = _in_threads(client.profile)
    assert {p.email for p in profiles} == {sandbox.username}
    assert sum("/api/token/refresh" in s for s in lines(caplog)) == 1
