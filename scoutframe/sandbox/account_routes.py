"""Account routes (contract section 3): the profile and API-key management."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import Response

from scoutframe.sandbox.auth import Authenticator
from scoutframe.sandbox.state import iso, parse_iso
from scoutframe.sandbox.web import (
    ApiError,
    json_body,
    json_response,
    not_found,
    path_id,
    unauthorized,
)

__all__ = ["AccountRoutes"]


class AccountRoutes:
    """``/api/user/profile`` and ``/api/user/api-keys``."""

    def __init__(self, auth: Authenticator) -> None:
        self.auth = auth
        self.rt = auth.rt

    def profile(self, request: Request) -> Response:
        """``GET /api/user/profile``."""
        account_id = self.auth.authenticate(request)
        a = self.rt.state.account(account_id)
        if a is None:
            raise unauthorized("Account not found.")
        return json_response(
            {
                "id": a.id,
                "email": a.email,
                "username": a.username,
                "first_name": a.first_name,
                "last_name": a.last_name,
                "plan": a.plan,
                "credits": a.credits,
                "credits_used": a.credits_used,
                "date_joined": iso(a.date_joined),
            }
        )

    async def api_keys(self, request: Request) -> Response:
        """``GET`` lists the live keys; ``POST`` creates one (the only time it is shown)."""
        account_id = self.auth.authenticate(request)
        if request.method == "GET":
            return json_response(self.rt.state.list_api_keys(account_id))
        body = await json_body(request)
        name = body.get("name") or ""
        if not isinstance(name, str) or len(name) > 200:
            raise ApiError(400, {"name": ["Not a valid string (at most 200 characters)."]})
        expiry_raw = body.get("expiry")
        expiry: float | None = None
        if expiry_raw is not None:
            try:
                expiry = parse_iso(str(expiry_raw))
            except ValueError:
                errors = {"expiry": ["Datetime has wrong format. Use ISO 8601."]}
                raise ApiError(400, errors) from None
        key = secrets.token_hex(32)
        item = self.rt.state.add_api_key(account_id, key, name, expiry)
        return json_response({**item, "key": key}, status=201)

    def revoke_key(self, request: Request) -> Response:
        """``DELETE /api/user/api-keys/{key_id}``: the key stops working at once."""
        account_id = self.auth.authenticate(request)
        key_hash = self.rt.state.revoke_api_key(account_id, path_id(request, "key_id"))
        if key_hash is None:
            raise not_found()
        self.rt.auth_cache.pop(key_hash, None)
        return Response(status_code=204)
