"""Rate limits per credential and, for the public endpoint, per client address."""

from __future__ import annotations

import requests


def test_per_credential_limit(make_sandbox, api_for):
    sb = make_sandbox(rate_limit=2)  # burst 4
    api = api_for(sb.url, f"Bearer {sb.api_key}")
    answers = [api.get("/api/user/profile") for _ in range(5)]
    ok, limited = answers[:4], answers[4]
    assert [r.status_code for r in ok] == [200] * 4
    for r in ok:
        assert r.headers["X-RateLimit-Limit"] == "4"
        assert int(r.headers["X-RateLimit-Reset"]) >= 0
    assert [int(r.headers["X-RateLimit-Remaining"]) for r in ok] == [3, 2, 1, 0]
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert "throttled" in limited.json()["detail"]
    # another credential has its own bucket; errors after auth carry the headers too
    other = sb.admin.create_account(credits=1)
    other_api = api_for(sb.url, f"Bearer {other['api_key']}")
    r = other_api.get("/api/user/search-history/999/freshness")
    assert r.status_code == 404
    assert "X-RateLimit-Remaining" in r.headers


def test_public_endpoint_per_address(make_sandbox):
    sb = make_sandbox(rate_limit=2)
    codes = [requests.get(f"{sb.url}/api/public/companies", params={"countries": "FR"},
                          timeout=10) for _ in range(11)]
    assert [r.status_code for r in codes[:10]] == [200] * 10
    assert codes[10].status_code == 429
    assert int(codes[10].headers["Retry-After"]) >= 1


def test_off_when_zero(api):
    answers = [api.get("/api/user/profile") for _ in range(60)]
    assert [r.status_code for r in answers] == [200] * 60
    assert "X-RateLimit-Limit" not in answers[-1].headers  # [DESIGN] no limit, no headers
