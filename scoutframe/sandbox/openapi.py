"""The sandbox's OpenAPI 3.1 document, served at ``/openapi.json`` (no credential needed).

It describes the public API of one flavour, as the sandbox answers it: every ``/api/`` route
with its parameters, the security schemes (API keys as ``Bearer``/``Token``, JWT access
tokens) and the schemas of the JSON answers and error bodies. The ``/_sandbox/`` control plane
is left out: it is not part of the API being emulated. Every path also answers with a
trailing slash; the document lists each once, without it.
"""

from __future__ import annotations

import functools
from typing import Any

from scoutframe.sandbox.openapi_schemas import ref, schemas

__all__ = ["openapi_document", "operations"]

_INT = {"type": "integer"}
_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_RATE_HEADERS = {
    name: {"description": text, "schema": _INT}
    for name, text in (
        ("X-RateLimit-Limit", "bucket capacity (when rate limits are on)"),
        ("X-RateLimit-Remaining", "requests left in the bucket"),
        ("X-RateLimit-Reset", "seconds until the bucket is full again"),
    )
}


def _param(
    name: str,
    schema: dict[str, Any],
    description: str = "",
    *,
    where: str = "query",
    required: bool = False,
    deprecated: bool = False,
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": where, "schema": schema}
    if where == "query" and schema.get("type") == "array":
        out.update(style="form", explode=True)
    if required or where == "path":
        out["required"] = True
    if description:
        out["description"] = description
    if deprecated:
        out["deprecated"] = True
    return out


def _ids(name: str, description: str, *, deprecated: bool = False) -> dict[str, Any]:
    schema = {"type": "array", "items": _INT}
    return _param(name, schema, description, deprecated=deprecated)


def _json(
    schema: dict[str, Any], description: str, *, headers: dict[str, Any] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if headers:
        out["headers"] = headers
    return out


def _response(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{name}"}


def _filter_params(*, paged: bool) -> list[dict[str, Any]]:
    """Return the contract's search filters (section 4) as query parameters."""
    params = [
        _param(
            "countries",
            {"type": "array", "items": _STR},
            "ISO 3166-1 alpha-2 codes, repeated or comma-separated",
        ),
        _ids("category", "category ids from /api/categories"),
        _ids("level1_locations", "region ids"),
        _ids("level2_locations", "county/department ids"),
        _ids("level3_locations", "city ids"),
        *(
            _ids(f"level{i}_location", f"alias of level{i}_locations", deprecated=True)
            for i in (1, 2, 3)
        ),
    ]
    for name in ("email", "phone_number", "website", "instagram", "facebook"):
        params.append(_param(name, _BOOL, f"only contacts with (true) or without (false) {name}"))
    params.append(_param("phone", _BOOL, "alias of phone_number", deprecated=True))
    params.append(_param("main_activity_only", _BOOL, "match the main category only"))
    if paged:
        params.append(_param("paginate", _BOOL, "50-row pages instead of the 10-row preview"))
        params.append(_param("page", _INT, "1-based page number (with paginate=true)"))
    return params


def _op(
    op_id: str,
    summary: str,
    responses: dict[str, Any],
    *,
    params: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    open_route: bool = False,
) -> dict[str, Any]:
    """Build one operation; authenticated ones add 401 and 429 (and the rate-limit headers)."""
    out: dict[str, Any] = {"operationId": op_id, "summary": summary}
    if params:
        out["parameters"] = params
    if body is not None:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    out["responses"] = dict(responses)
    if open_route:
        out["security"] = []
    else:
        out["responses"].setdefault("401", _response("Unauthorized"))
        out["responses"]["429"] = _response("RateLimited")
        for status, answer in out["responses"].items():
            if status.startswith("2") and "$ref" not in answer:
                answer.setdefault("headers", {}).update(_RATE_HEADERS)
    return out


def _account_paths() -> dict[str, Any]:
    created = _json(ref("ApiKeyCreated"), "the new key, in full (the only time it is shown)")
    key_body = {
        "type": "object",
        "properties": {
            "name": {"type": ["string", "null"], "maxLength": 200},
            "expiry": {"type": ["string", "null"], "format": "date-time"},
        },
    }
    return {
        "/api/auth/login": {
            "post": _op(
                "login",
                "Log in: JWT access and refresh tokens",
                {
                    "200": _json(ref("Login"), "the tokens"),
                    "400": _response("BadRequest"),
                    "401": _json(ref("Error"), "wrong credentials"),
                },
                body={
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {
                        "username": {**_STR, "description": "the account's e-mail"},
                        "password": _STR,
                    },
                },
                open_route=True,
            )
        },
        "/api/token/refresh": {
            "post": _op(
                "refresh",
                "A new access token",
                {
                    "200": _json(ref("Access"), "the new access token"),
                    "400": _response("BadRequest"),
                    "401": _json(ref("Error"), "expired or invalid refresh token"),
                },
                body={"type": "object", "required": ["refresh"], "properties": {"refresh": _STR}},
                open_route=True,
            )
        },
        "/api/user/profile": {
            "get": _op(
                "profile",
                "The account and its credit balance",
                {"200": _json(ref("Profile"), "the profile")},
            )
        },
        "/api/user/api-keys": {
            "get": _op(
                "list_api_keys",
                "The account's live API keys (never the key itself)",
                {"200": _json({"type": "array", "items": ref("ApiKey")}, "oldest first")},
            ),
            "post": _op(
                "create_api_key",
                "Create an API key (optional name and expiry)",
                {"201": created, "400": _response("BadRequest")},
                body=key_body,
            ),
        },
        "/api/user/api-keys/{key_id}": {
            "delete": _op(
                "revoke_api_key",
                "Revoke a key: it stops working at once",
                {"204": {"description": "revoked"}, "404": _response("NotFound")},
                params=[_param("key_id", _INT, "the key's id", where="path")],
            )
        },
    }


def _search_paths() -> dict[str, Any]:
    page = _json(ref("SearchPage"), "matching contacts (e-mails masked)")
    levels = {
        "level1": [_param("country", _STR, "alpha-2 code")],
        "level2": [_param("country", _STR), _ids("states", "level-1 parent ids")],
        "level3": [_param("country", _STR), _ids("counties", "level-2 parent ids")],
    }
    paths: dict[str, Any] = {
        "/api/companies": {
            "get": _op(
                "search",
                "Search contacts: 10-row preview or 50-row pages",
                {
                    "200": page,
                    "400": _response("BadRequest"),
                    "404": _json(ref("Error"), "a page past the last (Invalid page.)"),
                },
                params=_filter_params(paged=True),
            )
        },
        "/api/public/companies": {
            "get": _op(
                "public_search",
                "Search without a credential (10 rows; 10 a minute per address)",
                {
                    "200": _json(
                        ref("SearchPage"),
                        "at most 10 contacts, search_id null",
                        headers=_RATE_HEADERS,
                    ),
                    "400": _response("BadRequest"),
                    "429": _response("RateLimited"),
                },
                params=_filter_params(paged=False),
                open_route=True,
            )
        },
        "/api/categories": {
            "get": _op(
                "categories",
                "Business categories (fuzzy q)",
                {
                    "200": _json(
                        {"type": "array", "items": ref("CategoryMatch")},
                        "every category, or the best matches of q first",
                    ),
                    "400": _response("BadRequest"),
                },
                params=[_param("q", _STR, "text to match"), _param("limit", _INT, "at most")],
            )
        },
        "/api/locations/countries": {
            "get": _op(
                "countries",
                "Countries",
                {"200": _json({"type": "array", "items": ref("Country")}, "every country")},
            )
        },
        "/api/locations/search": {
            "get": _op(
                "location_search",
                "Fuzzy location search",
                {"200": _json(ref("LocationList"), "at most 10 per level")},
                params=[_param("q", _STR, "a bare place name"), _param("country", _STR)],
            )
        },
        "/api/professions/summary": {
            "get": _op(
                "professions",
                "Categories grouped into professions, with contact counts",
                {
                    "200": _json({"type": "array", "items": ref("Profession")}, "professions"),
                    "400": _response("BadRequest"),
                },
                params=[_param("countries", {"type": "array", "items": _STR})],
            )
        },
    }
    for level, params in levels.items():
        paths[f"/api/locations/{level}"] = {
            "get": _op(
                f"locations_{level}",
                f"Browse the {level} locations",
                {
                    "200": _json(ref("LocationList"), "the matching locations"),
                    "400": _response("BadRequest"),
                },
                params=[*params, _ids("ids", "look these ids up")],
            )
        }
    return paths


def _export_paths(live: bool) -> dict[str, Any]:
    fmt = _param("export_format", {"type": "string", "default": "csv"}, "only csv")
    started = {"400": _response("BadRequest"), "403": _response("InsufficientCredits")}
    by_search = [_param("search_id", _STR, "the search's id", where="path")]
    paths: dict[str, Any]
    if live:
        start = _op(
            "start_export",
            "Start (and charge) an export by re-sending the filters",
            {
                "200": _json(ref("ExportStarted"), "started (no task id)"),
                **started,
            },
            params=[*_filter_params(paged=False), fmt, _param("search_id", _STR)],
        )
        paths = {
            "/api/download-csv": {
                "get": start,
                "post": {**start, "operationId": "start_export_post"},
            },
            "/api/download-status/{search_id}": {
                "get": _op(
                    "export_status",
                    "Poll the latest export of a search",
                    {"200": _json(ref("ExportStatus"), "its status"), "404": _response("NotFound")},
                    params=by_search,
                )
            },
            "/api/download-completed-csv/{search_id}": {
                "get": _op(
                    "export_url",
                    "The download URL of a completed export",
                    {
                        "200": _json(ref("DownloadUrl"), "a pre-signed URL"),
                        "404": _response("NotFound"),
                    },
                    params=by_search,
                )
            },
        }
    else:
        paths = {
            "/api/download-csv": {
                "get": _op(
                    "start_export",
                    "Start (and charge) an export",
                    {
                        "202": _json(ref("ExportStarted"), "started; poll its task"),
                        **started,
                        "404": _response("NotFound"),
                    },
                    params=[_param("search_id", _STR, "from /api/companies", required=True), fmt],
                )
            },
            "/api/download-status/{task_id}": {
                "get": _op(
                    "export_status",
                    "Poll an export",
                    {
                        "200": _json(ref("ExportStatus"), "its status; the URL once ready"),
                        "404": _response("NotFound"),
                    },
                    params=[_param("task_id", _STR, "from the start answer", where="path")],
                )
            },
        }
    entry = [_param("entry_id", _INT, "a history entry's id", where="path")]
    delta_headers = {
        "X-Search-History-Id": {
            "required": True,
            "schema": _INT,
            "description": "the delta's own history entry",
        },
        "X-Row-Count": {"schema": _INT, "description": "rows in the file (credits charged)"},
    }
    paths.update(
        {
            "/api/user/search-history": {
                "get": _op(
                    "history",
                    "Past exports, newest first",
                    {"200": _json(ref("History"), "the history")},
                )
            },
            "/api/user/search-history/{entry_id}/freshness": {
                "get": _op(
                    "freshness",
                    "How many matching contacts were collected since the export",
                    {"200": _json(ref("Freshness"), "the count"), "404": _response("NotFound")},
                    params=entry,
                )
            },
            "/api/user/search-history/{entry_id}/download-delta": {
                "get": _op(
                    "download_delta",
                    "CSV of the contacts new or updated since the entry (charged)",
                    {
                        "200": {
                            "description": "the export CSV format",
                            "headers": delta_headers,
                            "content": {"text/csv": {"schema": _STR}},
                        },
                        "403": _response("InsufficientCredits"),
                        "404": _response("NotFound"),
                    },
                    params=entry,
                )
            },
        }
    )
    return paths


def _components(live: bool) -> dict[str, Any]:
    api_key_token = {
        "type": "http",
        "scheme": "Token",
        "description": "An API key: `Authorization: Token <64 hex characters>`.",
    }
    security: dict[str, Any] = {
        "ApiKeyToken": api_key_token,
        "JWT": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token from /api/auth/login or /api/token/refresh.",
        },
    }
    if not live:
        security["ApiKeyBearer"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key: `Authorization: Bearer <key>`.",
        }
    www = {"WWW-Authenticate": {"required": True, "schema": _STR}}
    return {
        "securitySchemes": security,
        "schemas": schemas(live),
        "responses": {
            "BadRequest": _json(
                {"anyOf": [ref("FieldErrors"), ref("Error")]},
                "field errors, or a body that is not a JSON object",
            ),
            "Unauthorized": _json(
                ref("Error"), "missing, invalid, expired or revoked credential", headers=www
            ),
            "NotFound": _json(ref("Error"), "unknown id, or another account's"),
            "InsufficientCredits": _json(
                ref("InsufficientCredits"), "not enough credits; nothing was charged"
            ),
            "RateLimited": _json(
                ref("Error"),
                "over the rate limit",
                headers={
                    "Retry-After": {
                        "required": True,
                        "schema": _INT,
                        "description": "seconds to wait",
                    },
                    **_RATE_HEADERS,
                },
            ),
        },
    }


_DESCRIPTION = (
    "The SphereScout business-contacts API as the local sandbox emulates it. Every path also "
    'answers with a trailing slash. Errors are JSON `{"detail": ...}` or DRF-style field '
    "errors. Exports cost 1 credit per contact, charged when they start and refunded if they "
    "fail."
)


@functools.cache
def _document(flavor: str) -> dict[str, Any]:
    live = flavor == "live"
    auth: list[dict[str, list[str]]] = (
        [{"ApiKeyToken": []}, {"JWT": []}]
        if live
        else [{"ApiKeyBearer": []}, {"ApiKeyToken": []}, {"JWT": []}]
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"SphereScout API (sandbox, {flavor} flavour)",
            "version": "1",
            "description": _DESCRIPTION,
        },
        "servers": [{"url": "/"}],
        "security": auth,
        "paths": {**_account_paths(), **_search_paths(), **_export_paths(live)},
        "components": _components(live),
    }


def openapi_document(flavor: str = "docs") -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of one flavour (a fresh copy).

    Parameters
    ----------
    flavor
        ``"docs"`` or ``"live"``.

    Returns
    -------
    dict
        The document, ready to serialise as JSON.
    """
    if flavor not in ("docs", "live"):
        raise ValueError(f"flavor must be 'docs' or 'live', got {flavor!r}")
    import copy

    return copy.deepcopy(_document(flavor))


def operations(flavor: str = "docs") -> list[tuple[str, str]]:
    """Return the ``(METHOD, path)`` pairs the document describes, in its order.

    Parameters
    ----------
    flavor
        ``"docs"`` or ``"live"``.

    Returns
    -------
    list of tuple
        E.g. ``("GET", "/api/user/search-history/{entry_id}/freshness")``.
    """
    paths: dict[str, Any] = openapi_document(flavor)["paths"]
    return [(method.upper(), path) for path, ops in paths.items() for method in ops]
