"""The storage origin's request log: what it received, credentials noticed but never kept."""

from __future__ import annotations

import json

import requests

from scoutframe.sandbox.requestlog import MAX_ENTRIES, StorageRequestLog

SECRET = "s3cr3t-value-never-logged"


def _scope(path="/exports/a.csv", query=b"expires=1&signature=abc", headers=(), method="GET"):
    return {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": list(headers),
    }


def test_log_entry_fields_and_no_values():
    log = StorageRequestLog(clock=lambda: 1_700_000_000.25)
    entry = log.record(
        _scope(
            headers=[(b"Authorization", f"Bearer {SECRET}".encode()), (b"cookie", SECRET.encode())]
        )
    )
    assert entry == {
        "seq": 1,
        "at": "2023-11-14T22:13:20.250Z",
        "method": "GET",
        "path": "/exports/a.csv",
        "query_keys": ["expires", "signature"],
        "authorization": True,
        "proxy_authorization": False,
        "cookie": True,
        "status": None,
    }
    entry["status"] = 200
    assert log.entries()[0]["status"] == 200
    assert SECRET not in json.dumps(log.entries())
    assert "abc" not in json.dumps(log.entries())  # the signature's value


def test_log_is_bounded_and_clears():
    log = StorageRequestLog()
    for i in range(MAX_ENTRIES + 25):
        log.record(_scope(path=f"/exports/{i}.csv"))
    entries = log.entries()
    assert len(entries) == MAX_ENTRIES == 10_000
    assert entries[0]["path"] == "/exports/25.csv"  # the oldest went first
    assert entries[-1]["seq"] == MAX_ENTRIES + 25
    assert len(log.entries(clear=True)) == MAX_ENTRIES
    assert len(log) == 0
    log.record(_scope())
    assert log.clear() == 1
    assert log.entries() == []


def test_long_paths_are_cut():
    log = StorageRequestLog()
    entry = log.record(
        _scope(path="/exports/" + "x" * 100_000, query=b"&".join(b"k%d=v" % i for i in range(1000)))
    )
    assert len(entry["path"]) == 1024
    assert len(entry["query_keys"]) == 16


def _ready_url(sb, api, wait_export):
    sid = api.get("/api/companies", params={"countries": "NZ"}).json()["search_id"]
    task = api.get("/api/download-csv", params={"search_id": sid}).json()
    body = wait_export(api, task["task_id"])
    assert body["status"] == "ready"
    return body["download_url"]


def test_sandbox_records_storage_requests(make_sandbox, api_for, wait_export):
    sb = make_sandbox()
    api = api_for(sb.url, f"Bearer {sb.api_key}")
    url = _ready_url(sb, api, wait_export)
    assert sb.admin.storage_requests() == []  # the API origin's requests are not in it
    plain = requests.Session()
    plain.trust_env = False
    assert plain.get(url, timeout=30).status_code == 200
    r = plain.get(url, timeout=30, headers={"Authorization": f"Bearer {SECRET}"})
    assert r.status_code == 400
    assert (
        plain.head(
            url,
            timeout=30,
            headers={"Proxy-Authorization": f"Basic {SECRET}", "Cookie": f"session={SECRET}"},
        ).status_code
        == 200
    )
    assert plain.post(url, timeout=30).status_code == 405
    assert plain.get(url.split("?")[0], timeout=30).status_code == 403  # no signature
    assert plain.get(sb.storage_url + "/nothing?x=1", timeout=30).status_code == 404
    plain.close()

    log = sb.admin.storage_requests()
    path = "/" + url.split("/", 3)[3].split("?")[0]
    assert [(e["method"], e["path"], e["status"]) for e in log] == [
        ("GET", path, 200),
        ("GET", path, 400),
        ("HEAD", path, 200),
        ("POST", path, 405),
        ("GET", path, 403),
        ("GET", "/nothing", 404),
    ]
    assert [e["authorization"] for e in log] == [False, True, False, False, False, False]
    assert [e["proxy_authorization"] for e in log] == [False, False, True, False, False, False]
    assert [e["cookie"] for e in log] == [False, False, True, False, False, False]
    assert log[0]["query_keys"] == ["expires", "signature"]
    assert log[-1]["query_keys"] == ["x"]
    assert [e["seq"] for e in log] == sorted(e["seq"] for e in log)
    assert all(e["at"].endswith("Z") for e in log)
    text = json.dumps(log)
    assert SECRET not in text
    assert url.split("signature=")[1] not in text

    assert len(sb.admin.storage_requests(clear=True)) == 6
    assert sb.admin.storage_requests() == []
    requests.get(url, timeout=30)
    assert sb.admin.clear_storage_requests() == 1
    assert sb.admin.storage_requests() == []


def test_storage_requests_route_needs_the_admin_token(sandbox, api_for):
    anon = api_for(sandbox.url)
    for method in ("GET", "DELETE"):
        assert anon(method, "/_sandbox/storage-requests").status_code == 401
        r = anon(method, "/_sandbox/storage-requests", headers={"X-Sandbox-Admin-Token": "wrong"})
        assert r.status_code == 401
    r = anon.get(
        "/_sandbox/storage-requests?clear=maybe",
        headers={"X-Sandbox-Admin-Token": sandbox.admin_token},
    )
    assert r.status_code == 400
    assert "clear" in r.json()
