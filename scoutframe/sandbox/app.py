"""The API origin: the contract's routes (docs and live flavours), auth, rate limits, faults.

Handlers are plain Starlette endpoints registered on a FastAPI app, each under its path with
and without the trailing slash (no redirects). They parse the query string themselves
(repeated keys), and answer orjson bytes directly: no pydantic on the hot paths.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import orjson
import pyarrow as pa
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from scoutframe.sandbox.csvexport import export_csv_bytes
from scoutframe.sandbox.exports import ExportManager
from scoutframe.sandbox.faults import FaultInjector, FaultMiddleware
from scoutframe.sandbox.ratelimit import RateDecision, RateLimiter
from scoutframe.sandbox.state import (
    InsufficientCredits,
    SandboxClock,
    State,
    hash_api_key,
    iso,
    parse_iso,
)
from scoutframe.sandbox.storage import UrlSigner
from scoutframe.sandbox.store import (
    ContactStore,
    FilterValidationError,
    SearchFilters,
    location_item,
    mask_email,
    match_rank,
    parse_filters,
)

__all__ = ["ApiError", "Runtime", "create_app"]

PAGE_SIZE = 50
PREVIEW_SIZE = 10
_JSON_OPTS = orjson.OPT_NON_STR_KEYS


@dataclass
class Runtime:
    """Everything the routes need; built by `scoutframe.sandbox.server`."""

    flavor: str
    state: State
    store: ContactStore
    exports: ExportManager
    clock: SandboxClock
    secret: bytes = field(repr=False)
    signer: UrlSigner
    faults: FaultInjector
    limiter: RateLimiter | None
    public_limiter: RateLimiter | None
    access_lifetime: float
    refresh_lifetime: float
    admin_token: str = field(repr=False)
    new_contacts: Callable[[int, float], pa.Table]
    seed: int = 0
    auth_cache: dict[str, tuple[int, int, float | None]] = field(default_factory=dict, repr=False)
    known_searches: set[tuple[int, str]] = field(default_factory=set, repr=False)

    @property
    def live(self) -> bool:
        """Whether the live flavour (contract section 9) is emulated."""
        return self.flavor == "live"


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
        orjson.dumps(body, option=_JSON_OPTS), status_code=status, headers=headers,
        media_type="application/json",
    )  # fmt: skip


def _unauthorized(detail: str, code: str | None = None) -> ApiError:
    body: dict[str, Any] = {"detail": detail}
    if code:
        body["code"] = code
    return ApiError(401, body, {"WWW-Authenticate": 'Bearer realm="api"'})


def _rate_headers(decision: RateDecision) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(math.ceil(decision.reset)),
    }


async def _json_body(request: Request) -> dict[str, Any]:
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


def _int_param(params: Any, key: str, default: int | None) -> int | None:
    raw = params.get(key)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, {key: ["A valid integer is required."]}) from None


class Api:
    """The route handlers, bound to one `Runtime`."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    # -- auth --------------------------------------------------------------------------------
    def authenticate(self, request: Request) -> int:
        """Account id behind the request's credential; sets rate-limit headers; raises 401/429."""
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        scheme = scheme.lower()
        credential = credential.strip()
        if not header or scheme not in ("bearer", "token") or not credential:
            raise _unauthorized("Authentication credentials were not provided.")
        if "." in credential:
            if scheme != "bearer":
                raise _unauthorized("Invalid token header. JWTs use the Bearer prefix.")
            account_id = self._access_token(credential)
            rate_key = f"user:{account_id}"
        else:
            if self.rt.live and scheme != "token":
                raise _unauthorized("Invalid token header. Use: Authorization: Token <key>.")
            key_id, account_id = self._api_key(credential)
            rate_key = f"key:{key_id}"
        self._rate_limit(request, self.rt.limiter, rate_key)
        return account_id

    def _api_key(self, key: str) -> tuple[int, int]:
        key_hash = hash_api_key(key)
        entry = self.rt.auth_cache.get(key_hash)
        if entry is None:
            entry = self.rt.state.api_key_lookup(key_hash)
            if entry is None:
                raise _unauthorized("Invalid API key.")
            self.rt.auth_cache[key_hash] = entry
        key_id, account_id, expiry = entry
        if expiry is not None and expiry <= self.rt.clock():
            raise _unauthorized("API key has expired.")
        return key_id, account_id

    def _decode(self, token: str, kind: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self.rt.secret, algorithms=["HS256"],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                         "require": ["exp", "sub", "type", "jti"]},
            )  # fmt: skip
        except jwt.PyJWTError:
            raise _unauthorized("Token is invalid or expired", "token_not_valid") from None
        # Expiry is checked against the sandbox clock, so tests can move time instead of sleeping.
        if claims.get("type") != kind or float(claims["exp"]) <= self.rt.clock():
            raise _unauthorized("Token is invalid or expired", "token_not_valid")
        return claims

    def _access_token(self, token: str) -> int:
        return int(self._decode(token, "access")["sub"])

    def _issue(self, account_id: int, kind: str, lifetime: float) -> tuple[str, str, float]:
        now = self.rt.clock()
        jti = uuid.uuid4().hex
        exp = now + lifetime
        claims = {"sub": str(account_id), "type": kind, "jti": jti, "iat": int(now), "exp": exp}
        return jwt.encode(claims, self.rt.secret, algorithm="HS256"), jti, exp

    def _rate_limit(self, request: Request, limiter: RateLimiter | None, key: str) -> None:
        if limiter is None:
            return
        decision = limiter.hit(key)
        headers = _rate_headers(decision)
        if not decision.allowed:
            headers["Retry-After"] = str(max(1, decision.retry_after))
            raise ApiError(
                429,
                {"detail": f"Request was throttled. Expected available in "
                           f"{max(1, decision.retry_after)} seconds."},
                headers,
            )  # fmt: skip
        request.state.rate_headers = headers

    # -- auth endpoints ----------------------------------------------------------------------
    async def login(self, request: Request) -> Response:
        body = await _json_body(request)
        errors = {k: ["This field is required."] for k in ("username", "password")
                  if not isinstance(body.get(k), str) or not body.get(k)}  # fmt: skip
        if errors:
            raise ApiError(400, errors)
        account = await run_in_threadpool(
            self.rt.state.check_login, body["username"], body["password"]
        )
        if account is None:
            raise _unauthorized("No active account found with the given credentials")
        access, _, _ = self._issue(account.id, "access", self.rt.access_lifetime)
        refresh, jti, exp = self._issue(account.id, "refresh", self.rt.refresh_lifetime)
        self.rt.state.add_refresh(jti, account.id, self.rt.clock(), exp)
        user = {"id": account.id, "email": account.email, "username": account.username}
        return json_response({"access": access, "refresh": refresh, "user": user})

    async def refresh(self, request: Request) -> Response:
        body = await _json_body(request)
        token = body.get("refresh")
        if not isinstance(token, str) or not token:
            raise ApiError(400, {"refresh": ["This field is required."]})
        claims = self._decode(token, "refresh")
        account_id = int(claims["sub"])
        if not self.rt.state.refresh_valid(str(claims["jti"]), account_id):
            raise _unauthorized("Token is invalid or expired", "token_not_valid")
        access, _, _ = self._issue(account_id, "access", self.rt.access_lifetime)
        return json_response({"access": access})

    # -- account -----------------------------------------------------------------------------
    def profile(self, request: Request) -> Response:
        account_id = self.authenticate(request)
        a = self.rt.state.account(account_id)
        if a is None:
            raise _unauthorized("Account not found.")
        return json_response({
            "id": a.id, "email": a.email, "username": a.username, "first_name": a.first_name,
            "last_name": a.last_name, "plan": a.plan, "credits": a.credits,
            "credits_used": a.credits_used, "date_joined": iso(a.date_joined),
        })  # fmt: skip

    async def api_keys(self, request: Request) -> Response:
        account_id = self.authenticate(request)
        if request.method == "GET":
            return json_response(self.rt.state.list_api_keys(account_id))
        body = await _json_body(request)
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
        account_id = self.authenticate(request)
        try:
            key_id = int(request.path_params["key_id"])
        except ValueError:
            raise ApiError(404, {"detail": "Not found."}) from None
        key_hash = self.rt.state.revoke_api_key(account_id, key_id)
        if key_hash is None:
            raise ApiError(404, {"detail": "Not found."})
        self.rt.auth_cache.pop(key_hash, None)
        return Response(status_code=204)

    # -- search ------------------------------------------------------------------------------
    def _filters(self, request: Request) -> SearchFilters:
        try:
            return parse_filters(
                request.query_params.multi_items(), self.rt.store.catalog, strict=not self.rt.live
            )
        except FilterValidationError as exc:
            raise ApiError(400, dict(exc.errors)) from None

    def search_id(self, account_id: int, filters: SearchFilters) -> str:
        """Deterministic per (account, canonical filters); remembered for exports."""
        canonical = filters.canonical()
        digest = hmac.new(self.rt.secret, f"{account_id}|{canonical}".encode(), hashlib.sha256)
        sid = "srch_" + digest.hexdigest()[:8]
        if (account_id, sid) not in self.rt.known_searches:
            self.rt.state.remember_search(account_id, sid, canonical)
            self.rt.known_searches.add((account_id, sid))
        return sid

    def _contacts(self, table: pa.Table, idx: Any) -> list[dict[str, Any]]:
        records = self.rt.store.records(idx, table)
        live = self.rt.live
        for rec in records:
            rec["email"] = [mask_email(e) for e in rec["email"] or []]
            phones = rec["phone"] or []
            # [LIVE] both shapes occur: a lone phone number comes back as a plain string.
            rec["phone"] = phones[0] if live and len(phones) == 1 else phones
            rec["categories"] = rec["categories"] or []
            for key in ("website", "instagram", "facebook", "address", "city", "zipcode"):
                if rec[key] is None:
                    rec[key] = ""
            if live:
                rec["is_claimed"] = bool(rec["review_count"] and rec["review_count"] % 2)
        return records

    def companies(self, request: Request) -> Response:
        account_id = self.authenticate(request)
        filters = self._filters(request)
        params = request.query_params
        paginate = params.get("paginate", "false").lower() == "true"
        page = _int_param(params, "page", 1) or 0
        table, idx = self.rt.store.snapshot(filters)
        total = int(idx.size)
        # [DESIGN] an empty result still has one (empty) page, as DRF's paginator does.
        num_pages = max(1, math.ceil(total / PAGE_SIZE))
        if paginate:
            if page < 1 or page > num_pages:
                raise ApiError(404, {"detail": "Invalid page."})
            rows = idx[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        else:
            page = 1
            rows = idx[:PREVIEW_SIZE]
        body: dict[str, Any] = {
            "totalCount": total, "search_id": self.search_id(account_id, filters),
            "preview": self._contacts(table, rows), "page": page, "num_pages": num_pages,
        }  # fmt: skip
        if self.rt.live:
            body["credits_per_lead"] = 1
        return json_response(body)

    def public_companies(self, request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        self._rate_limit(request, self.rt.public_limiter, f"addr:{client}")
        filters = self._filters(request)
        table, idx = self.rt.store.snapshot(filters)
        total = int(idx.size)
        return json_response({
            "totalCount": total, "search_id": None,
            "preview": self._contacts(table, idx[:PREVIEW_SIZE]), "page": 1,
            "num_pages": max(1, math.ceil(total / PAGE_SIZE)),
        })  # fmt: skip

    # -- reference data ----------------------------------------------------------------------
    def categories(self, request: Request) -> Response:
        self.authenticate(request)
        cats = self.rt.store.catalog.categories
        q = (request.query_params.get("q") or "").strip()
        limit = _int_param(request.query_params, "limit", None)
        if not q:
            out = [{"id": c["id"], "name": c["name"], "gcid": c["gcid"]} for c in cats]
            return json_response(out if limit is None else out[: max(limit, 0)])
        needle = q.casefold()
        scored = []
        for c in cats:
            best: tuple[int, str, str] | None = None
            for fieldname in ("name", "gcid"):
                value = str(c[fieldname])
                hay = value.casefold().removeprefix("gcid:").replace("_", " ")
                rank = match_rank(needle, hay)
                if rank is not None and (best is None or rank < best[0]):
                    best = (rank, fieldname, value)
            if best is not None:
                scored.append((best[0], c["name"], c, best))
        scored.sort(key=lambda item: (item[0], item[1]))
        if limit is not None:
            scored = scored[: max(limit, 0)]
        return json_response([
            {"id": c["id"], "name": c["name"], "gcid": c["gcid"], "match_rank": rank,
             "matched_field": fieldname, "matched_value": value}
            for rank, _, c, (_, fieldname, value) in scored
        ])  # fmt: skip

    def countries(self, request: Request) -> Response:
        self.authenticate(request)
        return json_response(
            [{"code": c["code"], "name": c["name"]} for c in self.rt.store.catalog.countries]
        )

    def location_search(self, request: Request) -> Response:
        self.authenticate(request)
        q = request.query_params.get("q") or ""
        country = (request.query_params.get("country") or "").upper() or None
        found = self.rt.store.catalog.search_locations(q, country)
        return json_response({"count": len(found), "locations": found})

    def location_level(self, request: Request) -> Response:
        self.authenticate(request)
        level = request.path_params["level"]
        if level not in ("level1", "level2", "level3"):
            raise ApiError(404, {"detail": "Not found."})
        params = request.query_params
        country = (params.get("country") or "").upper()
        parent_key = {"level2": "states", "level3": "counties"}.get(level)
        try:
            ids = {int(v) for raw in params.getlist("ids") for v in raw.split(",") if v.strip()}
            parents = (
                {int(v) for raw in params.getlist(parent_key) for v in raw.split(",") if v.strip()}
                if parent_key else set()
            )  # fmt: skip
        except ValueError:
            raise ApiError(400, {"ids": ["A valid integer is required."]}) from None
        out = []
        for loc in self.rt.store.catalog.locations:
            if loc["type"] != level:
                continue
            if ids and int(loc["id"]) not in ids:
                continue
            if country and loc["country"] != country:
                continue
            if parents and (loc["parent_id"] is None or int(loc["parent_id"]) not in parents):
                continue
            out.append(location_item(loc))
        return json_response({"count": len(out), "locations": out})

    def professions(self, request: Request) -> Response:
        self.authenticate(request)
        only = [(k, v) for k, v in request.query_params.multi_items() if k == "countries"]
        try:
            filters = parse_filters(only, self.rt.store.catalog, strict=not self.rt.live)
        except FilterValidationError as exc:
            raise ApiError(400, dict(exc.errors)) from None
        cats = self.rt.store.catalog.categories
        names = sorted({c.get("profession") or "Other" for c in cats})
        number = {name: i for i, name in enumerate(names)}
        group_of = {int(c["id"]): number[c.get("profession") or "Other"] for c in cats}
        counts, per_group = self.rt.store.category_counts(filters, group_of)
        groups: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for c in cats:
            groups[c.get("profession") or "Other"].append(
                {"id": c["id"], "name": c["name"], "count": counts.get(int(c["id"]), 0)}
            )
        # [DESIGN] a profession's count is of distinct contacts, not the sum of its categories.
        return json_response([
            {"profession": name, "categories": groups[name], "count": per_group.get(i, 0)}
            for i, name in enumerate(names)
        ])  # fmt: skip

    # -- exports -----------------------------------------------------------------------------
    def _start(self, account_id: int, search_id: str, filters: SearchFilters) -> dict[str, Any]:
        try:
            return self.rt.exports.start(account_id, search_id, filters)
        except InsufficientCredits as exc:
            raise ApiError(403, {
                "detail": f"Not enough credits: this export needs {exc.required} credits, "
                          f"{exc.available} available.",
                "validation_code": "insufficient_credits",
                "required_credits": exc.required, "available_credits": exc.available,
            }) from None  # fmt: skip

    def download_csv(self, request: Request) -> Response:
        account_id = self.authenticate(request)
        params = request.query_params
        fmt = params.get("export_format", "csv")
        if fmt != "csv":
            raise ApiError(400, {"export_format": [f"Unsupported format '{fmt}'; use csv."]})
        if self.rt.live:
            # [LIVE] the filters are re-sent; the answer has no task_id.
            filters = self._filters(request)
            if "search_id" in params and not filters.to_json():
                # [DESIGN] a bare search_id would otherwise export (and charge) everything.
                raise ApiError(400, {"search_id": [
                    "This API starts exports from the search's filters; send them instead."]})
            search_id = self.search_id(account_id, filters)
            task = self._start(account_id, search_id, filters)
            return json_response(
                {"status": "pending", "search_id": search_id, "lead_count": task["lead_count"]}
            )
        given = params.get("search_id")
        if not given:
            raise ApiError(400, {"search_id": ["This field is required."]})
        search_id = given
        stored = self.rt.state.search_filters(account_id, search_id)
        if stored is None:
            raise ApiError(404, {"detail": "Unknown search_id."})
        filters = SearchFilters.from_json(orjson.loads(stored))
        task = self._start(account_id, search_id, filters)
        return json_response({"task_id": task["task_id"], "status": "pending",
                              "search_id": search_id, "lead_count": task["lead_count"]},
                             status=202)  # fmt: skip

    def _task_for(self, account_id: int, ident: str) -> dict[str, Any]:
        if self.rt.live:
            task = self.rt.state.latest_task(account_id, ident)
        else:
            task = self.rt.state.task(ident)
        if task is None or task["account_id"] != account_id:
            raise ApiError(404, {"detail": "Not found."})
        return task

    def _download_url(self, task: dict[str, Any]) -> str | None:
        if task["status"] != "ready" or task["expires_at"] is None:
            return None
        if float(task["expires_at"]) <= self.rt.clock():
            return None
        return self.rt.signer.sign(str(task["object_name"]), float(task["expires_at"]))

    def download_status(self, request: Request) -> Response:
        account_id = self.authenticate(request)
        task = self._task_for(account_id, request.path_params["ident"])
        status = self.rt.exports.visible_status(task, count_poll=True)
        progress = {"pending": 0.0, "processing": 0.5, "ready": 1.0}.get(status, 0.0)
        if self.rt.live:
            body: dict[str, Any] = {
                "status": "completed" if status == "ready" else status,
                "search_id": task["search_id"], "lead_count": task["lead_count"],
                "progress": progress, "updated_at": iso(self.rt.clock()),
            }  # fmt: skip
            if status == "failed":
                body["error"] = task["error"]
            return json_response(body)
        body = {"task_id": task["task_id"], "status": status, "search_id": task["search_id"],
                "lead_count": task["lead_count"], "progress": progress}  # fmt: skip
        if status == "ready":
            body["download_url"] = self._download_url(task)
            body["expires_at"] = iso(task["expires_at"])
        elif status == "failed":
            body["error"] = task["error"]
        return json_response(body)

    def download_completed(self, request: Request) -> Response:
        account_id = self.authenticate(request)
        task = self._task_for(account_id, request.path_params["ident"])
        status = self.rt.exports.visible_status(task, count_poll=False)
        url = self._download_url(task) if status == "ready" else None
        if url is None:
            raise ApiError(404, {"detail": "No completed export for this search."})
        return json_response({"download_url": url, "expires_at": iso(task["expires_at"])})

    # -- history -----------------------------------------------------------------------------
    def _entry(self, account_id: int, request: Request) -> dict[str, Any]:
        try:
            entry_id = int(request.path_params["entry_id"])
        except ValueError:
            raise ApiError(404, {"detail": "Not found."}) from None
        entry = self.rt.state.history_entry(account_id, entry_id)
        if entry is None:
            raise ApiError(404, {"detail": "Not found."})
        return entry

    def history(self, request: Request) -> Response:
        account_id = self.authenticate(request)
        results = []
        for e in self.rt.state.history(account_id):
            url = self._download_url(e) if e["status"] == "ready" and e["kind"] == "full" else None
            results.append({
                "id": e["id"], "search_id": e["search_id"], "filters": orjson.loads(e["filters"]),
                "created_at": iso(e["created_at"]), "row_count": e["row_count"],
                "status": e["status"], "kind": e["kind"], "parent_id": e["parent_id"],
                "download_url": url, "expires_at": iso(e["expires_at"]),
            })  # fmt: skip
        return json_response({"count": len(results), "results": results})

    def _new_since(self, entry: dict[str, Any]) -> tuple[pa.Table, Any]:
        filters = SearchFilters.from_json(orjson.loads(entry["filters"]))
        return self.rt.store.snapshot(filters, int(float(entry["created_at"]) * 1e6))

    def freshness(self, request: Request) -> Response:
        account_id = self.authenticate(request)
        entry = self._entry(account_id, request)
        new_count = int(self._new_since(entry)[1].size)
        return json_response({
            "id": entry["id"], "exported_at": iso(entry["created_at"]), "new_count": new_count,
            "is_fresh": new_count == 0, "checked_at": iso(self.rt.clock()),
        })  # fmt: skip

    def download_delta(self, request: Request) -> Response:
        account_id = self.authenticate(request)
        entry = self._entry(account_id, request)
        exported_at = self.rt.clock()
        table, idx = self._new_since(entry)
        try:
            new_id = self.rt.state.record_delta(account_id, entry, int(idx.size), exported_at)
        except InsufficientCredits as exc:
            raise ApiError(403, {
                "detail": f"Not enough credits: this delta needs {exc.required} credits, "
                          f"{exc.available} available.",
                "validation_code": "insufficient_credits",
                "required_credits": exc.required, "available_credits": exc.available,
            }) from None  # fmt: skip
        data = export_csv_bytes(table, indices=idx)
        return Response(data, media_type="text/csv; charset=utf-8", headers={
            "X-Search-History-Id": str(new_id), "X-Row-Count": str(int(idx.size)),
            "Content-Disposition": f'attachment; filename="delta-{new_id}.csv"',
        })  # fmt: skip


class _RateHeaders:
    """Pure ASGI middleware: a request id on every answer, plus the handler's rate headers."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
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


def create_app(rt: Runtime) -> Any:
    """Return the API origin as an ASGI app (faults and rate-limit headers included)."""
    from scoutframe.sandbox.admin import add_control_routes

    app = FastAPI(
        title="SphereScout sandbox", redirect_slashes=False, docs_url=None, redoc_url=None,
        openapi_url=None,
    )  # fmt: skip
    api = Api(rt)

    def route(path: str, endpoint: Any, methods: list[str]) -> None:
        for p in (path, path + "/"):
            app.router.add_route(p, endpoint, methods=methods, include_in_schema=False)

    route("/api/auth/login", api.login, ["POST"])
    route("/api/token/refresh", api.refresh, ["POST"])
    route("/api/user/profile", api.profile, ["GET"])
    route("/api/user/api-keys", api.api_keys, ["GET", "POST"])
    route("/api/user/api-keys/{key_id}", api.revoke_key, ["DELETE"])
    route("/api/companies", api.companies, ["GET"])
    route("/api/public/companies", api.public_companies, ["GET"])
    route("/api/categories", api.categories, ["GET"])
    route("/api/locations/countries", api.countries, ["GET"])
    route("/api/locations/search", api.location_search, ["GET"])
    route("/api/locations/{level}", api.location_level, ["GET"])
    route("/api/professions/summary", api.professions, ["GET"])
    route("/api/download-csv", api.download_csv, ["GET", "POST"] if rt.live else ["GET"])
    route("/api/download-status/{ident}", api.download_status, ["GET"])
    if rt.live:
        route("/api/download-completed-csv/{ident}", api.download_completed, ["GET"])
    route("/api/user/search-history", api.history, ["GET"])
    route("/api/user/search-history/{entry_id}/freshness", api.freshness, ["GET"])
    route("/api/user/search-history/{entry_id}/download-delta", api.download_delta, ["GET"])
    add_control_routes(app, rt)

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
    return FaultMiddleware(_RateHeaders(app), rt.faults)
