"""The API origin: the contract's route table (docs and live flavours), wrapped in faults.

Handlers are plain Starlette endpoints registered on a FastAPI app, each under its path with
and without the trailing slash (no redirects); they live in `auth`, `account_routes`,
`search_routes` and `export_routes`, and the ``/_sandbox/`` control plane in `admin_routes`.
``/openapi.json`` serves the flavour's OpenAPI document (`scoutframe.sandbox.openapi`).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from scoutframe.sandbox.account_routes import AccountRoutes
from scoutframe.sandbox.admin_routes import add_control_routes
from scoutframe.sandbox.auth import Authenticator
from scoutframe.sandbox.export_routes import ExportRoutes
from scoutframe.sandbox.faults import FaultMiddleware
from scoutframe.sandbox.openapi import openapi_document
from scoutframe.sandbox.runtime import Runtime
from scoutframe.sandbox.search_routes import SearchRoutes
from scoutframe.sandbox.web import ApiError, ResponseHeaders, install_error_handlers, route

__all__ = ["ApiError", "Runtime", "create_app"]

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Routes that need no credential (the rest answer a wrong method only after authenticating).
_OPEN_PATHS = frozenset({"/api/auth/login", "/api/token/refresh", "/api/public/companies"})


def _method_not_allowed(auth: Authenticator, allowed: list[str]) -> Any:
    """Return an endpoint answering 405 after authentication, as DRF does.

    So 401 and 429 come first, and an authenticated 405 carries the rate-limit headers like
    every authenticated answer.
    """
    allow = ", ".join([*allowed, "HEAD"] if "GET" in allowed else allowed)

    def endpoint(request: Request) -> Any:
        auth.authenticate(request)
        raise ApiError(405, {"detail": "Method Not Allowed"}, {"Allow": allow})

    endpoint.__name__ = "method_not_allowed"  # tells these routes apart from the served ones
    return endpoint


def _openapi_endpoint(flavor: str) -> Any:
    """Return an endpoint serving the flavour's OpenAPI document (no credential needed)."""
    body = orjson.dumps(openapi_document(flavor))

    def endpoint(_: Request) -> Response:
        return Response(body, media_type="application/json")

    return endpoint


def create_app(rt: Runtime) -> Any:
    """Return the API origin as an ASGI app (faults and rate-limit headers included)."""
    app = FastAPI(
        title="SphereScout sandbox",
        redirect_slashes=False,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    auth = Authenticator(rt)
    account = AccountRoutes(auth)
    search = SearchRoutes(auth)
    exports = ExportRoutes(search)
    table: list[tuple[str, Any, list[str]]] = [
        ("/api/auth/login", auth.login, ["POST"]),
        ("/api/token/refresh", auth.refresh, ["POST"]),
        ("/api/user/profile", account.profile, ["GET"]),
        ("/api/user/api-keys", account.api_keys, ["GET", "POST"]),
        ("/api/user/api-keys/{key_id}", account.revoke_key, ["DELETE"]),
        ("/api/companies", search.companies, ["GET"]),
        ("/api/public/companies", search.public_companies, ["GET"]),
        ("/api/categories", search.categories, ["GET"]),
        ("/api/locations/countries", search.countries, ["GET"]),
        ("/api/locations/search", search.location_search, ["GET"]),
        ("/api/locations/{level}", search.location_level, ["GET"]),
        ("/api/professions/summary", search.professions, ["GET"]),
        ("/api/download-csv", exports.download_csv, ["GET", "POST"] if rt.live else ["GET"]),
        ("/api/download-status/{ident}", exports.download_status, ["GET"]),
        ("/api/user/search-history", exports.history, ["GET"]),
        ("/api/user/search-history/{entry_id}/freshness", exports.freshness, ["GET"]),
        ("/api/user/search-history/{entry_id}/download-delta", exports.download_delta, ["GET"]),
    ]
    if rt.live:
        table.append(("/api/download-completed-csv/{ident}", exports.download_completed, ["GET"]))
    for path, endpoint, methods in table:
        route(app, path, endpoint, methods)
        if path not in _OPEN_PATHS:
            served = {*methods, "HEAD"} if "GET" in methods else set(methods)
            others = [m for m in _METHODS if m not in served]
            route(app, path, _method_not_allowed(auth, methods), others)
    app.router.add_route(
        "/openapi.json", _openapi_endpoint(rt.flavor), methods=["GET"], include_in_schema=False
    )
    add_control_routes(app, rt)
    install_error_handlers(app)
    return FaultMiddleware(ResponseHeaders(app), rt.faults)
