"""The live flavour (contract section 9)."""

from __future__ import annotations

import csv
import io
import time

import pytest
import requests


@pytest.fixture
def live(live_sandbox, api_for):
    return api_for(live_sandbox.url, f"Token {live_sandbox.api_key}")


def _wait(api, search_id, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        body = api.get(f"/api/download-status/{search_id}/").json()
        if body["status"] in ("completed", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def test_api_keys_only_with_token_prefix(live_sandbox, api_for):
    bearer = api_for(live_sandbox.url, f"Bearer {live_sandbox.api_key}")
    assert bearer.get("/api/user/profile").status_code == 401
    token = api_for(live_sandbox.url, f"Token {live_sandbox.api_key}")
    assert token.get("/api/user/profile").status_code == 200


def test_jwt_still_bearer(live_sandbox, api_for):
    tokens = requests.post(
        f"{live_sandbox.url}/api/auth/login",
        timeout=10,
        json={"username": live_sandbox.username, "password": live_sandbox.password},
    ).json()
    jwt_api = api_for(live_sandbox.url, f"Bearer {tokens['access']}")
    assert jwt_api.get("/api/user/profile").status_code == 200


def test_unknown_values_are_ignored(live):
    r = live.get("/api/companies", params={"countries": "XX"})
    assert r.status_code == 200
    assert r.json()["totalCount"] == 0
    assert live.get("/api/companies", params={"category": "1"}).json()["totalCount"] == 0
    fr = live.get("/api/companies", params={"countries": "FR"}).json()["totalCount"]
    assert live.get("/api/companies", params={"countries": "FR,XX"}).json()["totalCount"] == fr


def test_phone_shapes_and_extra_fields(live):
    body = live.get(
        "/api/companies", params={"countries": "US", "paginate": "true", "page": "1"}
    ).json()
    assert set(body) > {"totalCount", "search_id", "preview", "page", "num_pages"}
    shapes = {type(c["phone"]) for c in body["preview"]}
    assert shapes == {str, list}
    assert all(len(c["phone"]) != 1 for c in body["preview"] if isinstance(c["phone"], list))
    assert all(len(c) > 20 for c in body["preview"])  # an extra unknown field


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_export_by_filters_and_search_id(live_sandbox, method, api_for):
    info = live_sandbox.admin.create_account(credits=5_000)
    api = api_for(live_sandbox.url, f"Token {info['api_key']}")
    search = api.get("/api/companies", params={"countries": "NZ"}).json()
    r = api(method, "/api/download-csv/", params={"countries": "NZ"})
    assert r.status_code == 200
    start = r.json()
    assert "task_id" not in start
    assert start["status"] == "pending"
    assert start["search_id"] == search["search_id"]
    assert start["lead_count"] == search["totalCount"]
    status = _wait(api, start["search_id"])
    assert status["status"] == "completed"
    assert "download_url" not in status
    got = api.get(f"/api/download-completed-csv/{start['search_id']}/").json()
    rows = list(csv.DictReader(io.StringIO(requests.get(got["download_url"], timeout=30).text)))
    assert len(rows) == search["totalCount"]
    assert api.get("/api/user/profile").json()["credits"] == 5_000 - search["totalCount"]


def test_completed_csv_unknown_search_is_404(live):
    assert live.get("/api/download-completed-csv/srch_00000000/").status_code == 404
    assert live.get("/api/download-status/srch_00000000").status_code == 404


def test_docs_flavour_has_no_live_paths(api):
    assert api.get("/api/download-completed-csv/srch_00000000/").status_code == 404
    assert api.post("/api/download-csv", params={"countries": "FR"}).status_code == 405


def test_failed_export_refunds_in_live_flavour(make_sandbox, api_for):
    sb = make_sandbox(flavor="live", faults="export_fail=1")
    api = api_for(sb.url, f"Token {sb.api_key}")
    before = api.get("/api/user/profile").json()["credits"]
    start = api.post("/api/download-csv/", params={"countries": "NZ"}).json()
    status = _wait(api, start["search_id"])
    assert status["status"] == "failed"
    assert status["error"]
    assert api.get(f"/api/download-completed-csv/{start['search_id']}/").status_code == 404
    assert api.get("/api/user/profile").json()["credits"] == before


def test_bare_search_id_is_refused_not_a_full_export(live):
    sid = live.get("/api/companies", params={"countries": "NZ"}).json()["search_id"]
    before = live.get("/api/user/profile").json()["credits"]
    r = live.get("/api/download-csv/", params={"search_id": sid})
    assert r.status_code == 400
    assert list(r.json()) == ["search_id"]
    assert live.get("/api/user/profile").json()["credits"] == before
