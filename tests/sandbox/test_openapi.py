"""The OpenAPI document at ``/openapi.json``: valid, complete, and true to the answers."""

from __future__ import annotations

import re

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import validate

from scoutframe.sandbox.openapi import openapi_document, operations


def _shape(path):
    return re.sub(r"\{[^}]+\}", "{}", path.rstrip("/"))


def _served(sb):
    """``(METHOD, path shape)`` of the routes the running API app really serves."""
    app = sb._core.servers[0].config.app
    while not hasattr(app, "routes"):  # through the middlewares
        app = app.app
    served = set()
    for route in app.routes:
        if not route.path.startswith("/api/") or route.endpoint.__name__ == "method_not_allowed":
            continue
        for method in route.methods - {"HEAD"}:
            served.add((method, _shape(route.path)))
    return served


@pytest.mark.parametrize("flavor", ["docs", "live"])
def test_document_is_valid_openapi(flavor):
    doc = openapi_document(flavor)
    validate(doc)
    assert doc["openapi"].startswith("3.")
    assert set(doc["components"]["securitySchemes"]) >= {"ApiKeyToken", "JWT"}
    assert ("ApiKeyBearer" in doc["components"]["securitySchemes"]) is (flavor == "docs")
    assert not any(p.startswith("/_sandbox") for p in doc["paths"])
    openapi_document(flavor)["paths"].clear()  # callers get copies
    assert openapi_document(flavor)["paths"]


@pytest.mark.parametrize("flavor", ["docs", "live"])
def test_document_lists_every_route(make_sandbox, flavor):
    sb = make_sandbox(flavor=flavor)
    documented = {(m, _shape(p)) for m, p in operations(flavor)}
    levels = {("GET", f"/api/locations/level{i}") for i in (1, 2, 3)}
    served = _served(sb)
    assert ("GET", "/api/locations/{}") in served  # documented as its three levels
    assert documented == (served - {("GET", "/api/locations/{}")}) | levels
    assert len(documented) == {"docs": 20, "live": 22}[flavor]


def test_served_without_credential(sandbox, api_for):
    anon = api_for(sandbox.url)
    r = anon.get("/openapi.json")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == openapi_document("docs")
    for path in ("/docs", "/redoc", "/_sandbox/openapi.json"):
        assert anon.get(path).status_code in (401, 404)


def test_live_sandbox_serves_the_live_document(live_sandbox, api_for):
    doc = api_for(live_sandbox.url).get("/openapi.json").json()
    assert doc == openapi_document("live")
    assert "/api/download-completed-csv/{search_id}" in doc["paths"]


def _checker(doc):
    """Validate answers against the document's response schemas (formats checked too)."""

    def check(method, template, response):
        op = doc["paths"][template][method.lower()]
        answer = op["responses"][str(response.status_code)]
        if "$ref" in answer:
            answer = doc["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
        schema = answer["content"]["application/json"]["schema"]
        # The document as root resource, so "#/components/schemas/..." references resolve.
        root = {**doc, **schema}
        errors = list(
            Draft202012Validator(root, format_checker=FormatChecker()).iter_errors(response.json())
        )
        assert not errors, (method, template, response.status_code, errors[0].message)
        for name, header in answer.get("headers", {}).items():
            if header.get("required"):
                assert name in response.headers, (method, template, name)
        return response

    return check


def test_docs_answers_match_the_document(account, sandbox, api_for, wait_export):
    _, api = account
    check = _checker(openapi_document("docs"))
    check("GET", "/api/user/profile", api.get("/api/user/profile"))
    check("GET", "/api/user/api-keys", api.get("/api/user/api-keys"))
    created = check(
        "POST",
        "/api/user/api-keys",
        api.post("/api/user/api-keys", json={"name": "x", "expiry": "2999-01-01T00:00:00Z"}),
    )
    check("POST", "/api/user/api-keys", api.post("/api/user/api-keys", json={"expiry": "no"}))
    check(
        "DELETE",
        "/api/user/api-keys/{key_id}",
        api("DELETE", f"/api/user/api-keys/{created.json()['id']}0"),
    )
    page = check(
        "GET",
        "/api/companies",
        api.get("/api/companies", params={"countries": "FR", "paginate": "true", "page": "1"}),
    )
    assert len(page.json()["preview"]) == 50
    check("GET", "/api/companies", api.get("/api/companies", params={"countries": "XX"}))
    check(
        "GET",
        "/api/companies",
        api.get("/api/companies", params={"paginate": "true", "page": "9999"}),
    )
    check("GET", "/api/public/companies", api_for(sandbox.url).get("/api/public/companies"))
    check("GET", "/api/categories", api.get("/api/categories"))
    check("GET", "/api/categories", api.get("/api/categories", params={"q": "plumb"}))
    check("GET", "/api/locations/countries", api.get("/api/locations/countries"))
    check("GET", "/api/locations/search", api.get("/api/locations/search", params={"q": "par"}))
    for level in ("level1", "level2", "level3"):
        check(
            "GET",
            f"/api/locations/{level}",
            api.get(f"/api/locations/{level}", params={"country": "FR"}),
        )
    check("GET", "/api/professions/summary", api.get("/api/professions/summary"))
    sid = page.json()["search_id"]
    started = check(
        "GET", "/api/download-csv", api.get("/api/download-csv", params={"search_id": sid})
    )
    assert started.status_code == 202
    check("GET", "/api/download-csv", api.get("/api/download-csv", params={"search_id": "no"}))
    task = started.json()["task_id"]
    assert wait_export(api, task)["status"] == "ready"
    status = check("GET", "/api/download-status/{task_id}", api.get(f"/api/download-status/{task}"))
    assert status.json()["download_url"]
    history = check("GET", "/api/user/search-history", api.get("/api/user/search-history"))
    entry = history.json()["results"][0]["id"]
    check(
        "GET",
        "/api/user/search-history/{entry_id}/freshness",
        api.get(f"/api/user/search-history/{entry}/freshness"),
    )
    poor = api_for(sandbox.url, "Bearer " + sandbox.admin.create_account(credits=0)["api_key"])
    check(
        "GET",
        "/api/download-csv",
        poor.get(
            "/api/download-csv",
            params={"search_id": poor.get("/api/companies").json()["search_id"]},
        ),
    )
    check("GET", "/api/user/profile", api_for(sandbox.url, "Bearer nope").get("/api/user/profile"))
    login = api_for(sandbox.url).post(
        "/api/auth/login", json={"username": sandbox.username, "password": sandbox.password}
    )
    check("POST", "/api/auth/login", login)
    check(
        "POST",
        "/api/token/refresh",
        api_for(sandbox.url).post("/api/token/refresh", json={"refresh": login.json()["refresh"]}),
    )


def test_live_answers_match_the_document(live_sandbox, api_for):
    api = api_for(live_sandbox.url, f"Token {live_sandbox.api_key}")
    check = _checker(openapi_document("live"))
    page = check("GET", "/api/companies", api.get("/api/companies", params={"countries": "US"}))
    assert any(
        isinstance(c["phone"], str)
        for c in api.get("/api/companies", params={"paginate": "true", "page": "1"}).json()[
            "preview"
        ]
    )
    started = check(
        "POST",
        "/api/download-csv",
        api.post("/api/download-csv/", params={"countries": "US", "category": "8059"}),
    )
    sid = started.json()["search_id"]
    for _ in range(600):
        status = check(
            "GET", "/api/download-status/{search_id}", api.get(f"/api/download-status/{sid}/")
        )
        if status.json()["status"] == "completed":
            break
    check(
        "GET",
        "/api/download-completed-csv/{search_id}",
        api.get(f"/api/download-completed-csv/{sid}/"),
    )
    check(
        "GET",
        "/api/download-completed-csv/{search_id}",
        api.get(f"/api/download-completed-csv/{page.json()['search_id']}x/"),
    )
