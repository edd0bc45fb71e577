"""Credentials: who is asking (API key or JWT), their rate limit, and the login/refresh routes.

API keys are looked up by their SHA-256 in a per-runtime cache (a revoked key is dropped from
it at once by the revoke route). JWTs are HS256, signed with the data dir's secret; their
expiry is checked against the sandbox clock, so tests move time instead of sleeping.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import jwt
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from scoutframe.sandbox.ratelimit import RateDecision, RateLimiter
from scoutframe.sandbox.runtime import Runtime
from scoutframe.sandbox.state import hash_api_key
from scoutframe.sandbox.web import ApiError, json_body, json_response, unauthorized

__all__ = ["Authenticator"]

_INVALID_TOKEN = "Token is invalid or expired"  # noqa: S105 (a message, not a secret)


def _rate_headers(decision: RateDecision) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(math.ceil(decision.reset)),
    }


class Authenticator:
    """Resolves credentials to accounts and issues JWTs, for one `Runtime`."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def authenticate(self, request: Request) -> int:
        """Account id behind the request's credential; sets rate-limit headers; raises 401/429."""
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        scheme = scheme.lower()
        credential = credential.strip()
        if not header or scheme not in ("bearer", "token") or not credential:
            raise unauthorized("Authentication credentials were not provided.")
        if "." in credential:
            if scheme != "bearer":
                raise unauthorized("Invalid token header. JWTs use the Bearer prefix.")
            account_id = int(self._decode(credential, "access")["sub"])
            rate_key = f"user:{account_id}"
        else:
            if self.rt.live and scheme != "token":
                raise unauthorized("Invalid token header. Use: Authorization: Token <key>.")
            key_id, account_id = self._api_key(credential)
            rate_key = f"key:{key_id}"
        self.rate_limit(request, self.rt.limiter, rate_key)
        return account_id

    def _api_key(self, key: str) -> tuple[int, int]:
        key_hash = hash_api_key(key)
        entry = self.rt.auth_cache.get(key_hash)
        if entry is None:
            entry = self.rt.state.api_key_lookup(key_hash)
            if entry is None:
                raise unauthorized("Invalid API key.")
            self.rt.auth_cache[key_hash] = entry
        key_id, account_id, expiry = entry
        if expiry is not None and expiry <= self.rt.clock():
            raise unauthorized("API key has expired.")
        return key_id, account_id

    def _decode(self, token: str, kind: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.rt.secret,
                algorithms=["HS256"],
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["exp", "sub", "type", "jti"],
                },
            )
        except jwt.PyJWTError:
            raise unauthorized(_INVALID_TOKEN, "token_not_valid") from None
        if claims.get("type") != kind or float(claims["exp"]) <= self.rt.clock():
            raise unauthorized(_INVALID_TOKEN, "token_not_valid")
        return claims

    def _issue(self, account_id: int, kind: str, lifetime: float) -> tuple[str, str, float]:
        now = self.rt.clock()
        jti = uuid.uuid4().hex
        exp = now + lifetime
        claims = {"sub": str(account_id), "type": kind, "jti": jti, "iat": int(now), "exp": exp}
        return jwt.encode(claims, self.rt.secret, algorithm="HS256"), jti, exp

    def rate_limit(self, request: Request, limiter: RateLimiter | None, key: str) -> None:
        """Take one request from ``key``'s bucket: 429 when empty; headers for the answer."""
        if limiter is None:
            return
        decision = limiter.hit(key)
        headers = _rate_headers(decision)
        if not decision.allowed:
            wait = max(1, decision.retry_after)
            headers["Retry-After"] = str(wait)
            raise ApiError(
                429,
                {"detail": f"Request was throttled. Expected available in {wait} seconds."},
                headers,
            )
        request.state.rate_headers = headers

    # -- routes
    async def login(self, request: Request) -> Response:
        """``POST /api/auth/login``."""
        body = await json_body(request)
        errors = {
            k: ["This field is required."]
            for k in ("username", "password")
            if not isinstance(body.get(k), str) or not body.get(k)
        }
        if errors:
            raise ApiError(400, errors)
        account = await run_in_threadpool(
            self.rt.state.check_login, body["username"], body["password"]
        )
        if account is None:
            raise unauthorized("No active account found with the given credentials")
        access, _, _ = self._issue(account.id, "access", self.rt.access_lifetime)
        refresh, jti, exp = self._issue(account.id, "refresh", self.rt.refresh_lifetime)
        self.rt.state.add_refresh(jti, account.id, self.rt.clock(), exp)
        user = {"id": account.id, "email": account.email, "username": account.username}
        return json_response({"access": access, "refresh": refresh, "user": user})

    async def refresh(self, request: Request) -> Response:
        """``POST /api/token/refresh`` (the refresh token is not rotated)."""
        body = await json_body(request)
        token = body.get("refresh")
        if not isinstance(token, str) or not token:
            raise ApiError(400, {"refresh": ["This field is required."]})
        claims = self._decode(token, "refresh")
        account_id = int(claims["sub"])
        if not self.rt.state.refresh_valid(str(claims["jti"]), account_id):
            raise unauthorized(_INVALID_TOKEN, "token_not_valid")
        access, _, _ = self._issue(account_id, "access", self.rt.access_lifetime)
        return json_response({"access": access})
