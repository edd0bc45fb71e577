"""Authentication paths and API-key management over HTTP."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import requests


def _profile(url: str, auth: str | None) -> requests.Response:
    headers = {"Authorization": auth} if auth else {}
    return requests.get(f"{url}/api/user/profile", headers=headers, timeout=10)


@pytest.mark.parametrize("scheme", ["Bearer", "Token"])
def test_api_key_with_either_prefix(sandbox, scheme):
    r = _profile(sandbox.url, f"{scheme} {sandbox.api_key}")
    assert r.status_code == 200
    assert r.json()["email"] == sandbox.username


@pytest.mark.parametrize(
    "auth", [None, "Bearer", "Bearer " + "0" * 64, "Basic abc", "Bearer not.a.jwt"]
)
def test_bad_credentials_are_401_with_challenge(sandbox, auth):
    r = _profile(sandbox.url, auth)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert isinstance(r.json()["detail"], str)


def test_jwt_login_and_use(sandbox):
    r = requests.post(
        f"{sandbox.url}/api/auth/login",
        timeout=10,
        json={"username": sandbox.username, "password": sandbox.password},
    )
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"access", "refresh", "user"}
    assert body["user"]["email"] == sandbox.username
    assert _profile(sandbox.url, f"Bearer {body['access']}").json()["email"] == sandbox.username
    # the refresh token is not an access token
    assert _profile(sandbox.url, f"Bearer {body['refresh']}").status_code == 401


def test_wrong_password_is_401(sandbox):
    r = requests.post(
        f"{sandbox.url}/api/auth/login",
        timeout=10,
        json={"username": sandbox.username, "password": "wrong"},
    )
    assert r.status_code == 401
    assert "access" not in r.json()


def test_login_without_fields_is_400(sandbox):
    r = requests.post(f"{sandbox.url}/api/auth/login/", json={"username": "x"}, timeout=10)
    assert r.status_code == 400
    assert r.json() == {"password": ["This field is required."]}


def test_access_expiry_refresh_and_refresh_expiry(make_sandbox):
    sb = make_sandbox(access_token_lifetime=60, refresh_token_lifetime=3600)
    tokens = requests.post(
        f"{sb.url}/api/auth/login",
        timeout=10,
        json={"username": sb.username, "password": sb.password},
    ).json()
    assert _profile(sb.url, f"Bearer {tokens['access']}").status_code == 200
    sb.admin.advance_clock(61)
    r = _profile(sb.url, f"Bearer {tokens['access']}")
    assert r.status_code == 401
    assert r.json()["code"] == "token_not_valid"
    refreshed = requests.post(
        f"{sb.url}/api/token/refresh", json={"refresh": tokens["refresh"]}, timeout=10
    )
    assert refreshed.status_code == 200
    assert set(refreshed.json()) == {"access"}
    assert _profile(sb.url, f"Bearer {refreshed.json()['access']}").status_code == 200
    sb.admin.advance_clock(3600)
    r = requests.post(
        f"{sb.url}/api/token/refresh/", json={"refresh": tokens["refresh"]}, timeout=10
    )
    assert r.status_code == 401
    bad = requests.post(f"{sb.url}/api/token/refresh", json={"refresh": "garbage"}, timeout=10)
    assert bad.status_code == 401


def test_key_shown_once_listed_without_it_and_revoked(sandbox, account, api_for):
    _, api = account
    created = api.post("/api/user/api-keys", json={"name": "laptop"})
    assert created.status_code == 201
    item = created.json()
    key = item["key"]
    assert len(key) == 64
    assert key == key.lower()
    assert int(key, 16) >= 0
    assert item["token_key"] == key[:8]
    assert item["expiry"] is None
    assert item["name"] == "laptop"
    listing = api.get("/api/user/api-keys").json()
    mine = [k for k in listing if k["id"] == item["id"]]
    assert mine == [{k: v for k, v in item.items() if k != "key"}]
    assert key not in api.get("/api/user/api-keys/").text
    new_api = api_for(sandbox.url, f"Token {key}")
    assert new_api.get("/api/user/profile").status_code == 200
    assert api("DELETE", f"/api/user/api-keys/{item['id']}").status_code == 204
    assert new_api.get("/api/user/profile").status_code == 401
    assert api("DELETE", f"/api/user/api-keys/{item['id']}/").status_code == 404
    assert item["id"] not in [k["id"] for k in api.get("/api/user/api-keys").json()]


def test_key_management_with_jwt(sandbox, account, api_for):
    info, _ = account
    tokens = requests.post(
        f"{sandbox.url}/api/auth/login",
        timeout=10,
        json={"username": info["email"], "password": info["password"]},
    ).json()
    jwt_api = api_for(sandbox.url, f"Bearer {tokens['access']}")
    created = jwt_api.post("/api/user/api-keys/", json={})
    assert created.status_code == 201
    assert len(jwt_api.get("/api/user/api-keys").json()) == 2  # the account's first key too


def test_another_accounts_key_is_404(sandbox, account, api):
    _, other = account
    other_key_id = other.get("/api/user/api-keys").json()[0]["id"]
    assert api("DELETE", f"/api/user/api-keys/{other_key_id}").status_code == 404
    assert other.get("/api/user/profile").status_code == 200  # still works


def test_expired_key(make_sandbox, api_for):
    sb = make_sandbox()
    api = api_for(sb.url, f"Bearer {sb.api_key}")
    expiry = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    created = api.post("/api/user/api-keys", json={"name": "short", "expiry": expiry}).json()
    assert created["expiry"].endswith("Z")
    short = api_for(sb.url, f"Bearer {created['key']}")
    assert short.get("/api/user/profile").status_code == 200
    sb.admin.advance_clock(3601)
    r = short.get("/api/user/profile")
    assert r.status_code == 401
    assert "expired" in r.json()["detail"]
    assert api.get("/api/user/profile").status_code == 200  # the demo key has no expiry


def test_bad_expiry_is_field_error(api):
    r = api.post("/api/user/api-keys", json={"expiry": "next tuesday"})
    assert r.status_code == 400
    assert list(r.json()) == ["expiry"]


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),  # zero-padded, as RFC 3339 wants
        ("0999-12-31T23:59:59+00:00", "0999-12-31T23:59:59Z"),
        ("2999-01-01t00:00:00z", "2999-01-01T00:00:00Z"),  # RFC 3339 allows lower case
    ],
)
def test_key_expiry_is_rfc3339_both_ways(account, sent, shown):
    """``expiry`` is an RFC 3339 date-time (the OpenAPI document says so): accepted, answered."""
    _, api = account
    r = api.post("/api/user/api-keys", json={"name": "dated", "expiry": sent})
    assert r.status_code == 201, r.text
    assert r.json()["expiry"] == shown
    assert _RFC3339.fullmatch(r.json()["created"])
    listed = {k["id"]: k for k in api.get("/api/user/api-keys").json()}
    assert listed[r.json()["id"]]["expiry"] == shown
