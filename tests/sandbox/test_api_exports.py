"""Exports: life cycle, credits and refunds, the pre-signed download, pacing."""

from __future__ import annotations

import csv
import io

import requests

CSV_HEADER = (
    "place_id,name,email,phone,website,instagram,facebook,address,city,zipcode,"
    "level1_location,level2_location,level3_location,country,categories,rating,review_count,"
    "latitude,longitude,collected_at"
)


def _search(api, params):
    body = api.get("/api/companies", params=params).json()
    return body["search_id"], body["totalCount"]


def test_export_life_cycle_charges_once_and_serves_full_csv(sandbox, account, wait_export):
    info, api = account
    sid, total = _search(api, {"countries": "BE", "email": "true"})
    r = api.get("/api/download-csv", params={"search_id": sid})
    assert r.status_code == 202
    start = r.json()
    assert start["status"] == "pending"
    assert start["search_id"] == sid
    assert start["lead_count"] == total
    assert start["task_id"].startswith("task_")
    status = wait_export(api, start["task_id"])
    assert status["status"] == "ready", status
    assert status["progress"] == 1.0
    assert status["expires_at"].endswith("Z")
    url = status["download_url"]
    assert url.startswith(sandbox.storage_url + "/")
    assert not url.startswith(sandbox.url + "/api/")
    download = requests.get(url, timeout=30)
    assert download.status_code == 200
    assert download.headers["Content-Type"].startswith("text/csv")
    text = download.content.decode("utf-8")
    assert text.split("\n", 1)[0] == CSV_HEADER
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == total
    assert [r["place_id"] for r in rows] == sorted(r["place_id"] for r in rows)
    emails = [e for r in rows for e in r["email"].split("; ") if e]
    assert emails
    assert not any("*" in e for e in emails)
    assert all(r["country"] == "BE" for r in rows)
    profile = api.get("/api/user/profile").json()
    assert profile["credits"] == 10_000 - total
    assert profile["credits_used"] == total
    ledger = sandbox.admin.ledger(info["id"])
    assert [e["delta"] for e in ledger] == [10_000, -total]
    assert ledger[-1]["balance"] == 10_000 - total
    assert ledger[-1]["ref"] == start["task_id"]


def test_insufficient_credits_charges_nothing(sandbox, api_for):
    info = sandbox.admin.create_account(credits=5)
    api = api_for(sandbox.url, f"Token {info['api_key']}")
    sid, total = _search(api, {"countries": "FR"})
    r = api.get("/api/download-csv/", params={"search_id": sid})
    assert r.status_code == 403
    body = r.json()
    assert body["validation_code"] == "insufficient_credits"
    assert body["required_credits"] == total
    assert body["available_credits"] == 5
    assert isinstance(body["detail"], str)
    assert api.get("/api/user/profile").json()["credits"] == 5
    assert len(sandbox.admin.ledger(info["id"])) == 1
    assert api.get("/api/user/search-history").json()["count"] == 0


def test_unknown_or_missing_search_id(api):
    assert api.get("/api/download-csv", params={"search_id": "srch_00000000"}).status_code == 404
    r = api.get("/api/download-csv")
    assert r.status_code == 400
    assert list(r.json()) == ["search_id"]
    r = api.get("/api/download-csv", params={"search_id": "x", "export_format": "xlsx"})
    assert r.status_code == 400
    assert list(r.json()) == ["export_format"]


def test_other_accounts_task_and_search_are_404(api, account, wait_export):
    _, other = account
    sid, _ = _search(other, {"countries": "NZ"})
    task = other.get("/api/download-csv", params={"search_id": sid}).json()["task_id"]
    assert api.get(f"/api/download-status/{task}").status_code == 404
    assert api.get("/api/download-csv", params={"search_id": sid}).status_code == 404
    assert wait_export(other, task)["status"] == "ready"


def test_export_failure_refunds(make_sandbox, api_for, wait_export):
    sb = make_sandbox(faults="export_fail=1")
    api = api_for(sb.url, f"Bearer {sb.api_key}")
    before = api.get("/api/user/profile").json()["credits"]
    sid, total = _search(api, {"countries": "FR"})
    task = api.get("/api/download-csv", params={"search_id": sid}).json()["task_id"]
    status = wait_export(api, task)
    assert status["status"] == "failed"
    assert isinstance(status["error"], str)
    assert status["error"]
    assert "download_url" not in status
    assert api.get("/api/user/profile").json()["credits"] == before
    account_id = api.get("/api/user/profile").json()["id"]
    deltas = [e["delta"] for e in sb.admin.ledger(account_id)]
    assert deltas[-2:] == [-total, total]
    # faults can be switched off at run time
    assert sb.admin.set_faults(export_fail=0)["export_fail"] == 0
    task = api.get("/api/download-csv", params={"search_id": sid}).json()["task_id"]
    assert wait_export(api, task)["status"] == "ready"


def test_download_rejects_authorization_and_bad_signature(api, wait_export):
    sid, _ = _search(api, {"countries": "NZ", "website": "true"})
    task = api.get("/api/download-csv", params={"search_id": sid}).json()["task_id"]
    url = wait_export(api, task)["download_url"]
    r = requests.get(url, headers={"Authorization": "Bearer anything"}, timeout=10)
    assert r.status_code == 400
    tampered = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    assert requests.get(tampered, timeout=10).status_code == 403


def test_range_resume(api, wait_export):
    sid, _ = _search(api, {"countries": "BE"})
    task = api.get("/api/download-csv", params={"search_id": sid}).json()["task_id"]
    url = wait_export(api, task)["download_url"]
    full = requests.get(url, timeout=30).content
    assert len(full) > 1000
    part = requests.get(url, headers={"Range": "bytes=1000-"}, timeout=30)
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 1000-{len(full) - 1}/{len(full)}"
    assert full[:1000] + part.content == full


def test_signed_url_expires_with_the_clock(make_sandbox, api_for, wait_export):
    sb = make_sandbox()
    api = api_for(sb.url, f"Bearer {sb.api_key}")
    sid, _ = _search(api, {"countries": "NZ"})
    task = api.get("/api/download-csv", params={"search_id": sid}).json()["task_id"]
    url = wait_export(api, task)["download_url"]
    assert requests.get(url, timeout=10).status_code == 200
    sb.admin.advance_clock(31 * 86400)
    r = requests.get(url, timeout=10)
    assert r.status_code == 403
    status = api.get(f"/api/download-status/{task}").json()
    assert status["download_url"] is None  # nothing valid to hand out any more


def test_pacing_holds_ready_back(make_sandbox, api_for):
    sb = make_sandbox()
    api = api_for(sb.url, f"Bearer {sb.api_key}")
    assert sb.admin.set_export_pacing(min_polls=3) == {
        "min_polls": 3,
        "delay_seconds": 0.0,
        "processing_seconds": 0.0,
    }
    sid, _ = _search(api, {"countries": "NZ"})
    task = api.get("/api/download-csv", params={"search_id": sid}).json()["task_id"]
    sb.runtime.exports.shutdown()  # wait for the worker: only pacing holds it back now
    seen = [api.get(f"/api/download-status/{task}").json()["status"] for _ in range(3)]
    assert seen == ["processing", "processing", "ready"]


def test_concurrent_starts_never_overdraw(sandbox, api_for):
    from concurrent.futures import ThreadPoolExecutor

    probe = api_for(sandbox.url, f"Bearer {sandbox.api_key}")
    _, total = _search(probe, {"countries": "NZ"})
    info = sandbox.admin.create_account(credits=total * 3 // 2)
    apis = [api_for(sandbox.url, f"Bearer {info['api_key']}") for _ in range(6)]
    sid, _ = _search(apis[0], {"countries": "NZ"})
    with ThreadPoolExecutor(6) as pool:
        codes = list(
            pool.map(
                lambda a: a.get("/api/download-csv", params={"search_id": sid}).status_code, apis
            )
        )
    assert sorted(codes) == [202] + [403] * 5
    assert apis[0].get("/api/user/profile").json()["credits"] == total * 3 // 2 - total
    assert [e["delta"] for e in sandbox.admin.ledger(info["id"])][1:] == [-total]


def test_expired_export_files_are_deleted(make_sandbox, api_for, wait_export):
    sb = make_sandbox()
    api = api_for(sb.url, f"Bearer {sb.api_key}")
    exports = sb._opts.data_dir / "exports"
    sid, _ = _search(api, {"countries": "NZ"})

    def export() -> str:
        task = api.get("/api/download-csv", params={"search_id": sid}).json()["task_id"]
        assert wait_export(api, task)["status"] == "ready"
        return task

    first = export()
    assert [p.name.startswith(first) for p in exports.iterdir()] == [True]
    sb.admin.advance_clock(29 * 86400)
    second = export()
    assert len(list(exports.iterdir())) == 2  # neither has expired yet
    sb.admin.advance_clock(2 * 86400)  # the first expires; the clock move sweeps
    assert [p.name.startswith(second) for p in exports.iterdir()] == [True]
    # The sweep at start: the second's expiry passes while the server is down.
    sb.runtime.state.set_meta("clock_offset", repr(sb.runtime.clock.offset + 29 * 86400))
    sb.stop()
    (exports / ".task_dead-0.csv.x1y2.part").write_bytes(b"half")  # a write the stop cut off
    again = make_sandbox(data_dir=sb._opts.data_dir)
    assert list(exports.iterdir()) == []
    api = api_for(again.url, f"Bearer {again.api_key}")
    third = export()  # and after an export
    assert [p.name.startswith(third) for p in exports.iterdir()] == [True]
