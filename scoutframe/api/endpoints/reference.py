"""Reference data (free): categories, countries, professions, as typed DataFrames."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from ._frames import records_frame, require_list

if TYPE_CHECKING:
    from ..transport import Transport

__all__ = [
    "CATEGORY_DTYPES",
    "COUNTRY_DTYPES",
    "fetch_categories",
    "fetch_countries",
    "fetch_professions",
]

CATEGORY_DTYPES = {"id": "Int64", "name": "string", "gcid": "string"}
MATCH_DTYPES = {"match_rank": "Float64", "matched_field": "string", "matched_value": "string"}
COUNTRY_DTYPES = {"code": "string", "name": "string"}
PROFESSION_DTYPES = {
    "profession": "string",
    "category_id": "Int64",
    "category_name": "string",
    "count": "Int64",
    "profession_count": "Int64",
}


def fetch_categories(
    transport: Transport, q: str | None = None, limit: int | None = None
) -> pd.DataFrame:
    """``GET /api/categories`` (``q``: best matches first, with match columns)."""
    params: list[tuple[str, str]] = []
    if q is not None:
        params.append(("q", q))
    if limit is not None:
        params.append(("limit", str(int(limit))))
    data = transport.get_json("/api/categories", params=params or None)
    items = require_list(data, "categories", key="results" if isinstance(data, Mapping) else None)
    dtypes = {**CATEGORY_DTYPES, **(MATCH_DTYPES if q is not None else {})}
    return records_frame(items, dtypes)


def fetch_countries(transport: Transport) -> pd.DataFrame:
    """``GET /api/locations/countries``."""
    data = transport.get_json("/api/locations/countries")
    key = None
    if isinstance(data, Mapping):
        key = "countries" if "countries" in data else "results"
    return records_frame(require_list(data, "countries", key=key), COUNTRY_DTYPES)


def fetch_professions(transport: Transport, countries: Iterable[str] | None) -> pd.DataFrame:
    """``GET /api/professions/summary`` as one row per (profession, category)."""
    params = [("countries", c) for c in countries or ()]
    data = transport.get_json("/api/professions/summary", params=params or None)
    rows: list[dict[str, Any]] = []
    for group in require_list(
        data, "professions", key="results" if isinstance(data, Mapping) else None
    ):
        categories = group.get("categories")
        extra = {k: v for k, v in group.items() if k not in ("profession", "categories", "count")}
        for category in categories if isinstance(categories, list) else []:
            if not isinstance(category, Mapping):
                continue
            row = {
                "profession": group.get("profession"),
                "category_id": category.get("id"),
                "category_name": category.get("name"),
                "count": category.get("count"),
                "profession_count": group.get("count"),
                **extra,
            }
            row.update({k: v for k, v in category.items() if k not in ("id", "name", "count")})
            rows.append(row)
    return records_frame(rows, PROFESSION_DTYPES)
