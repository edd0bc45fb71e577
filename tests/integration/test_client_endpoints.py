"""Every endpoint method of the client core against the sandbox, in both API flavours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scoutframe.api.filters import Filters
from scoutframe.errors import AuthenticationError, FilterError, NotFoundError
from scoutframe.models import ApiKey, Profile, SearchPage


def test_profile(sandbox, client_for, fresh_account):
    account = fresh_account(sandbox, credits=1234)
    profile = client_for(sandbox, account["api_key"]).profile()
    assert isinstance(profile, Profile)
    assert profile.credits == 1234
    assert profile.email == account["email"]
    assert profile.id == account["id"]
    assert profile.date_joined is not None
    assert profile.date_joined.tzinfo is not None


def test_categories_full_list_and_query(sandbox, client_for):
    client = client_for(sandbox)
    frame = client.categories()
    assert str(frame["id"].dtype) == "Int64"
    assert str(frame["name"].dtype) == "string"
    assert frame["id"].is_unique
    assert len(frame) > 50
    assert frame.loc[frame["id"] == 8059, "name"].tolist() == ["Plumber"]
    matches = client.categories("plumb", limit=5)
    assert 0 < len(matches) <= 5
    assert matches["name"].iloc[0] == "Plumber"
    assert {"match_rank", "matched_field", "matched_value"} <= set(matches.columns)


def test_countries(sandbox, client_for):
    frame = client_for(sandbox).countries()
    assert list(frame.columns[:2]) == ["code", "name"]
    assert frame["code"].str.len().eq(2).all()
    assert "FR" in set(frame["code"])
    assert "US" in set(frame["code"])


def test_reference_lists_are_cached_on_the_client(sandbox, client_for, caplog):
    client = client_for(sandbox)
    caplog.set_level("DEBUG", logger="scoutframe")
    first = client.categories()
    first.loc[0, "name"] = "mutated by the caller"
    second = client.categories()
    client.countries()
    client.countries()
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "scoutframe" and "-> 200" in r.getMessage()
    ]
    assert sum("/api/categories" in line for line in lines) == 1
    assert sum("/api/locations/countries" in line for line in lines) == 1
    assert "mutated by the caller" not in set(second["name"])


def test_locations_search_levels_and_lookup(sandbox, client_for):
    client = client_for(sandbox)
    found = client.locations.search("Paris", country="FR")
    assert list(found.columns[:5]) == ["id", "name", "type", "country", "parent_id"]
    assert str(found["id"].dtype) == "Int64"
    assert str(found["parent_id"].dtype) == "Int64"
    paris = found[(found["name"] == "Paris") & (found["type"] == "level3")]
    assert len(paris) == 1
    regions = client.locations.level1("US")
    assert regions.loc[regions["id"] == 40, "type"].tolist() == ["level1"]  # Texas, production id
    assert regions["parent_id"].isna().all()
    region = int(client.locations.level1("FR")["id"].iloc[0])
    counties = client.locations.level2("FR", region)
    assert len(counties) > 0
    assert (counties["parent_id"] == region).all()
    county = int(counties["id"].iloc[0])
    cities = client.locations.level3("FR", county)
    assert len(cities) > 0
    assert (cities["parent_id"] == county).all()
    city = int(cities["id"].iloc[0])
    looked_up = client.locations.lookup([region, county, city])
    assert sorted(looked_up["id"].tolist()) == sorted([region, county, city])
    assert set(looked_up["type"]) == {"level1", "level2", "level3"}
    assert len(client.locations.search("Zzyzxqwv", country="FR")) == 0


def test_professions(sandbox, client_for):
    client = client_for(sandbox)
    everywhere = client.professions()
    france = client.professions("FR")
    assert list(france.columns[:5]) == [
        "profession",
        "category_id",
        "category_name",
        "count",
        "profession_count",
    ]
    assert str(france["count"].dtype) == "Int64"
    assert france["count"].sum() <= everywhere["count"].sum()
    # A contact counts once per profession but once per category (main or secondary).
    per_categories = france.groupby("profession")["count"].sum()
    declared = france.groupby("profession")["profession_count"].first()
    assert (per_categories >= declared).all()
    assert (declared > 0).all()


def test_search_preview_and_pages(sandbox, client_for):
    client = client_for(sandbox)
    preview = client.search(countries="FR")
    assert isinstance(preview, SearchPage)
    assert preview.total_count > 100
    assert 0 < len(preview.contacts) <= 10
    assert preview.search_id
    assert all(c["country"] == "FR" for c in preview.contacts)
    first = client.search(countries="FR", page=1)
    second = client.search(countries="FR", page=2)
    assert len(first.contacts) == 50
    assert first.page == 1
    assert first.num_pages == -(-first.total_count // 50)
    ids1 = [c["place_id"] for c in first.contacts]
    ids2 = [c["place_id"] for c in second.contacts]
    assert not set(ids1) & set(ids2)
    assert ids1 == sorted(ids1)
    with pytest.raises(NotFoundError):
        client.search(countries="FR", page=first.num_pages + 1)


def test_search_resolves_names_and_matches_ids(sandbox, client_for):
    client = client_for(sandbox)
    by_name = client.search(countries="fr", category="plumber", email=True)
    by_id = client.search(Filters(countries=["FR"], category=8059, email=True))
    assert by_name.search_id == by_id.search_id
    assert by_name.total_count == by_id.total_count > 0
    region = client.search(countries="FR", level1_locations="ile-de-france")  # accents optional
    assert region.total_count > 0
    assert {c["level1_location"] for c in region.contacts} == {"Île-de-France"}
    paris = client.search(countries="FR", level3_locations="Paris")
    assert 0 < paris.total_count < client.search(countries="FR").total_count
    assert {c["level3_location"] for c in paris.contacts} == {"Paris"}


def test_search_with_unknown_category_name_lists_close_matches(sandbox, client_for):
    client = client_for(sandbox)
    with pytest.raises(
        FilterError, match=r"Unknown category 'Resturant'\. Did you mean: .*Restaurant"
    ):
        client.search(countries="FR", category="Resturant")
    with pytest.raises(FilterError, match="Did you mean: France"):
        client.search(countries="Frence")
    with pytest.raises(FilterError, match="Unknown level3 location 'Pariss'"):
        client.search(countries="FR", level3_locations="Pariss")


def test_search_checks_codes_and_ids_against_the_cached_reference_lists(
    sandbox, client_for, caplog
):
    client = client_for(sandbox)
    with pytest.raises(FilterError, match=r"Unknown country 'XX'.*FR") as caught:
        client.search(countries="XX")
    assert "BE" in str(caught.value)  # the valid codes are listed
    with pytest.raises(FilterError, match=r"Unknown category id 999999.*client\.categories"):
        client.search(countries="FR", category=999999)
    with pytest.raises(FilterError, match=r"Unknown country 'XX'"):
        client.search(countries="XX", page=1)
    first_id = int(client.categories()["id"].iloc[0])
    by_name = client.search(countries="FR", category=str(client.categories()["name"].iloc[0]))
    caplog.set_level("DEBUG", logger="scoutframe")
    known = client.search(countries="FR", category=first_id)
    assert known.total_count == by_name.total_count
    assert known.search_id == by_name.search_id
    client.search(countries="BE")
    lines = [
        r.getMessage() for r in caplog.records if r.name == "scoutframe" and "-> " in r.getMessage()
    ]
    assert sum("/api/locations/countries" in line for line in lines) == 0  # cached above
    assert sum("/api/categories" in line for line in lines) == 0
    assert sum("/api/companies" in line for line in lines) == 2


def test_public_search_needs_no_credential(sandbox, client_for):
    client = client_for(sandbox)
    page = client.public_search(countries="FR", category=8059)
    assert page.search_id is None
    assert 0 < len(page.contacts) <= 10
    assert page.total_count == client.search(countries="FR", category=8059).total_count


def test_api_keys_create_list_revoke(sandbox, client_for, fresh_account):
    account = fresh_account(sandbox)
    client = client_for(sandbox, account["api_key"])
    expiry = datetime.now(UTC) + timedelta(days=365)
    created = client.api_keys.create(name="notebook", expiry=expiry)
    assert isinstance(created, ApiKey)
    assert created.key is not None
    assert len(created.key) == 64
    assert created.token_key == created.key[:8]
    assert created.key not in repr(created)
    assert created.expiry is not None
    assert abs((created.expiry - expiry).total_seconds()) < 2
    listed = client.api_keys.list()
    assert created.id in [k.id for k in listed]
    assert all(k.key is None for k in listed)
    new_client = client_for(sandbox, created.key)
    assert new_client.profile().id == account["id"]
    client.api_keys.revoke(created)
    assert created.id not in [k.id for k in client.api_keys.list()]
    with pytest.raises(AuthenticationError):
        client_for(sandbox, created.key).profile()
    with pytest.raises(NotFoundError):
        client.api_keys.revoke(created.id)
