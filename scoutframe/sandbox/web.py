"""HTTP plumbing shared by the API routes and the control plane.

Error answers are raised as `ApiError` and turned into the contract's JSON bodies by the
handlers `install_error_handlers` registers; every other answer is orjson bytes from
`json_response` (no pydantic on the hot paths). `route` registers a path with and without its
trailing slash, since the API answers both without redirecting. `ResponseHeaders` adds a
request id to every answer and the rate-limit headers an authenticated handler left in the
request state, whether the handler then answered or raised.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from scoutframe.sandbox.state import InsufficientCredits

__all__ = [
    "MAX_ID",
    "ApiError",
    "ResponseHeaders",
    "install_error_handlers",
    "insufficient_credits",
    "int_param",
    "json_body",
    "json_response",
    "not_found",
    "path_id",
    "route",
    "unauthorized",
]

_JSON_OPTS = orjson.OPT_NON_STR_KEYS
_DIGITS = re.compile(r"[0-9]{1,30}")
#: The largest id a path may name: SQLite integers are signed 64-bit.
MAX_ID = 2**63 - 1


class ApiError(Exception):
    """An error answer: status, JSON body, extra headers."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(f"{status}")
        self.status = status
        self.body = body
        self.headers = headers or {}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """orjson-encoded JSON answer."""
    return Response(
        orjson.dumps(body, option=_JSON_OPTS),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def unauthorized(detail: str, code: str | None = None) -> ApiError:
    """401 with ``WWW-Authenticate: Bearer`` (and the ``code`` of an invalid token)."""
    body: dict[str, Any] = {"detail": detail}
    if code:
        body["code"] = code
    return ApiError(401, body, {"WWW-Authenticate": 'Bearer realm="api"'})


def not_found(detail: str = "Not found.") -> ApiError:
    """404 with a JSON ``detail``."""
    return ApiError(404, {"detail": detail})


def insufficient_credits(exc: InsufficientCredits, what: str) -> ApiError:
    """Build the 403 for a charge the balance does not cover (``what``: export, delta)."""
    return ApiError(
        403,
        {
            "detail": f"Not enough credits: this {what} needs {exc.required} credits, "
            f"{exc.available} available.",
            "validation_code": "insufficient_credits",
            "required_credits": exc.required,
            "available_credits": exc.available,
        },
    )


async def json_body(request: Request) -> dict[str, Any]:
    """Return the request's JSON object (``{}`` if empty); 400 if it is not one."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, {"detail": "JSON parse error: the body is not valid JSON."}) from None
    if not isinstance(data, dict):
        raise ApiError(400, {"detail": "Expected a JSON object."})
    return data


def int_param(params: Any, key: str, default: int | None) -> int | None:
    """Return an integer query parameter; a DRF-style 400 field error if it is not one."""
    raw = params.get(key)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, {key: ["A valid integer is required."]}) from None


def path_id(request: Request, name: str) -> int:
    """Return an integer path parameter; anything else names nothing (404).

    Only plain ASCII digits (at most 30) naming a value SQLite can hold (below 2**63) are
    ids, as with a ``[0-9]+`` route pattern: ``-1``, ``+5``, `` 1``, ``1_000``, ``1e3``,
    ``0x10``, non-ASCII digits and huge numbers are unknown ids like any other (404), never
    a 500.
    """
    text = str(request.path_params[name])
    if not _DIGITS.fullmatch(text):
        raise not_found()
    value = int(text)
    if value > MAX_ID:
        raise not_found()
    return value


def route(app: FastAPI, path: str, endpoint: Any, methods: list[str]) -> None:
    """Register ``endpoint`` under ``path`` and ``path/`` (no redirects)."""
    for p in (path, path + "/"):
        app.router.add_route(p, endpoint, methods=methods, include_in_schema=False)


def install_error_handlers(app: FastAPI) -> None:
    """JSON bodies for `ApiError`, Starlette's 404/405 and unexpected exceptions (500)."""

    async def api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return json_response(exc.body, exc.status, exc.headers)

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return json_response({"detail": exc.detail}, exc.status_code, dict(exc.headers or {}))

    async def server_error(_: Request, __: Exception) -> Response:
        return json_response({"detail": "Internal server error."}, 500)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(Exception, server_error)
    app.add_exception_handler(StarletteHTTPException, http_error)


class ResponseHeaders:
    """Pure ASGI middleware: a request id on every answer, plus the handler's rate headers."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", secrets.token_hex(8).encode()))
                extra = state.get("rate_headers")
                if extra:
                    present = {k.lower() for k, _ in headers}
                    for k, v in extra.items():
                        if k.lower().encode() not in present:
                            headers.append((k.lower().encode(), v.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
