"""Search, pagination, masking, filter validation, reference data, routing edges."""

from __future__ import annotations

import math
import re

import pytest
import requests

CONTACT_FIELDS = {
    "place_id",
    "name",
    "email",
    "phone",
    "website",
    "instagram",
    "facebook",
    "address",
    "city",
    "zipcode",
    "level1_location",
    "level2_location",
    "level3_location",
    "country",
    "categories",
    "rating",
    "review_count",
    "latitude",
    "longitude",
    "collected_at",
}
MASKED = re.compile(r"^[^*@]\**@[^*.]\**\.[A-Za-z0-9-]+$")


def _all_pages(api, params):
    first = api.get("/api/companies", params=[*params, ("paginate", "true"), ("page", "1")])
    assert first.status_code == 200
    body = first.json()
    rows = list(body["preview"])
    for page in range(2, body["num_pages"] + 1):
        r = api.get("/api/companies/", params=[*params, ("paginate", "true"), ("page", page)])
        assert r.status_code == 200
        rows.extend(r.json()["preview"])
    return body, rows


def test_preview_shape(api):
    r = api.get("/api/companies", params={"countries": "FR"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"totalCount", "search_id", "preview", "page", "num_pages"}
    assert 0 < len(body["preview"]) <= 10
    assert body["num_pages"] == math.ceil(body["totalCount"] / 50)
    assert re.fullmatch(r"srch_[0-9a-f]{8}", body["search_id"])
    for contact in body["preview"]:
        assert set(contact) == CONTACT_FIELDS
        assert contact["country"] == "FR"
        assert isinstance(contact["phone"], list)
        assert isinstance(contact["email"], list)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", contact["collected_at"])


def test_pages_cover_the_result_exactly_once_in_place_id_order(api):
    params = [("countries", "BE"), ("email", "true")]
    body, rows = _all_pages(api, params)
    ids = [c["place_id"] for c in rows]
    assert len(ids) == body["totalCount"] > 50
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    last = api.get(
        "/api/companies", params=[*params, ("paginate", "true"), ("page", body["num_pages"])]
    ).json()
    assert len(last["preview"]) == body["totalCount"] - 50 * (body["num_pages"] - 1)
    assert all(c["email"] for c in rows)


@pytest.mark.parametrize("page", ["0", "-1", "10000"])
def test_page_out_of_range_is_404(api, page):
    r = api.get("/api/companies", params={"countries": "FR", "paginate": "true", "page": page})
    assert r.status_code == 404
    assert r.json() == {"detail": "Invalid page."}


def test_page_size_is_ignored(api):
    r = api.get("/api/companies", params={"countries": "FR", "paginate": "true", "page_size": "5"})
    assert len(r.json()["preview"]) == 50


def test_empty_result_has_one_empty_page(api):
    params = {
        "countries": "FR",
        "email": "true",
        "website": "false",
        "phone": "false",
        "category": "8059",
        "level3_locations": "1004336",
    }
    r = api.get("/api/companies", params={**params, "paginate": "true", "page": "1"})
    body = r.json()
    if body["totalCount"]:  # narrow enough to be empty in a 20,000-contact dataset
        pytest.fail(f"expected an empty result, got {body['totalCount']}")
    assert body["num_pages"] == 1
    assert body["preview"] == []


def test_emails_masked_one_star_per_hidden_character(api):
    rows = api.get(
        "/api/companies",
        params={"countries": "FR", "email": "true", "paginate": "true", "page": "1"},
    ).json()["preview"]
    emails = [e for c in rows for e in c["email"]]
    assert emails
    for e in emails:
        assert MASKED.match(e), e


def test_mask_email_rule():
    from scoutframe.sandbox.store import mask_email

    assert mask_email("jean@dupont.fr") == "j***@d*****.fr"
    assert mask_email("a@b.io") == "a@b.io"


def test_search_id_is_canonical_per_account(api, account):
    _, other = account
    a = api.get("/api/companies?countries=FR,BE&email=true").json()["search_id"]
    b = api.get("/api/companies?email=True&countries=be&countries=FR").json()["search_id"]
    c = api.get("/api/companies?countries=FR").json()["search_id"]
    d = other.get("/api/companies?countries=FR,BE&email=true").json()["search_id"]
    assert a == b
    assert len({a, c, d}) == 3


def test_filters_combine(api):
    fr = api.get("/api/companies", params={"countries": "FR"}).json()["totalCount"]
    be = api.get("/api/companies", params={"countries": "BE"}).json()["totalCount"]
    both = api.get("/api/companies", params={"countries": "FR,BE"}).json()["totalCount"]
    assert both == fr + be
    with_mail = api.get("/api/companies", params={"countries": "FR", "email": "true"}).json()
    without = api.get("/api/companies", params={"countries": "FR", "email": "false"}).json()
    assert with_mail["totalCount"] + without["totalCount"] == fr
    phone = api.get("/api/companies", params={"countries": "FR", "phone": "true"}).json()
    phone_number = api.get(
        "/api/companies", params={"countries": "FR", "phone_number": "true"}
    ).json()
    assert phone["totalCount"] == phone_number["totalCount"]


def test_category_and_main_activity(api):
    cats = api.get("/api/companies", params={"category": "8059"}).json()
    main = api.get(
        "/api/companies", params={"category": "8059", "main_activity_only": "true"}
    ).json()
    assert 0 < main["totalCount"] <= cats["totalCount"]
    assert all(c["categories"][0] == "Plumber" for c in main["preview"])
    assert all("Plumber" in c["categories"] for c in cats["preview"])


def test_locations_singular_and_plural(api):
    region = api.get("/api/locations/level1", params={"country": "US"}).json()["locations"]
    tx = next(r for r in region if r["id"] == 40)
    plural = api.get("/api/companies", params={"level1_locations": "40"}).json()
    singular = api.get("/api/companies", params={"level1_location": "40"}).json()
    assert plural["totalCount"] == singular["totalCount"] > 0
    assert {c["level1_location"] for c in plural["preview"]} == {tx["name"]}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"countries": "XX"}, "countries"),
        ({"category": "1"}, "category"),
        ({"level2_locations": "40"}, "level2_locations"),
        ({"email": "maybe"}, "email"),
        ({"countries": "FR", "paginate": "true", "page": "abc"}, "page"),
    ],
)
def test_invalid_filters_are_field_errors(api, params, field):
    r = api.get("/api/companies", params=params)
    assert r.status_code == 400
    body = r.json()
    assert list(body) == [field]
    assert isinstance(body[field], list)
    assert body[field]


def test_unknown_country_message(api):
    assert api.get("/api/companies?countries=XX").json() == {
        "countries": ["Unknown country code 'XX'."]
    }


def test_public_endpoint(sandbox):
    r = requests.get(f"{sandbox.url}/api/public/companies", params={"countries": "FR"}, timeout=10)
    assert r.status_code == 200
    body = r.json()
    assert body["search_id"] is None
    assert len(body["preview"]) <= 10
    assert all(MASKED.match(e) for c in body["preview"] for e in c["email"])


def test_trailing_slash_without_redirect(api):
    for path in ("/api/user/profile", "/api/categories", "/api/locations/countries"):
        a = api.get(path, allow_redirects=False)
        b = api.get(path + "/", allow_redirects=False)
        assert a.status_code == b.status_code == 200
        assert a.json() == b.json()


def test_request_id_on_every_answer(api):
    ids = {api.get(p).headers["X-Request-Id"] for p in ("/api/user/profile", "/api/nope")}
    assert len(ids) == 2


def test_unknown_path_and_wrong_method(api):
    r = api.get("/api/nothing-here")
    assert r.status_code == 404
    assert "detail" in r.json()
    r = api.post("/api/companies/", json={})
    assert r.status_code == 405
    assert r.json() == {"detail": "Method Not Allowed"}
    assert api("DELETE", "/api/user/profile").status_code == 405


def test_categories_and_search(api):
    cats = api.get("/api/categories").json()
    assert {"id": 8059, "name": "Plumber", "gcid": "gcid:plumber"} in cats
    found = api.get("/api/categories", params={"q": "plumb", "limit": "3"}).json()
    assert 1 <= len(found) <= 3
    assert found[0]["id"] == 8059
    assert {"match_rank", "matched_field", "matched_value"} <= set(found[0])


def test_countries_and_location_browse(api):
    countries = api.get("/api/locations/countries").json()
    assert {"code": "FR", "name": "France"} in countries
    level1 = api.get("/api/locations/level1", params={"country": "FR"}).json()
    assert level1["count"] == len(level1["locations"]) > 0
    region = level1["locations"][0]
    level2 = api.get(
        "/api/locations/level2", params={"country": "FR", "states": region["id"]}
    ).json()
    assert level2["count"] > 0
    assert all(
        x["parent_id"] == region["id"] and x["type"] == "level2" for x in level2["locations"]
    )
    county = level2["locations"][0]
    level3 = api.get(
        "/api/locations/level3", params={"country": "FR", "counties": county["id"]}
    ).json()
    assert all(x["parent_id"] == county["id"] for x in level3["locations"])
    looked = api.get("/api/locations/level1", params={"ids": region["id"]}).json()
    assert looked["locations"] == [region]


def test_location_search(api):
    body = api.get("/api/locations/search", params={"q": "paris", "country": "FR"}).json()
    assert body["count"] == len(body["locations"]) > 0
    assert any(x["name"] == "Paris" and x["type"] == "level3" for x in body["locations"])
    for level in ("level1", "level2", "level3"):
        assert sum(x["type"] == level for x in body["locations"]) <= 10
    none = api.get("/api/locations/search", params={"q": "paris", "country": "ZZ"}).json()
    assert none == {"count": 0, "locations": []}


def test_professions_summary(api):
    total = api.get("/api/companies", params={"countries": "FR"}).json()["totalCount"]
    summary = api.get("/api/professions/summary", params={"countries": "FR"}).json()
    assert summary
    for p in summary:
        counts = [c["count"] for c in p["categories"]]
        # distinct contacts: at least the largest category, at most the sum of them
        assert max(counts, default=0) <= p["count"] <= sum(counts)
    # every contact has at least one category, so each is counted in some profession
    assert sum(p["count"] for p in summary) >= total
    plumbers = api.get("/api/companies", params={"countries": "FR", "category": 8059}).json()
    listed = {c["id"]: c["count"] for p in summary for c in p["categories"]}
    assert listed[8059] == plumbers["totalCount"]
    assert api.get("/api/professions/summary", params={"countries": "XX"}).status_code == 400


def test_search_is_free(account):
    _info, api = account
    before = api.get("/api/user/profile").json()["credits"]
    for page in (1, 2):
        api.get("/api/companies", params={"countries": "FR", "paginate": "true", "page": page})
    assert api.get("/api/user/profile").json()["credits"] == before == 10_000


@pytest.mark.parametrize("flavor", ["docs", "live"])
def test_malformed_paginate_is_a_field_error(request, flavor):
    sb = request.getfixturevalue("sandbox" if flavor == "docs" else "live_sandbox")
    scheme = "Bearer" if flavor == "docs" else "Token"
    auth = {"Authorization": f"{scheme} {sb.api_key}"}
    r = requests.get(
        f"{sb.url}/api/companies", params={"paginate": "maybe"}, headers=auth, timeout=10
    )
    assert r.status_code == 400
    assert r.json() == {"paginate": ["'maybe' is not a valid boolean; use true or false."]}
    ok = requests.get(
        f"{sb.url}/api/companies",
        params={"paginate": "TRUE", "page": "2"},
        headers=auth,
        timeout=10,
    )
    assert ok.status_code == 200
    assert (ok.json()["page"], len(ok.json()["preview"])) == (2, 50)


def test_professions_countries_comma_separated_or_repeated(api):
    def counts(params):
        body = api.get("/api/professions/summary", params=params).json()
        return {c["id"]: c["count"] for p in body for c in p["categories"]}

    fr, be = counts({"countries": "FR"}), counts({"countries": "BE"})
    both = counts({"countries": "FR,BE"})
    assert both == counts([("countries", "FR"), ("countries", "BE")])
    assert both == {k: fr[k] + be[k] for k in both}
    assert sum(both.values()) > sum(fr.values()) > 0
