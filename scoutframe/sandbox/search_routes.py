"""Search and reference routes (contract sections 4 and 5).

Handlers parse the query string themselves (repeated keys, comma-separated values) and read
the in-memory `ContactStore` and its `Catalog`; none of them charges credits.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from typing import Any

import pyarrow as pa
from starlette.requests import Request
from starlette.responses import Response

from scoutframe.sandbox.auth import Authenticator
from scoutframe.sandbox.store import (
    FilterValidationError,
    SearchFilters,
    location_item,
    mask_email,
    match_rank,
    parse_bool,
    parse_filters,
)
from scoutframe.sandbox.web import ApiError, int_param, json_response, not_found

__all__ = ["PAGE_SIZE", "PREVIEW_SIZE", "SearchRoutes"]

PAGE_SIZE = 50
PREVIEW_SIZE = 10
_LEVEL_PARENT = {"level1": None, "level2": "states", "level3": "counties"}


def _int_list(params: Any, key: str) -> set[int]:
    """Integers of a repeatable, comma-separated parameter; a 400 field error otherwise."""
    try:
        return {int(v) for raw in params.getlist(key) for v in raw.split(",") if v.strip()}
    except ValueError:
        raise ApiError(400, {key: ["A valid integer is required."]}) from None


class SearchRoutes:
    """``/api/companies``, ``/api/public/companies`` and the reference data."""

    def __init__(self, auth: Authenticator) -> None:
        self.auth = auth
        self.rt = auth.rt

    def filters(self, request: Request, only: str | None = None) -> SearchFilters:
        """Parse the request's search filters (just ``only`` if given); 400 with field errors."""
        params = request.query_params.multi_items()
        if only is not None:
            params = [(k, v) for k, v in params if k == only]
        try:
            return parse_filters(params, self.rt.store.catalog, strict=not self.rt.live)
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
        """``GET /api/companies``: preview (at most 10) or 50-row pages."""
        account_id = self.auth.authenticate(request)
        filters = self.filters(request)
        params = request.query_params
        errors: dict[str, list[str]] = {}
        paginate = parse_bool("paginate", params.get("paginate", "false"), errors)
        if errors:  # [DESIGN] a malformed boolean is a field error, as for the filters
            raise ApiError(400, errors)
        page = int_param(params, "page", 1) or 0
        table, idx = self.rt.store.snapshot(filters)
        total = int(idx.size)
        # [DESIGN] an empty result still has one (empty) page, as DRF's paginator does.
        num_pages = max(1, math.ceil(total / PAGE_SIZE))
        if paginate:
            if page < 1 or page > num_pages:
                raise not_found("Invalid page.")
            rows = idx[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        else:
            page = 1
            rows = idx[:PREVIEW_SIZE]
        body: dict[str, Any] = {
            "totalCount": total,
            "search_id": self.search_id(account_id, filters),
            "preview": self._contacts(table, rows),
            "page": page,
            "num_pages": num_pages,
        }
        if self.rt.live:
            body["credits_per_lead"] = 1
        return json_response(body)

    def public_companies(self, request: Request) -> Response:
        """``GET /api/public/companies``: no credential, rate-limited per client address."""
        client = request.client.host if request.client else "unknown"
        self.auth.rate_limit(request, self.rt.public_limiter, f"addr:{client}")
        filters = self.filters(request)
        table, idx = self.rt.store.snapshot(filters)
        total = int(idx.size)
        return json_response(
            {
                "totalCount": total,
                "search_id": None,
                "preview": self._contacts(table, idx[:PREVIEW_SIZE]),
                "page": 1,
                "num_pages": max(1, math.ceil(total / PAGE_SIZE)),
            }
        )

    # -- reference data
    def categories(self, request: Request) -> Response:
        """``GET /api/categories``; with ``q``, best matches first with how they matched."""
        self.auth.authenticate(request)
        cats = self.rt.store.catalog.categories
        q = (request.query_params.get("q") or "").strip()
        limit = int_param(request.query_params, "limit", None)
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
        return json_response(
            [
                {
                    "id": c["id"],
                    "name": c["name"],
                    "gcid": c["gcid"],
                    "match_rank": rank,
                    "matched_field": fieldname,
                    "matched_value": value,
                }
                for rank, _, c, (_, fieldname, value) in scored
            ]
        )

    def countries(self, request: Request) -> Response:
        """``GET /api/locations/countries``."""
        self.auth.authenticate(request)
        return json_response(
            [{"code": c["code"], "name": c["name"]} for c in self.rt.store.catalog.countries]
        )

    def location_search(self, request: Request) -> Response:
        """``GET /api/locations/search?q=&country=``: fuzzy, at most 10 per level."""
        self.auth.authenticate(request)
        q = request.query_params.get("q") or ""
        country = (request.query_params.get("country") or "").upper() or None
        found = self.rt.store.catalog.search_locations(q, country)
        return json_response({"count": len(found), "locations": found})

    def location_level(self, request: Request) -> Response:
        """``GET /api/locations/level1|2|3``: browse by country and parent, or look ``ids`` up."""
        self.auth.authenticate(request)
        level = request.path_params["level"]
        if level not in _LEVEL_PARENT:
            raise not_found()
        params = request.query_params
        country = (params.get("country") or "").upper()
        ids = _int_list(params, "ids")
        parent_key = _LEVEL_PARENT[level]
        parents = _int_list(params, parent_key) if parent_key else set()
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
        """``GET /api/professions/summary``: categories by profession with contact counts."""
        self.auth.authenticate(request)
        filters = self.filters(request, only="countries")
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
        return json_response(
            [
                {"profession": name, "categories": groups[name], "count": per_group.get(i, 0)}
                for i, name in enumerate(names)
            ]
        )
