"""History, freshness and delta downloads after contacts are added and re-collected."""

from __future__ import annotations

import csv
import io


def _export(api, params, wait_export):
    sid = api.get("/api/companies", params=params).json()["search_id"]
    task = api.get("/api/download-csv", params={"search_id": sid}).json()
    assert wait_export(api, task["task_id"])["status"] == "ready"
    return sid, task


def test_history_freshness_and_deltas(make_sandbox, api_for, wait_export):
    sb = make_sandbox()
    api = api_for(sb.url, f"Bearer {sb.api_key}")
    sid, task = _export(api, {}, wait_export)  # everything: any change is relevant
    history = api.get("/api/user/search-history").json()
    assert history["count"] == 1
    entry = history["results"][0]
    assert entry["kind"] == "full"
    assert entry["parent_id"] is None
    assert entry["search_id"] == sid
    assert entry["row_count"] == task["lead_count"]
    assert entry["status"] == "ready"
    assert entry["download_url"]
    assert entry["filters"] == {}
    fresh = api.get(f"/api/user/search-history/{entry['id']}/freshness").json()
    assert fresh["new_count"] == 0
    assert fresh["is_fresh"] is True
    assert set(fresh) == {"id", "exported_at", "new_count", "is_fresh", "checked_at"}

    added = sb.admin.add_contacts(7)
    assert added["added"] == 7
    assert added["total"] == task["lead_count"] + 7
    recollected = sb.admin.recollect(5)
    assert recollected["recollected"] == 5
    fresh = api.get(f"/api/user/search-history/{entry['id']}/freshness/").json()
    assert fresh["new_count"] == 12
    assert fresh["is_fresh"] is False

    credits_before = api.get("/api/user/profile").json()["credits"]
    r = api.get(f"/api/user/search-history/{entry['id']}/download-delta")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 12
    assert api.get("/api/user/profile").json()["credits"] == credits_before - 12
    delta_id = int(r.headers["X-Search-History-Id"])
    results = api.get("/api/user/search-history").json()["results"]
    assert results[0]["id"] == delta_id  # newest first
    assert results[0]["kind"] == "delta"
    assert results[0]["parent_id"] == entry["id"]
    assert results[0]["row_count"] == 12
    # the updated businesses are in the delta with their newer collected_at
    original = {
        row["place_id"]: row
        for row in csv.DictReader(
            io.StringIO(__import__("requests").get(entry["download_url"], timeout=30).text)
        )
    }
    updated = [row for row in rows if row["place_id"] in original]
    assert len(updated) == 5
    assert all(row["collected_at"] > original[row["place_id"]]["collected_at"] for row in updated)

    # the delta's export time is the next cut-off
    assert api.get(f"/api/user/search-history/{delta_id}/freshness").json()["new_count"] == 0
    sb.admin.add_contacts(2)
    assert api.get(f"/api/user/search-history/{delta_id}/freshness").json()["new_count"] == 2
    again = api.get(f"/api/user/search-history/{delta_id}/download-delta")
    assert len(list(csv.DictReader(io.StringIO(again.text)))) == 2


def test_delta_matches_filters_only(make_sandbox, api_for, wait_export):
    sb = make_sandbox()
    api = api_for(sb.url, f"Bearer {sb.api_key}")
    _export(api, {"countries": "FR"}, wait_export)
    entry = api.get("/api/user/search-history").json()["results"][0]
    sb.admin.add_contacts(300)
    new = api.get(f"/api/user/search-history/{entry['id']}/freshness").json()["new_count"]
    rows = list(
        csv.DictReader(
            io.StringIO(api.get(f"/api/user/search-history/{entry['id']}/download-delta").text)
        )
    )
    assert len(rows) == new
    assert 0 < new < 300
    assert {row["country"] for row in rows} == {"FR"}


def test_other_accounts_history_is_404(sandbox, api, account, wait_export):
    _, other = account
    _export(other, {"countries": "NZ"}, wait_export)
    entry = other.get("/api/user/search-history").json()["results"][0]
    for suffix in ("freshness", "download-delta"):
        r = api.get(f"/api/user/search-history/{entry['id']}/{suffix}")
        assert r.status_code == 404
        assert r.json() == {"detail": "Not found."}
    assert entry["id"] not in [
        e["id"] for e in api.get("/api/user/search-history").json()["results"]
    ]
    assert api.get("/api/user/search-history/abc/freshness").status_code == 404


def test_delta_without_credits_is_403(make_sandbox, api_for, wait_export):
    sb = make_sandbox()
    info = sb.admin.create_account(credits=60)
    api = api_for(sb.url, f"Bearer {info['api_key']}")
    _export(api, {"countries": "NA"}, wait_export)
    balance = api.get("/api/user/profile").json()["credits"]
    entry = api.get("/api/user/search-history").json()["results"][0]
    sb.admin.recollect(20_000)  # everything is newer now
    r = api.get(f"/api/user/search-history/{entry['id']}/download-delta")
    assert r.status_code == 403
    body = r.json()
    assert body["validation_code"] == "insufficient_credits"
    assert body["available_credits"] == balance
    assert api.get("/api/user/search-history").json()["count"] == 1
