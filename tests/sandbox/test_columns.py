"""The 20 contact columns are declared once; the CSV, the API and the OpenAPI schema follow it."""

from __future__ import annotations

import pytest

from scoutframe.sandbox import Sandbox
from scoutframe.sandbox.columns import CONTACT_COLUMNS, per_column
from scoutframe.sandbox.csvexport import export_csv_bytes
from scoutframe.sandbox.dataset import CONTACT_SCHEMA

# Contract section 6, spelled out here on purpose: the one declaration is checked against it.
CONTRACT_ORDER = (
    "place_id,name,email,phone,website,instagram,facebook,address,city,zipcode,"
    "level1_location,level2_location,level3_location,country,categories,rating,review_count,"
    "latitude,longitude,collected_at"
)


def test_the_declaration_is_the_contract() -> None:
    assert ",".join(CONTACT_COLUMNS) == CONTRACT_ORDER
    assert CONTACT_SCHEMA.names[:20] == list(CONTACT_COLUMNS)


def test_csv_header_api_records_and_openapi_schema_are_the_declaration(
    sandbox: Sandbox, api
) -> None:
    csv = export_csv_bytes(sandbox.runtime.store.table.slice(0, 3))
    assert csv.split(b"\n", 1)[0].decode() == ",".join(CONTACT_COLUMNS)

    page = api.get("/api/companies", params={"countries": "FR"}).json()
    assert page["preview"]
    for record in page["preview"]:
        assert tuple(record) == CONTACT_COLUMNS

    contact = api.get("/openapi.json").json()["components"]["schemas"]["Contact"]
    assert tuple(contact["properties"]) == CONTACT_COLUMNS
    assert tuple(contact["required"]) == CONTACT_COLUMNS


def test_live_records_add_only_the_undocumented_extra(live_sandbox: Sandbox, api_for) -> None:
    api = api_for(live_sandbox.url, f"Token {live_sandbox.api_key}")
    record = api.get("/api/companies", params={"countries": "FR"}).json()["preview"][0]
    assert tuple(record) == (*CONTACT_COLUMNS, "is_claimed")
    contact = api.get("/openapi.json").json()["components"]["schemas"]["Contact"]
    assert tuple(contact["properties"]) == (*CONTACT_COLUMNS, "is_claimed")
    assert tuple(contact["required"]) == CONTACT_COLUMNS


def test_per_column_fills_in_order_and_refuses_unknown_names() -> None:
    types = per_column({"rating": "number", "name": "text"}, "string")
    assert tuple(types) == CONTACT_COLUMNS
    assert types["rating"] == "number"
    assert types["name"] == "text"
    assert types["city"] == "string"
    with pytest.raises(ValueError, match="not contact columns: ratings"):
        per_column({"ratings": "number"}, "string")
