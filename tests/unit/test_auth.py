"""Origin-bound request signing and the API-key scheme state machine (no sockets)."""

from __future__ import annotations

import requests

from scoutframe.api.auth import ApiKeyAuth, JWTAuth, origin_of

KEY = "cd" * 32


def prepared(url: str, headers: dict[str, str] | None = None) -> requests.PreparedRequest:
    return requests.Request("GET", url, headers=headers).prepare()


def answer_401(
    request: requests.PreparedRequest, body: bytes = b'{"detail": "no"}'
) -> requests.Response:
    response = requests.Response()
    response.status_code = 401
    response.request = request
    response._content = body
    return response


def test_origin_of_normalises_default_ports_and_case():
    assert origin_of("https://WWW.SphereScout.io/api/x?q=1") == ("https", "www.spherescout.io", 443)
    assert origin_of("https://www.spherescout.io:443/") == ("https", "www.spherescout.io", 443)
    assert origin_of("http://127.0.0.1:8000") == ("http", "127.0.0.1", 8000)
    assert origin_of("http://127.0.0.1:8000") != origin_of("https://127.0.0.1:8000")


def test_signs_only_the_api_origin():
    auth = ApiKeyAuth(KEY, "https://www.spherescout.io")
    assert (
        auth(prepared("https://www.spherescout.io/api/user/profile")).headers["Authorization"]
        == f"Bearer {KEY}"
    )
    for other in (
        "https://storage.spherescout.io/x.csv",
        "http://www.spherescout.io/api/x",
        "https://www.spherescout.io:8443/api/x",
        "https://www.spherescout.io.evil/",
    ):
        request = auth(prepared(other, {"Authorization": "Bearer leaked"}))
        assert "Authorization" not in request.headers, other


def test_bearer_falls_back_to_token_once_and_remembers():
    auth = ApiKeyAuth(KEY, "https://www.spherescout.io")
    first = auth(prepared("https://www.spherescout.io/api/x"))
    assert auth.recover(answer_401(first), transport=None) is True  # type: ignore[arg-type]
    assert auth.scheme == "Token"
    second = auth(prepared("https://www.spherescout.io/api/x"))
    assert second.headers["Authorization"] == f"Token {KEY}"
    auth.on_success()
    # Later 401s (a revoked key) do not flip the scheme back and forth.
    assert auth.recover(answer_401(second), transport=None) is False  # type: ignore[arg-type]
    assert auth.scheme == "Token"


def test_failed_fallback_returns_to_bearer():
    auth = ApiKeyAuth(KEY, "https://www.spherescout.io")
    first = auth(prepared("https://www.spherescout.io/api/x"))
    assert auth.recover(answer_401(first), transport=None) is True  # type: ignore[arg-type]
    second = auth(prepared("https://www.spherescout.io/api/x"))
    auth.replay_failed(answer_401(second))
    assert auth.scheme == "Bearer"
    assert auth.confirmed is False


def test_reprs_hide_credentials():
    assert KEY not in repr(ApiKeyAuth(KEY, "https://www.spherescout.io"))
    jwt = JWTAuth("me@x.io", "pass-word-1", "https://www.spherescout.io")
    assert "pass-word-1" not in repr(jwt)
    assert "me@x.io" in repr(jwt)
    assert jwt.header() is None  # nothing to send before login
