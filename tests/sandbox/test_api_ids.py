"""Path ids that name nothing: huge, negative or non-canonical numbers are 404, never 500.

SQLite integers are signed 64-bit, so an id at or above 2**63 used to reach it as an
OverflowError (500); and Python's ``int()`` read `` 1``, ``+1`` or Arabic-Indic digits as key 1.
"""

from __future__ import annotations

import pytest

HUGE = [2**63, 2**63 + 1, 2**64, 10**30, -1, -(2**63) - 1, 0]
MALFORMED = ["1e3", "0x10", "1.0", "abc", "1_000", "%20", "-0"]


def _spellings(value: int) -> list[str]:
    """Ways ``int()`` would accept for ``value`` that are not its canonical spelling."""
    arabic_indic = "".join(chr(0x0660 + int(d)) for d in str(value))
    return [
        f"%20{value}",
        f"{value}%20",
        f"+{value}",
        f"{value}.0",
        f"0x{value:x}",
        arabic_indic,
        f"{value}_",
        str(value + 2**64),
    ]


def _not_found(r):
    assert r.status_code == 404, (r.request.method, r.url, r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json")
    assert isinstance(r.json()["detail"], str)


def _ids(extra=()):
    return [str(i) for i in HUGE] + MALFORMED + list(extra)


@pytest.fixture
def exported(account, wait_export):
    """A fresh account with one ready export: ``(info, api, key_id, entry_id, task_id)``."""
    info, api = account
    sid = api.get("/api/companies", params={"category": "8059"}).json()["search_id"]
    task = api.get("/api/download-csv", params={"search_id": sid}).json()
    assert wait_export(api, task["task_id"])["status"] == "ready"
    entry_id = api.get("/api/user/search-history").json()["results"][0]["id"]
    key_id = api.get("/api/user/api-keys").json()[0]["id"]
    return info, api, key_id, entry_id, task["task_id"]


def test_key_delete_with_bad_ids_is_404_and_revokes_nothing(exported):
    _, api, key_id, _, _ = exported
    for ident in _ids(_spellings(key_id)):
        _not_found(api("DELETE", f"/api/user/api-keys/{ident}"))
        _not_found(api("DELETE", f"/api/user/api-keys/{ident}/"))
    keys = api.get("/api/user/api-keys").json()
    assert [k["id"] for k in keys] == [key_id]
    assert api.get("/api/user/profile").status_code == 200


def test_history_routes_with_bad_ids_are_404_and_free(exported):
    _, api, _, entry_id, _ = exported
    credits = api.get("/api/user/profile").json()["credits"]
    for ident in _ids(_spellings(entry_id)):
        for tail in ("freshness", "download-delta", "freshness/", "download-delta/"):
            _not_found(api.get(f"/api/user/search-history/{ident}/{tail}"))
    assert api.get("/api/user/profile").json()["credits"] == credits
    assert api.get("/api/user/search-history").json()["count"] == 1  # no delta recorded
    assert api.get(f"/api/user/search-history/{entry_id}/freshness").status_code == 200


def test_status_by_bad_task_id_is_404(exported):
    _, api, _, _, task_id = exported
    for ident in [*_ids(), task_id.upper(), f"{task_id}x", f"%20{task_id}", "task_"]:
        _not_found(api.get(f"/api/download-status/{ident}"))
    assert api.get(f"/api/download-status/{task_id}").status_code == 200


def test_live_routes_with_bad_ids_are_404(live_sandbox, api_for):
    info = live_sandbox.admin.create_account(credits=100)
    api = api_for(live_sandbox.url, f"Token {info['api_key']}")
    key_id = api.get("/api/user/api-keys").json()[0]["id"]
    for ident in _ids(_spellings(key_id)):
        _not_found(api("DELETE", f"/api/user/api-keys/{ident}"))
        _not_found(api.get(f"/api/user/search-history/{ident}/freshness"))
        _not_found(api.get(f"/api/user/search-history/{ident}/download-delta"))
        _not_found(api.get(f"/api/download-status/{ident}/"))
        _not_found(api.get(f"/api/download-completed-csv/{ident}/"))
    assert [k["id"] for k in api.get("/api/user/api-keys").json()] == [key_id]


def test_ledger_with_bad_ids_is_404(sandbox, api_for):
    admin = api_for(sandbox.url)
    admin.session.headers["X-Sandbox-Admin-Token"] = sandbox.admin_token
    for ident in _ids(_spellings(1)):
        _not_found(admin.get(f"/_sandbox/accounts/{ident}/ledger"))
    assert admin.get("/_sandbox/accounts/1/ledger").status_code == 200


@pytest.mark.parametrize("key", ["category", "level1_locations", "level3_locations"])
def test_live_filters_with_huge_ids_match_nothing(live_sandbox, api_for, key):
    """Unknown ids match nothing in the live flavour, even ones no int32 column can hold."""
    api = api_for(live_sandbox.url, f"Token {live_sandbox.api_key}")
    known = {
        "category": [8059, 8060, 8061, 8062, 8063],
        "level1_locations": [40, 43, 53, 57, 63],
        "level3_locations": [1_000_000, 1_000_001, 1_000_002, 1_000_003, 1_000_004],
    }[key]
    for huge in ([2**40], [2**63, -(2**63) - 1, 2**31]):
        for values in (huge, [*known, *huge]):
            params = {key: ",".join(map(str, values))}
            expected = (
                0
                if values == huge
                else api.get("/api/companies", params={key: ",".join(map(str, known))}).json()[
                    "totalCount"
                ]
            )
            for path in ("/api/companies", "/api/public/companies"):
                r = api.get(path, params=params)
                assert r.status_code == 200, (path, params, r.text)
                assert r.json()["totalCount"] == expected
