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
    codes = [
        requests.get(f"{sb.url}/api/public/companies", params={"countries": "FR"}, timeout=10)
        for _ in range(11)
    ]
    assert [r.status_code for r in codes[:10]] == [200] * 10
    assert codes[10].status_code == 429
    assert int(codes[10].headers["Retry-After"]) >= 1


def test_off_when_zero(api):
    answers = [api.get("/api/user/profile") for _ in range(60)]
    assert [r.status_code for r in answers] == [200] * 60
    assert "X-RateLimit-Limit" not in answers[-1].headers  # [DESIGN] no limit, no headers


def test_every_authenticated_answer_carries_the_headers(make_sandbox, api_for):
    sb = make_sandbox(rate_limit=1000)
    api = api_for(sb.url, f"Bearer {sb.api_key}")
    sid = api.get("/api/companies", params={"countries": "NZ"}).json()["search_id"]
    task = api.get("/api/download-csv", params={"search_id": sid}).json()["task_id"]
    key_id = api.post("/api/user/api-keys", json={"name": "gone"}).json()["id"]
    entry = api.get("/api/user/search-history").json()["results"][0]["id"]
    login = requests.post(
        f"{sb.url}/api/auth/login",
        timeout=10,
        json={"username": sb.username, "password": sb.password},
    ).json()
    jwt_api = api_for(sb.url, f"Bearer {login['access']}")
    calls = [
        ("GET", "/api/user/profile", 200),
        ("GET", "/api/user/api-keys", 200),
        ("POST", "/api/user/api-keys", 201),
        ("DELETE", f"/api/user/api-keys/{key_id}", 204),
        ("DELETE", f"/api/user/api-keys/{key_id}", 404),
        ("GET", "/api/companies?countries=XX", 400),
        ("GET", "/api/companies?paginate=true&page=999", 404),
        ("GET", "/api/categories?q=plumb&limit=2", 200),
        ("GET", "/api/locations/countries", 200),
        ("GET", "/api/locations/search?q=Paris", 200),
        ("GET", "/api/locations/level1?ids=40", 200),
        ("GET", "/api/professions/summary?countries=FR,BE", 200),
        ("GET", f"/api/download-status/{task}", 200),
        ("GET", "/api/download-status/task_x", 404),
        ("GET", "/api/download-csv?search_id=srch_00000000", 404),
        ("GET", "/api/user/search-history", 200),
        ("GET", f"/api/user/search-history/{entry}/freshness", 200),
        ("GET", f"/api/user/search-history/{entry}/download-delta", 200),
    ]
    for client in (api, jwt_api):
        for method, path, status in calls:
            for slash in ("", "/"):
                if method != "GET" and client is jwt_api:
                    continue
                head, _, query = path.partition("?")
                r = client(method, f"{head}{slash}" + (f"?{query}" if query else ""))
                if method == "DELETE" and status == 204 and slash:
                    assert r.status_code == 404  # already revoked
                else:
                    assert r.status_code == status, (method, path, slash)
                assert r.headers["X-RateLimit-Limit"] == "2000", (method, path)
                assert int(r.headers["X-RateLimit-Remaining"]) >= 0
                assert int(r.headers["X-RateLimit-Reset"]) >= 0


def test_wrong_method_answers_after_authentication(make_sandbox, api_for):
    sb = make_sandbox(rate_limit=1000)
    api = api_for(sb.url, f"Bearer {sb.api_key}")
    for method, path, allow in [
        ("POST", "/api/companies/", "GET, HEAD"),
        ("DELETE", "/api/user/profile", "GET, HEAD"),
        ("PUT", "/api/locations/level1", "GET, HEAD"),
        ("GET", "/api/user/api-keys/1", "DELETE"),
        ("PATCH", "/api/user/api-keys", "GET, POST, HEAD"),
    ]:
        r = api(method, path)
        assert r.status_code == 405, (method, path)
        assert r.json() == {"detail": "Method Not Allowed"}
        assert r.headers["Allow"] == allow
        assert r.headers["X-RateLimit-Limit"] == "2000"
    anonymous = api_for(sb.url)
    r = anonymous("POST", "/api/companies")
    assert r.status_code == 401  # as in DRF: authentication before the method check
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert anonymous("GET", "/api/auth/login").status_code == 405  # open routes: no credential
    assert anonymous("POST", "/api/public/companies").status_code == 405
