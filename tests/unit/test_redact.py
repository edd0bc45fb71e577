"""The one redaction helper."""

from __future__ import annotations

import pytest

from scoutframe._redact import MASK, redact, redact_headers, redact_url

KEY = "0123456789abcdef" * 4
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXBhcnQ"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"Authorization: Bearer {KEY}", KEY),
        (f"{{'Authorization': 'Token {KEY}'}}", KEY),
        (f"header Token {KEY[:20]} sent", KEY[:20]),
        (f"the key {KEY} was used", KEY),
        (f"access token {JWT}", JWT),
        ("password=hunter2&x=1", "hunter2"),
        ('{"password": "correct horse battery"}', "correct horse battery"),
        ("{'refresh': 'abc.def'}", "abc.def"),
        ("GET /f.csv?expires=1&signature=9f8e7d6c5b", "9f8e7d6c5b"),
        ("api_key: sk_live_123456", "sk_live_123456"),
    ],
)
def test_known_shapes_are_scrubbed(text, secret):
    out = redact(text)
    assert secret not in out
    assert MASK in out


def test_exact_secrets_are_scrubbed_whatever_their_shape():
    out = redact("user logged in with Tr0ub4dor&3 today", secrets=["Tr0ub4dor&3", None, ""])
    assert "Tr0ub4dor" not in out
    assert out == f"user logged in with {MASK} today"


def test_plain_text_is_left_alone():
    text = "GET /api/companies?countries=FR&category=8059 -> 200 in 0.004s (retries 0)"
    assert redact(text) == text
    assert redact("Invalid token header. Use: Authorization") == (
        "Invalid token header. Use: Authorization"
    )
    assert redact("Pass Client(username=..., password=...)") == (
        "Pass Client(username=..., password=...)"
    )


def test_redact_url():
    url = f"https://me:pw@storage.example/x.csv?X-Amz-Signature=abc&expires=9&token={KEY}&n=1"
    out = redact_url(url)
    assert "abc" not in out
    assert "pw" not in out
    assert KEY not in out
    assert "expires=9" in out
    assert "n=1" in out
    assert out.startswith("https://***@storage.example/x.csv?")


def test_redact_headers():
    out = redact_headers({"Authorization": "Bearer x", "Cookie": "s=1", "Accept": "text/csv"})
    assert out == {"Authorization": MASK, "Cookie": MASK, "Accept": "text/csv"}
