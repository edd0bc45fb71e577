"""JSON Schemas of the sandbox's answers, for its OpenAPI document (`scoutframe.sandbox.openapi`).

Written by hand from what the route handlers send (they answer raw orjson bytes, so there are
no pydantic models to derive them from). Objects allow extra properties, as the contract asks
clients to tolerate them; timestamps are RFC 3339 UTC strings with whole seconds.
"""

from __future__ import annotations

from typing import Any

from scoutframe.sandbox.columns import per_column

__all__ = ["ref", "schemas"]

_STR = {"type": "string"}
_INT = {"type": "integer"}
_NUM = {"type": "number"}
_BOOL = {"type": "boolean"}
_TIME = {"type": "string", "format": "date-time"}
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_STRINGS = {"type": "array", "items": _STR}
_INTS = {"type": "array", "items": _INT}


def ref(name: str) -> dict[str, str]:
    """Return a ``$ref`` to the component schema ``name``."""
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(
    props: dict[str, Any], *, optional: tuple[str, ...] = (), description: str | None = None
) -> dict[str, Any]:
    """Return an object schema whose properties are all required except ``optional``."""
    out: dict[str, Any] = {
        "type": "object",
        "properties": props,
        "required": [k for k in props if k not in optional],
    }
    if description:
        out["description"] = description
    return out


def _contact(live: bool) -> dict[str, Any]:
    phone: dict[str, Any] = _STRINGS
    if live:
        phone = {
            "oneOf": [_STRINGS, _STR],
            "description": "[LIVE] a lone number comes as a plain string",
        }
    # Every contact column, strings unless said otherwise.
    props: dict[str, Any] = per_column(
        {
            "email": {**_STRINGS, "description": "masked in search results: j***@d*****.fr"},
            "phone": phone,
            "country": {"type": "string", "description": "ISO 3166-1 alpha-2"},
            "categories": {**_STRINGS, "description": "category names, main category first"},
            "rating": {"type": ["number", "null"]},
            "review_count": _INT,
            "latitude": _NUM,
            "longitude": _NUM,
            "collected_at": _TIME,
        },
        _STR,
    )
    optional: tuple[str, ...] = ()
    if live:
        props["is_claimed"] = {**_BOOL, "description": "[LIVE] an undocumented extra field"}
        optional = ("is_claimed",)
    return _obj(props, optional=optional, description="A business contact.")


def _search_page(live: bool) -> dict[str, Any]:
    props: dict[str, Any] = {
        "totalCount": _INT,
        "search_id": {
            "type": ["string", "null"],
            "description": "srch_ + 8 hex digits; null on the public endpoint",
        },
        "preview": {"type": "array", "items": ref("Contact"), "maxItems": 50},
        "page": {"type": "integer", "minimum": 1},
        "num_pages": {"type": "integer", "minimum": 1},
    }
    optional: tuple[str, ...] = ()
    if live:
        props["credits_per_lead"] = _INT
        optional = ("credits_per_lead",)
    return _obj(props, optional=optional)


def _export_status(live: bool) -> dict[str, Any]:
    if live:
        return _obj(
            {
                "status": {"enum": ["pending", "processing", "completed", "failed"]},
                "search_id": _STR,
                "lead_count": _INT,
                "progress": _NUM,
                "updated_at": _TIME,
                "error": {**_STR, "description": "when failed (the credits were refunded)"},
            },
            optional=("error",),
        )
    return _obj(
        {
            "task_id": _STR,
            "status": {"enum": ["pending", "processing", "ready", "failed"]},
            "search_id": _STR,
            "lead_count": _INT,
            "progress": {"type": "number", "minimum": 0, "maximum": 1},
            "download_url": {
                "type": ["string", "null"],
                "description": "when ready; null once the signed URL has expired",
            },
            "expires_at": {**_TIME, "description": "when ready"},
            "error": {**_STR, "description": "when failed (the credits were refunded)"},
        },
        optional=("download_url", "expires_at", "error"),
    )


_FILTERS = {
    "type": "object",
    "description": "the entry's canonical filters (only those that are set)",
    "properties": {
        "countries": _STRINGS,
        "category": _INTS,
        "level1_locations": _INTS,
        "level2_locations": _INTS,
        "level3_locations": _INTS,
        "email": _BOOL,
        "phone_number": _BOOL,
        "website": _BOOL,
        "instagram": _BOOL,
        "facebook": _BOOL,
        "main_activity_only": _BOOL,
    },
}

_API_KEY = _obj(
    {
        "id": _INT,
        "name": _STR,
        "token_key": {"type": "string", "pattern": "^[0-9a-f]{8}$", "description": "key prefix"},
        "created": _TIME,
        "expiry": _TIME_OR_NULL,
    }
)

_LOCATION = _obj(
    {
        "id": _INT,
        "name": _STR,
        "type": {"enum": ["level1", "level2", "level3"]},
        "country": _STR,
        "parent_id": {"type": ["integer", "null"]},
    }
)


def schemas(live: bool) -> dict[str, Any]:
    """Return the component schemas of one flavour.

    Parameters
    ----------
    live
        The live flavour's shapes (contract section 9) rather than the documented ones.

    Returns
    -------
    dict
        Schema name → JSON Schema (OpenAPI 3.1 dialect).
    """
    return {
        "Error": _obj(
            {"detail": _STR, "code": _STR, "validation_code": _STR},
            optional=("code", "validation_code"),
            description="An error; `code` is token_not_valid for a bad JWT.",
        ),
        "FieldErrors": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {"type": "array", "items": _STR, "minItems": 1},
            "description": "DRF-style field errors: parameter name → messages",
        },
        "InsufficientCredits": _obj(
            {
                "detail": _STR,
                "validation_code": {"const": "insufficient_credits"},
                "required_credits": _INT,
                "available_credits": _INT,
            }
        ),
        "Login": _obj(
            {
                "access": _STR,
                "refresh": _STR,
                "user": _obj({"id": _INT, "email": _STR, "username": _STR}),
            }
        ),
        "Access": _obj({"access": _STR}),
        "Profile": _obj(
            {
                "id": _INT,
                "email": _STR,
                "username": _STR,
                "first_name": _STR,
                "last_name": _STR,
                "plan": _STR,
                "credits": {**_INT, "description": "the remaining balance"},
                "credits_used": _INT,
                "date_joined": _TIME,
            }
        ),
        "ApiKey": _API_KEY,
        "ApiKeyCreated": {
            "allOf": [
                _API_KEY,
                _obj(
                    {
                        "key": {
                            "type": "string",
                            "pattern": "^[0-9a-f]{64}$",
                            "description": "the full key: shown only in this answer",
                        }
                    }
                ),
            ]
        },
        "Contact": _contact(live),
        "SearchPage": _search_page(live),
        "Category": _obj({"id": _INT, "name": _STR, "gcid": _STR}),
        "CategoryMatch": _obj(
            {
                "id": _INT,
                "name": _STR,
                "gcid": _STR,
                "match_rank": {"type": "integer", "minimum": 1, "maximum": 5},
                "matched_field": {"enum": ["name", "gcid"]},
                "matched_value": _STR,
            },
            optional=("match_rank", "matched_field", "matched_value"),
            description="A category; with `q`, how it matched too.",
        ),
        "Country": _obj({"code": _STR, "name": _STR}),
        "Location": _LOCATION,
        "LocationList": _obj(
            {"count": _INT, "locations": {"type": "array", "items": ref("Location")}}
        ),
        "Profession": _obj(
            {
                "profession": _STR,
                "count": _INT,
                "categories": {
                    "type": "array",
                    "items": _obj({"id": _INT, "name": _STR, "count": _INT}),
                },
            }
        ),
        "ExportStarted": (
            _obj({"status": {"const": "pending"}, "search_id": _STR, "lead_count": _INT})
            if live
            else _obj(
                {
                    "task_id": _STR,
                    "status": {"const": "pending"},
                    "search_id": _STR,
                    "lead_count": _INT,
                }
            )
        ),
        "ExportStatus": _export_status(live),
        "DownloadUrl": _obj({"download_url": _STR, "expires_at": _TIME}),
        "HistoryEntry": _obj(
            {
                "id": _INT,
                "search_id": _STR,
                "filters": _FILTERS,
                "created_at": _TIME,
                "row_count": _INT,
                "status": {"enum": ["pending", "processing", "ready", "failed"]},
                "kind": {"enum": ["full", "delta"]},
                "parent_id": {"type": ["integer", "null"]},
                "download_url": {"type": ["string", "null"]},
                "expires_at": _TIME_OR_NULL,
            }
        ),
        "History": _obj(
            {"count": _INT, "results": {"type": "array", "items": ref("HistoryEntry")}}
        ),
        "Freshness": _obj(
            {
                "id": _INT,
                "exported_at": _TIME,
                "new_count": _INT,
                "is_fresh": _BOOL,
                "checked_at": _TIME,
            }
        ),
    }
