"""Filters: normalisation, canonical form, hashing, validation, name resolution."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from scoutframe.api.filters import Filters
from scoutframe.errors import FilterError


class FakeClient:
    """Reference data in memory; counts the lookups (no sockets)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.locations = SimpleNamespace(search=self._search)

    def countries(self) -> pd.DataFrame:
        self.calls.append(("countries",))
        return pd.DataFrame(
            {"code": ["FR", "BE", "US"], "name": ["France", "Belgium", "United States"]}
        )

    def categories(self) -> pd.DataFrame:
        self.calls.append(("categories",))
        return pd.DataFrame(
            {
                "id": [8059, 8100, 8101, 8102],
                "name": ["Plumber", "Restaurant", "Vegan restaurant", "Electrician"],
                "gcid": [
                    "gcid:plumber",
                    "gcid:restaurant",
                    "gcid:vegan_restaurant",
                    "gcid:electrician",
                ],
            }
        )

    def _search(self, q: str, *, country: str | None = None) -> pd.DataFrame:
        self.calls.append(("search", q, str(country)))
        rows = [
            {"id": 1004332, "name": "Paris", "type": "level3", "country": "FR", "parent_id": 1},
            {
                "id": 100732,
                "name": "Arrondissement de Paris",
                "type": "level2",
                "country": "FR",
                "parent_id": 2,
            },
            {"id": 2000001, "name": "Paris", "type": "level3", "country": "US", "parent_id": 3},
            {"id": 40, "name": "Texas", "type": "level1", "country": "US", "parent_id": None},
        ]
        hits = [
            r
            for r in rows
            if q.casefold()[:4] in str(r["name"]).casefold()
            and (country is None or r["country"] == country)
        ]
        return pd.DataFrame(hits, columns=["id", "name", "type", "country", "parent_id"])


def test_python_friendly_input_is_normalised():
    f = Filters(countries="fr, be", category=["Plumber", "8059", 8100], email=True)
    assert f.countries == ("BE", "FR")
    assert f.category == (8059, 8100, "Plumber")
    assert f.email is True
    assert f.phone_number is None


def test_equal_meaning_gives_equal_value_hash_and_cache_key():
    a = Filters(countries=["FR", "BE"], category=[8100, 8059], level1_locations=40)
    b = Filters(countries="be,fr", category=(8059, 8100, 8059), level1_locations=[40])
    c = Filters.from_any({"country": "FR,BE", "categories": [8059, 8100]}, level1_location="40")
    assert a == b == c
    assert hash(a) == hash(b) == hash(c)
    assert a.cache_key == b.cache_key == c.cache_key
    assert len({a, b, c}) == 1
    assert a.cache_key == '{"category":[8059,8100],"countries":["BE","FR"],"level1_locations":[40]}'


def test_different_meaning_differs():
    assert Filters(email=True) != Filters(email=False)
    assert Filters(email=True).cache_key != Filters().cache_key
    assert Filters(category="Plumber") != Filters(category="Plumbers")


def test_names_compare_case_insensitively():
    assert Filters(category="plumber") == Filters(category="Plumber")
    assert hash(Filters(countries="france")) == hash(Filters(countries="France"))
    assert len(Filters(category=["Plumber", "plumber"]).category) == 1
    assert Filters(category="Resturant").category == ("Resturant",)  # shown as typed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"email": "yes"}, r"email must be True, False or None, not 'yes'"),
        ({"website": 1}, r"website must be True, False or None"),
        ({"countries": 33}, r"countries must be ISO codes or names"),
        ({"category": 3.5}, r"category values must be integer ids or names"),
        ({"category": True}, r"category values must be integer ids or names"),
        ({"level1_locations": {"a": 1}}, r"level1_locations must be a value or a list"),
        ({"contry": "FR"}, r"Unknown filter 'contry'\. Did you mean: country"),
    ],
)
def test_wrong_input_is_explained(kwargs, message):
    with pytest.raises(FilterError, match=message):
        Filters.from_any(**kwargs)


def test_from_any_merges_and_replaces():
    base = Filters(countries="FR", email=True)
    merged = Filters.from_any(base, email=False, phone=True)
    assert merged == Filters(countries="FR", email=False, phone_number=True)
    assert Filters.from_any(None) == Filters()
    assert base.replace(country="BE").countries == ("BE",)
    with pytest.raises(FilterError, match="must be a Filters, a dict or None"):
        Filters.from_any("FR")  # type: ignore[arg-type]


def test_to_params_requires_ids_and_repeats_keys():
    f = Filters(
        countries=["FR", "BE"],
        category=[8059, 8100],
        level3_locations=[5, 6],
        email=True,
        website=False,
        main_activity_only=True,
    )
    assert f.to_params() == [
        ("countries", "BE"),
        ("countries", "FR"),
        ("category", "8059"),
        ("category", "8100"),
        ("level3_locations", "5"),
        ("level3_locations", "6"),
        ("email", "true"),
        ("website", "false"),
        ("main_activity_only", "true"),
    ]
    with pytest.raises(FilterError, match=r"resolve\(client\)"):
        Filters(category="Plumber").to_params()
    assert not Filters(countries="France").is_resolved()


def test_resolve_names_to_ids():
    client = FakeClient()
    f = Filters(
        countries=["france", "BE"],
        category=["plumber", "gcid:restaurant", 8102],
        level3_locations="Paris",
    )
    resolved = f.resolve(client)
    assert resolved == Filters(
        countries=["BE", "FR"], category=[8059, 8100, 8102], level3_locations=[1004332]
    )
    assert resolved.is_resolved()
    assert ("search", "Paris", "FR") in client.calls
    assert resolved.resolve(client) == resolved


def test_unknown_names_list_the_closest():
    client = FakeClient()
    with pytest.raises(
        FilterError, match=r"Unknown category 'Resturant'\. Did you mean: Restaurant"
    ):
        Filters(category="Resturant").resolve(client)
    with pytest.raises(FilterError, match=r"Unknown country 'Frence'\. Did you mean: France"):
        Filters(countries="Frence").resolve(client)
    with pytest.raises(FilterError, match="Unknown country 'XX'"):
        Filters(countries="XX").resolve(client)
    with pytest.raises(FilterError, match=r"Unknown category id 1\b"):
        Filters(category=1).resolve(client)


def test_location_errors():
    client = FakeClient()
    with pytest.raises(FilterError, match="ambiguous"):
        Filters(level3_locations="Paris").resolve(client)  # FR and US, no country given
    with pytest.raises(FilterError, match="It exists at another level: Paris"):
        Filters(countries="FR", level2_locations="Paris").resolve(client)
    with pytest.raises(FilterError, match="Unknown level1 location 'Texa'"):
        Filters(countries="US", level1_locations="Texa").resolve(client)


def test_dataclass_round_trip_as_persisted_by_jobs():
    import dataclasses
    import json

    f = Filters(countries="FR", category=[8059], email=True)
    stored = json.loads(json.dumps(dataclasses.asdict(f)))
    assert Filters.from_any(stored) == f
    assert "Filters(countries=('FR',)" in repr(f)


def test_countries_without_a_country_list_on_the_server():
    from scoutframe.errors import NotFoundError

    class NoCountryList(FakeClient):
        def countries(self) -> pd.DataFrame:
            raise NotFoundError(404, "Not found.")

    client = NoCountryList()
    assert Filters(countries="fr", category="Plumber").resolve(client).countries == ("FR",)
    with pytest.raises(FilterError, match="give ISO 3166-1 alpha-2 codes"):
        Filters(countries="France").resolve(client)


def test_unknown_code_lists_the_valid_codes():
    with pytest.raises(FilterError, match=r"Unknown country 'XX'.*BE, FR, US"):
        Filters(countries=["FR", "xx"]).resolve(FakeClient())


def test_names_match_without_accents():
    class Accented(FakeClient):
        def _search(self, q: str, *, country: str | None = None) -> pd.DataFrame:
            rows = [
                {
                    "id": 1238,
                    "name": "Île-de-France",
                    "type": "level1",
                    "country": "FR",
                    "parent_id": None,
                }
            ]
            return pd.DataFrame(rows)

    client = Accented()
    resolved = Filters(countries="FR", level1_locations="ile-de-france").resolve(client)
    assert resolved.level1_locations == (1238,)
    assert Filters(category="Électrician").resolve(client).category == (8102,)


def test_the_true_false_filters_are_declared_once_and_match_the_filters_fields() -> None:
    # The CLI's --email/--no-email flags, the form's toggles and the generated code all read
    # these two constants; they must name exactly the true/false fields of Filters.
    import dataclasses

    from scoutframe.api import filters

    flags = [f.name for f in dataclasses.fields(filters.Filters) if "bool" in str(f.type)]
    assert list(filters.BOOLEAN_FIELDS) == flags
    assert (*filters.CONTACT_METHODS, "main_activity_only") == filters.BOOLEAN_FIELDS
