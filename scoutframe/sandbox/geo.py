"""Reference geography of the sandbox: countries and level-1/2/3 locations.

Level 1 is the real first-level subdivision of a country (geonames admin-1, named from
``data/admin1.json`` or, for the US, the GeoNames state list), level 3 is a real city with
its real coordinates (GeoNames, from ``data/places.json.gz``: see ``data/README.md`` for
its source and licence, ``scripts/make_sandbox_places.py`` for how it is made), and level 2
groups the cities of one level-1 area around its largest towns (real level-2 boundaries are
not shipped by any package we use). Country names are ISO 3166-1's (pycountry, from
``data/countries.json``, made by ``scripts/make_sandbox_names.py``). Everything here is
independent of the dataset's seed and size, so location ids are stable across regenerations.
"""

from __future__ import annotations

import functools
import gzip
import json
import math
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

__all__ = [
    "COUNTRIES",
    "US_STATE_IDS",
    "CountryProfile",
    "Geography",
    "build_geography",
    "select_cities",
]

#: Production level-1 ids of US states (contract section 5).
US_STATE_IDS: dict[str, int] = {
    "TX": 40,
    "TN": 41,
    "GA": 42,
    "CA": 43,
    "LA": 44,
    "OH": 45,
    "AZ": 46,
    "IL": 47,
    "VA": 48,
    "AR": 49,
    "NC": 50,
    "IN": 51,
    "CO": 52,
    "NY": 53,
    "NJ": 54,
    "MN": 55,
    "WI": 56,
    "FL": 57,
    "KY": 58,
    "MI": 59,
    "UT": 60,
    "AK": 61,
    "SC": 62,
    "WA": 63,
    "MO": 64,
    "KS": 65,
    "WY": 66,
    "PA": 67,
    "OK": 68,
    "NM": 69,
    "MA": 70,
    "IA": 71,
    "MS": 72,
    "WV": 73,
    "MD": 74,
    "NE": 75,
    "ID": 76,
    "AL": 77,
    "ME": 78,
    "DE": 79,
    "OR": 80,
    "NV": 81,
    "SD": 82,
    "ND": 83,
    "NH": 84,
    "MT": 85,
    "VT": 86,
    "CT": 87,
    "HI": 88,
    "RI": 89,
    "DC": 90,
}

LEVEL1_FIRST_ID = 1000
LEVEL2_FIRST_ID = 100_000
LEVEL3_FIRST_ID = 1_000_000


@dataclass(frozen=True)
class CountryProfile:
    """How businesses of one country look: language, formats and share of the data.

    Patterns use ``#`` for a random digit, ``N`` for a digit 2-9, ``A`` for a random capital
    letter, ``{z}`` for the postcode prefix of the city's level-2 area
    (``data/postcodes.json``) and ``{a}`` for an area code of its level-1 area
    (``data/phone_prefixes.json``); see ``dataset.py``.
    """

    code: str
    locale: str  # Faker locale code of its name pool (data/names.json.gz)
    tld: str
    weight: float  # relative share of contacts
    calling_code: str
    phone_national: str  # e.g. "0# ## ## ## ##"
    phone_international: str  # e.g. "+33 # ## ## ## ##"
    zip_pattern: str  # "" when the country has no postcodes in practice
    address_order: str  # "number_street" or "street_number"
    email_rate: float = 1.0  # multiplier on the category's email coverage
    social_rate: float = 1.0  # multiplier on instagram/facebook coverage
    website_rate: float = 1.0
    level2_format: str = "{city} District"
    local_categories_only: bool = False  # only categories with a word in the language
    regional_locales: tuple[tuple[str, str], ...] = ()  # (level-1 name, Faker locale code)


def _p(
    code: str,
    locale: str,
    tld: str,
    weight: float,
    cc: str,
    nat: str,
    intl: str,
    zipp: str,
    order: str = "street_number",
    **kw: Any,
) -> CountryProfile:
    return CountryProfile(code, locale, tld, weight, cc, nat, intl, zipp, order, **kw)


# Zip patterns: "{z}" is a prefix chosen per level-1 area or city (keeps the real leading
# zeros, e.g. FR "01", US "021"), "#" a digit, "A" a letter.
COUNTRIES: dict[str, CountryProfile] = {
    p.code: p
    for p in (
        _p(
            "US",
            "en_US",
            "com",
            30,
            "1",
            "({a}) N##-####",
            "+1 {a}-N##-####",
            "{z}##",
            "number_street",
            level2_format="{county}",
        ),
        _p(
            "CA",
            "en_CA",
            "ca",
            4,
            "1",
            "({a}) N##-####",
            "+1 {a}-N##-####",
            "{z}#A #A#",
            "number_street",
            level2_format="{city} Division",
            regional_locales=(("Quebec", "fr_CA"),),
        ),
        _p(
            "MX",
            "es_MX",
            "com.mx",
            4,
            "52",
            "N# #### ####",
            "+52 N# #### ####",
            "{z}###",
            email_rate=0.6,
            social_rate=1.4,
            level2_format="Municipio de {city}",
        ),
        _p(
            "BR",
            "pt_BR",
            "com.br",
            6,
            "55",
            "(N#) 9####-####",
            "+55 N# 9####-####",
            "{z}###-###",
            email_rate=0.7,
            social_rate=1.5,
            level2_format="Microrregião de {city}",
        ),
        _p(
            "AR",
            "es_AR",
            "com.ar",
            2,
            "54",
            "011 ####-####",
            "+54 9 11 ####-####",
            "{z}##",
            email_rate=0.7,
            social_rate=1.4,
            level2_format="Partido de {city}",
        ),
        _p(
            "CL",
            "es_CL",
            "cl",
            1.2,
            "56",
            "9 #### ####",
            "+56 9 #### ####",
            "{z}#####",
            email_rate=0.8,
            social_rate=1.3,
            level2_format="Provincia de {city}",
        ),
        _p(
            "CO",
            "es_CO",
            "com.co",
            1.5,
            "57",
            "3## #######",
            "+57 3## #######",
            "{z}####",
            email_rate=0.6,
            social_rate=1.4,
            level2_format="Provincia de {city}",
        ),
        _p(
            "GB",
            "en_GB",
            "co.uk",
            8,
            "44",
            "0N### ######",
            "+44 N### ######",
            "{z}# #AA",
            "number_street",
            level2_format="{city} Borough",
        ),
        _p(
            "IE",
            "en_IE",
            "ie",
            0.8,
            "353",
            "0N# ### ####",
            "+353 N# ### ####",
            "A## A#A#",
            "number_street",
            level2_format="County {city}",
        ),
        _p(
            "FR",
            "fr_FR",
            "fr",
            10,
            "33",
            "0{a} ## ## ## ##",
            "+33 {a} ## ## ## ##",
            "{z}###",
            "number_street",
            level2_format="Arrondissement de {city}",
        ),
        _p(
            "DE",
            "de_DE",
            "de",
            9,
            "49",
            "0N## #######",
            "+49 N## #######",
            "{z}###",
            level2_format="Landkreis {city}",
        ),
        _p(
            "ES",
            "es_ES",
            "es",
            6,
            "34",
            "9## ## ## ##",
            "+34 9## ## ## ##",
            "{z}###",
            level2_format="Comarca de {city}",
        ),
        _p(
            "IT",
            "it_IT",
            "it",
            6,
            "39",
            "0N# #######",
            "+39 0N# #######",
            "{z}###",
            level2_format="Provincia di {city}",
        ),
        _p(
            "PT",
            "pt_PT",
            "pt",
            1.5,
            "351",
            "2## ### ###",
            "+351 2## ### ###",
            "{z}##-###",
            level2_format="Concelho de {city}",
        ),
        _p(
            "BE",
            "nl_BE",
            "be",
            2,
            "32",
            "0N ### ## ##",
            "+32 N ### ## ##",
            "{z}##",
            level2_format="Arrondissement {city}",
            regional_locales=(("Wallonia", "fr_BE"), ("Brussels-Capital Region", "fr_BE")),
        ),
        _p(
            "NL",
            "nl_NL",
            "nl",
            3,
            "31",
            "0N# ### ####",
            "+31 N# ### ####",
            "{z}## AA",
            level2_format="Gemeente {city}",
        ),
        _p(
            "CH",
            "de_CH",
            "ch",
            1.5,
            "41",
            "0N# ### ## ##",
            "+41 N# ### ## ##",
            "{z}##",
            level2_format="Bezirk {city}",
            regional_locales=(
                ("Genève", "fr_CH"),
                ("Vaud", "fr_CH"),
                ("Neuchâtel", "fr_CH"),
                ("Jura", "fr_CH"),
                ("Fribourg", "fr_CH"),
                ("Valais", "fr_CH"),
                ("Ticino", "it_CH"),
            ),
        ),
        _p(
            "AT",
            "de_AT",
            "at",
            1.2,
            "43",
            "0N## ######",
            "+43 N## ######",
            "{z}###",
            level2_format="Bezirk {city}",
        ),
        _p(
            "DK",
            "da_DK",
            "dk",
            0.8,
            "45",
            "N# ## ## ##",
            "+45 N# ## ## ##",
            "{z}##",
            level2_format="{city} Kommune",
        ),
        _p(
            "SE",
            "sv_SE",
            "se",
            1.2,
            "46",
            "0N#-### ## ##",
            "+46 N# ### ## ##",
            "{z}# ##",
            level2_format="{city} kommun",
        ),
        _p(
            "FI",
            "fi_FI",
            "fi",
            0.7,
            "358",
            "0N# ### ####",
            "+358 N# ### ####",
            "{z}###",
            level2_format="{city} seutukunta",
        ),
        _p(
            "PL",
            "pl_PL",
            "pl",
            2.5,
            "48",
            "N# ### ## ##",
            "+48 N# ### ## ##",
            "{z}-###",
            level2_format="Powiat {city}",
        ),
        _p(
            "CZ",
            "cs_CZ",
            "cz",
            1.2,
            "420",
            "N## ### ###",
            "+420 N## ### ###",
            "{z}# ##",
            level2_format="Okres {city}",
        ),
        _p(
            "JP",
            "ja_JP",
            "jp",
            5,
            "81",
            "0N-####-####",
            "+81 N-####-####",
            "{z}#-####",
            email_rate=0.5,
            social_rate=0.8,
            level2_format="{city} District",
            local_categories_only=True,
        ),
        _p(
            "IN",
            "en_IN",
            "in",
            5,
            "91",
            "0N# #### ####",
            "+91 9#### #####",
            "{z}####",
            email_rate=0.6,
            website_rate=0.7,
            level2_format="{city} District",
        ),
        _p(
            "AU",
            "en_AU",
            "com.au",
            3,
            "61",
            "(0{a}) #### ####",
            "+61 {a} #### ####",
            "{z}###",
            "number_street",
            level2_format="City of {city}",
        ),
        _p(
            "NZ",
            "en_NZ",
            "co.nz",
            0.8,
            "64",
            "0N ### ####",
            "+64 N ### ####",
            "{z}##",
            "number_street",
            level2_format="{city} District",
        ),
        _p(
            "ZA",
            "zu_ZA",
            "co.za",
            1.5,
            "27",
            "0N# ### ####",
            "+27 N# ### ####",
            "{z}##",
            "number_street",
            email_rate=0.8,
            level2_format="{city} Local Municipality",
        ),
        _p(
            "NA",
            "en_US",
            "com.na",
            0.3,
            "264",
            "061 ### ###",
            "+264 61 ### ###",
            "",
            "number_street",
            email_rate=0.5,
            website_rate=0.5,
            level2_format="{city} Constituency",
        ),
        _p(
            "MA",
            "fr_FR",
            "ma",
            1,
            "212",
            "05## ## ## ##",
            "+212 5## ## ## ##",
            "{z}###",
            email_rate=0.6,
            level2_format="Préfecture de {city}",
        ),
        _p(
            "AE",
            "ar_AE",
            "ae",
            1,
            "971",
            "04 ### ####",
            "+971 4 ### ####",
            "",
            website_rate=1.2,
            level2_format="{city} Municipality",
        ),
    )
}

# Per-country cap on level-3 cities, the largest first; the rest uses _DEFAULT_CAP.
_CITY_CAPS = {"US": 1500, "IN": 500, "BR": 500, "FR": 600, "DE": 600}
_DEFAULT_CAP = 300
# A town closer than this to a much bigger one is taken for one of its districts.
_DISTRICT_KM = 4.0
# Cities per level-2 group, on average.
_CITIES_PER_LEVEL2 = 7

# City districts that geonames lists as towns: "Paris 15 Vaugirard", "Zürich (Kreis 11)".
_DISTRICT_NAME = re.compile(r"\d|\(|^Circo|^Quartiere|^Arrondissement")

_DATA = resources.files("scoutframe.sandbox") / "data"


@dataclass(frozen=True)
class Geography:
    """Reference tables plus the per-city arrays the generator samples from.

    Attributes
    ----------
    countries, locations
        The ``Dataset`` reference tables (see ``docs/architecture.md``).
    city_id, city_level2, city_level1 : numpy.ndarray
        Level-3 ids and their parents, one entry per city.
    city_country : numpy.ndarray
        Country code of each city (object array of str).
    city_name, city_lat, city_lon, city_population : numpy.ndarray
        Name and real coordinates and population of each city.
    city_zip_prefix : numpy.ndarray
        Leading characters of the city's postcodes (shared by its level-2 area, so a
        level-2 area behaves like a French département or a US 3-digit zip area).
    city_admin1 : numpy.ndarray
        Geonames admin-1 code of the city's level-1 area (keys of the ``data/*.json`` tables).
    """

    countries: pa.Table
    locations: pa.Table
    city_id: npt.NDArray[np.int32]
    city_level2: npt.NDArray[np.int32]
    city_level1: npt.NDArray[np.int32]
    city_country: npt.NDArray[np.object_]
    city_name: npt.NDArray[np.object_]
    city_lat: npt.NDArray[np.float64]
    city_lon: npt.NDArray[np.float64]
    city_population: npt.NDArray[np.float64]
    city_zip_prefix: npt.NDArray[np.object_]
    city_admin1: npt.NDArray[np.object_]


def _load_json(name: str) -> Any:
    return json.loads((_DATA / name).read_text(encoding="utf-8"))


def _places() -> dict[str, Any]:
    """Return the GeoNames extract: ``cities`` (by field), ``us_states``, ``us_counties``."""
    places: dict[str, Any] = json.loads(gzip.decompress((_DATA / "places.json.gz").read_bytes()))
    return places


def _level1_names() -> dict[str, dict[str, str]]:
    names: dict[str, dict[str, str]] = _load_json("admin1.json")
    names["US"] = dict(_places()["us_states"])
    return names


def _raw_cities() -> list[dict[str, Any]]:
    columns: dict[str, list[Any]] = _places()["cities"]
    fields = list(columns)
    return [dict(zip(fields, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _km(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> Any:
    """Equirectangular distance in km: plenty for "is this town next to that one"."""
    x = np.radians(lon2 - lon1) * np.cos(np.radians((lat1 + lat2) / 2))
    y = np.radians(lat2 - lat1)
    return 6371.0 * np.sqrt(x * x + y * y)


def _drop_districts(cities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop towns sitting inside a city three times bigger (geonames lists city districts)."""
    cities = sorted(cities, key=lambda c: (-c["population"], c["geonameid"]))
    lat = np.array([c["latitude"] for c in cities], dtype=np.float64)
    lon = np.array([c["longitude"] for c in cities], dtype=np.float64)
    pop = np.array([c["population"] for c in cities], dtype=np.float64)
    keep = np.ones(len(cities), dtype=bool)
    for i in range(1, len(cities)):
        big = pop[:i] >= 3 * pop[i]
        if big.any() and (_km(lat[i], lon[i], lat[:i][big], lon[:i][big]) < _DISTRICT_KM).any():
            keep[i] = False
    return [c for c, k in zip(cities, keep, strict=True) if k]


def _us_county_codes() -> dict[str, list[str]]:
    """Real county FIPS codes per state, sorted: production names US level-2 areas ``TN157``."""
    return {state: list(codes) for state, codes in _places()["us_counties"].items()}


def _expand(ranges: list[str]) -> list[str]:
    """``["010-012", "2A"]`` → ``["010", "011", "012", "2A"]`` (widths kept)."""
    out: list[str] = []
    for item in ranges:
        low, _, high = item.partition("-")
        if high:
            out.extend(f"{v:0{len(low)}d}" for v in range(int(low), int(high) + 1))
        else:
            out.append(low)
    return out


def _zip_prefix(cc: str, a1: str, seat: str, seat_id: int, tables: dict[str, Any]) -> str:
    """Postcode prefix of a level-2 area, from its seat city or its level-1 area."""
    known = tables["_cities"].get(cc, {}).get(seat)
    if known:
        return str(known)
    rng = np.random.default_rng(seat_id)
    choices = _expand(tables.get(cc, {}).get(a1, []))
    if choices:
        return str(choices[int(rng.integers(len(choices)))])
    if cc == "GB":  # outward code letters; Northern Ireland is all BT
        letters = "".join(ch for ch in _ascii_upper(seat) if ch.isalpha())
        return "BT" if a1 == "NIR" else (letters[:2] if len(letters) >= 2 else "LN")
    return f"{int(rng.integers(0, 100)):02d}"


def _ascii_upper(text: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().upper()


def _country_names() -> dict[str, str]:
    """Return country code → English name (ISO 3166-1, via pycountry: ``data/countries.json``)."""
    names: dict[str, str] = _load_json("countries.json")["countries"]
    return names


def select_cities(
    cities: list[dict[str, Any]],
    level1_names: dict[str, dict[str, str]],
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Pick the level-3 cities: country → level-1 code → its cities, largest first.

    Only the sandbox's countries and named level-1 areas count; city districts are dropped
    (by name and by distance to a much bigger town), then each country keeps its largest
    cities up to its cap, and every level-1 area at least its largest town. Applied to its
    own result it returns the same cities, which is why ``data/places.json.gz`` ships only
    these (``scripts/make_sandbox_places.py`` calls this on all of GeoNames' cities).

    Parameters
    ----------
    cities
        GeoNames cities: ``geonameid``, ``name``, ``countrycode``, ``admin1code``,
        ``latitude``, ``longitude``, ``population``.
    level1_names
        Country → admin-1 code → name, for every country of `COUNTRIES`.

    Returns
    -------
    dict
        For each country (sorted), its level-1 codes (sorted, only those with a city) and
        their cities in descending population (ties by ``geonameid``).
    """
    by_area: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for city in cities:
        cc, a1 = city["countrycode"], city["admin1code"]
        if (
            cc in COUNTRIES
            and a1 in level1_names.get(cc, {})
            and not _DISTRICT_NAME.search(city["name"])
        ):
            by_area.setdefault((cc, a1), []).append(city)
    selected: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for cc in sorted(COUNTRIES):
        cap = _CITY_CAPS.get(cc, _DEFAULT_CAP)
        areas = {
            a1: _drop_districts(by_area[(cc, a1)])
            for a1 in sorted(level1_names[cc])
            if (cc, a1) in by_area
        }
        ranked = sorted(
            (c for cs in areas.values() for c in cs),
            key=lambda c: (-c["population"], c["geonameid"]),
        )
        kept = {c["geonameid"] for c in ranked[:cap]}
        # Every level-1 area keeps at least its largest town.
        kept |= {cs[0]["geonameid"] for cs in areas.values()}
        selected[cc] = {a1: [c for c in cs if c["geonameid"] in kept] for a1, cs in areas.items()}
    return selected


@functools.cache
def build_geography() -> Geography:
    """Build the reference geography (cached: it depends on nothing but package data).

    Returns
    -------
    Geography
        Countries, locations and city arrays, ids stable across runs.
    """
    level1_names = _level1_names()
    county_codes = _us_county_codes()
    zip_tables: dict[str, Any] = _load_json("postcodes.json")
    loc_rows: list[tuple[int, str, str, str, int | None, float | None, float | None]] = []
    city_cols: dict[str, list[Any]] = {
        k: [] for k in ("id", "l2", "l1", "cc", "name", "lat", "lon", "pop", "zip", "a1")
    }
    next_l1, next_l2, next_l3 = LEVEL1_FIRST_ID, LEVEL2_FIRST_ID, LEVEL3_FIRST_ID
    for cc, areas in select_cities(_raw_cities(), level1_names).items():
        for a1, cs in areas.items():
            if cc == "US":
                l1 = US_STATE_IDS[a1]
            else:
                l1, next_l1 = next_l1, next_l1 + 1
            loc_rows.append((l1, level1_names[cc][a1], "level1", cc, None, None, None))
            # Level 2: the k largest towns are seats; every town joins its nearest seat.
            k = max(1, math.ceil(len(cs) / _CITIES_PER_LEVEL2))
            lat = np.array([c["latitude"] for c in cs])
            lon = np.array([c["longitude"] for c in cs])
            dist = _km(lat[:, None], lon[:, None], lat[None, :k], lon[None, :k])
            seat = np.argmin(dist, axis=1)
            l2_ids, prefixes = [], []
            for j in range(k):
                prefixes.append(_zip_prefix(cc, a1, cs[j]["name"], next_l2, zip_tables))
                fmt = COUNTRIES[cc].level2_format
                codes = county_codes.get(a1, [])
                county = f"{a1}{codes[j * 7 % len(codes)]}" if codes else f"{a1}{j + 1:03d}"
                name = fmt.format(city=cs[j]["name"], county=county)
                loc_rows.append((next_l2, name, "level2", cc, l1, None, None))
                l2_ids.append(next_l2)
                next_l2 += 1
            for c, s in zip(cs, seat, strict=True):
                loc_rows.append(
                    (
                        next_l3,
                        c["name"],
                        "level3",
                        cc,
                        l2_ids[s],
                        float(c["latitude"]),
                        float(c["longitude"]),
                    )
                )
                for key, val in (
                    ("id", next_l3),
                    ("l2", l2_ids[s]),
                    ("l1", l1),
                    ("cc", cc),
                    ("name", c["name"]),
                    ("lat", c["latitude"]),
                    ("lon", c["longitude"]),
                    ("pop", c["population"]),
                    ("zip", prefixes[s]),
                    ("a1", a1),
                ):
                    city_cols[key].append(val)
                next_l3 += 1

    loc_rows.sort(key=lambda r: r[0])
    cols = list(zip(*loc_rows, strict=True))
    locations = pa.table(
        {
            "id": pa.array(cols[0], pa.int32()),
            "name": pa.array(cols[1], pa.string()),
            "type": pa.array(cols[2], pa.string()),
            "country": pa.array(cols[3], pa.string()),
            "parent_id": pa.array(cols[4], pa.int32()),
            "latitude": pa.array(cols[5], pa.float64()),
            "longitude": pa.array(cols[6], pa.float64()),
        }
    )
    names = _country_names()
    countries = pa.table(
        {
            "code": pa.array(sorted(COUNTRIES), pa.string()),
            "name": pa.array([names[c] for c in sorted(COUNTRIES)], pa.string()),
        }
    )
    return Geography(
        countries=countries,
        locations=locations,
        city_id=np.array(city_cols["id"], dtype=np.int32),
        city_level2=np.array(city_cols["l2"], dtype=np.int32),
        city_level1=np.array(city_cols["l1"], dtype=np.int32),
        city_country=np.array(city_cols["cc"], dtype=object),
        city_name=np.array(city_cols["name"], dtype=object),
        city_lat=np.array(city_cols["lat"], dtype=np.float64),
        city_lon=np.array(city_cols["lon"], dtype=np.float64),
        city_population=np.array(city_cols["pop"], dtype=np.float64),
        city_zip_prefix=np.array(city_cols["zip"], dtype=object),
        city_admin1=np.array(city_cols["a1"], dtype=object),
    )
