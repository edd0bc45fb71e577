"""The sandbox's contacts: deterministic synthetic businesses, generated once, kept as Parquet.

Shipped data only fills small pools (surnames and streets drawn once from Faker, GeoNames
cities: ``data/README.md``); every row is then assembled with numpy and pyarrow (``take`` on
pools, fixed-width byte matrices for ids, phones and zipcodes, list arrays from offsets), so
200,000 contacts take seconds and 5,000,000 fit on a laptop.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from scoutframe.sandbox.atomic import atomic_write
from scoutframe.sandbox.catalog import (
    COVERAGE_FIELDS,
    FIRM_PROFESSIONS,
    PLACE_NAMED_PROFESSIONS,
    LanguageWords,
    NamePool,
    language_of,
    language_words,
    load_catalog,
    name_pool,
    slug,
)
from scoutframe.sandbox.columns import CONTACT_COLUMNS, per_column
from scoutframe.sandbox.geo import COUNTRIES, CountryProfile, build_geography

__all__ = [
    "CATEGORY_SCHEMA",
    "CONTACT_COLUMNS",
    "CONTACT_SCHEMA",
    "COUNTRY_SCHEMA",
    "GENERATOR_VERSION",
    "LOCATION_SCHEMA",
    "REFERENCE_TIME",
    "Dataset",
    "generate_new_contacts",
    "load_or_generate",
    "make_contacts",
]

#: Bumped whenever the generated data changes for a given seed; part of file names.
GENERATOR_VERSION = 3
#: Contacts are collected during the two years before this instant.
REFERENCE_TIME = datetime(2026, 11, 1, tzinfo=UTC)
_HISTORY = timedelta(days=730)

_TS = pa.timestamp("us", tz="UTC")
_STRINGS = pa.list_(pa.string())
#: The contract columns (strings unless said otherwise), then the ids the index filters on.
CONTACT_SCHEMA = pa.schema(
    [
        *per_column(
            {
                "email": _STRINGS,
                "phone": _STRINGS,
                "categories": _STRINGS,
                "rating": pa.float64(),
                "review_count": pa.int32(),
                "latitude": pa.float64(),
                "longitude": pa.float64(),
                "collected_at": _TS,
            },
            pa.string(),
        ).items(),
        ("level1_id", pa.int32()),
        ("level2_id", pa.int32()),
        ("level3_id", pa.int32()),
        ("category_ids", pa.list_(pa.int32())),
        ("main_category_id", pa.int32()),
    ]
)

COUNTRY_SCHEMA = pa.schema([("code", pa.string()), ("name", pa.string())])
LOCATION_SCHEMA = pa.schema(
    [
        ("id", pa.int32()),
        ("name", pa.string()),
        ("type", pa.string()),
        ("country", pa.string()),
        ("parent_id", pa.int32()),
        ("latitude", pa.float64()),
        ("longitude", pa.float64()),
    ]
)
CATEGORY_SCHEMA = pa.schema(
    [
        ("id", pa.int32()),
        ("name", pa.string()),
        ("gcid", pa.string()),
        ("profession", pa.string()),
    ]
)

# URL-safe base64 alphabet in ASCII order, so numeric order of the digits is string order.
_ID_ALPHABET = np.frombuffer(
    b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz", dtype=np.uint8
)
_ID_PREFIX = b"ChIJ"
_ID_DIGITS = 23
_ID_SORTED_DIGITS = 10  # 60 bits carried by a uint64 sort key; the other 13 are random


@dataclass(frozen=True)
class Dataset:
    """The sandbox's data: contacts plus reference tables.

    Attributes
    ----------
    contacts : pyarrow.Table
        Sorted by ``place_id``; the 20 contract columns then ``level1_id``, ``level2_id``,
        ``level3_id``, ``category_ids`` and ``main_category_id``.
    countries : pyarrow.Table
        ``code``, ``name``.
    locations : pyarrow.Table
        ``id``, ``name``, ``type``, ``country``, ``parent_id``, ``latitude``, ``longitude``.
    categories : pyarrow.Table
        ``id``, ``name``, ``gcid``, ``profession``.
    """

    contacts: pa.Table
    countries: pa.Table
    locations: pa.Table
    categories: pa.Table

    def __len__(self) -> int:
        return int(self.contacts.num_rows)

    @functools.cached_property
    def country_codes(self) -> frozenset[str]:
        """Known country codes."""
        return frozenset(str(c) for c in self.countries.column("code").to_pylist())

    @functools.cached_property
    def category_ids(self) -> frozenset[int]:
        """Known category ids."""
        return frozenset(int(i) for i in self.categories.column("id").to_pylist())

    @functools.cached_property
    def location_ids(self) -> frozenset[int]:
        """Known location ids, all levels."""
        return frozenset(int(i) for i in self.locations.column("id").to_pylist())

    @property
    def latest_collected_at(self) -> datetime:
        """The newest ``collected_at`` of any contact (``REFERENCE_TIME`` when empty)."""
        value = pc.max(self.contacts.column("collected_at")).as_py()
        return value if value is not None else REFERENCE_TIME


# --------------------------------------------------------------------------- vector helpers


def _strings_from_matrix(matrix: npt.NDArray[np.uint8]) -> pa.Array:
    """Turn an ``(n, width)`` byte matrix of ASCII into a string array without a loop."""
    n, width = matrix.shape
    offsets = np.arange(n + 1, dtype=np.int32 if n * width < 2**31 else np.int64) * width
    data = np.ascontiguousarray(matrix).tobytes()
    kind = pa.string() if offsets.dtype == np.int32 else pa.large_string()
    arr = pa.Array.from_buffers(kind, n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    return arr if kind == pa.string() else arr.cast(pa.string())


def _fill_pattern(pattern: str, n: int, rng: np.random.Generator) -> npt.NDArray[np.uint8]:
    """Byte matrix of ``pattern`` with ``#`` a digit, ``N`` a digit 2-9, ``A`` a capital."""
    raw = pattern.encode("ascii")
    out = np.empty((n, len(raw)), dtype=np.uint8)
    for j, ch in enumerate(raw):
        if ch == ord("#"):
            out[:, j] = rng.integers(48, 58, n, dtype=np.uint8)
        elif ch == ord("N"):
            out[:, j] = rng.integers(50, 58, n, dtype=np.uint8)
        elif ch == ord("A"):
            out[:, j] = rng.integers(65, 91, n, dtype=np.uint8)
        else:
            out[:, j] = ch
    return out


def _take(values: pa.Array, rng: np.random.Generator, n: int) -> pa.Array:
    return values.take(pa.array(rng.integers(0, len(values), n)))


def _join(*parts: pa.Array | str) -> pa.Array:
    """Concatenate string arrays and literals element-wise."""
    return pc.binary_join_element_wise(*parts, "")


def _choose(options: Sequence[pa.Array], which: npt.NDArray[np.int64]) -> pa.Array:
    """Row i takes ``options[which[i]][i]``."""
    n = len(which)
    stacked = pa.concat_arrays([o.cast(pa.string()) for o in options])
    return stacked.take(pa.array(which * n + np.arange(n)))


def _lists(values: pa.Array, counts: npt.NDArray[np.int64]) -> pa.Array:
    offsets = np.zeros(len(counts) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def _blank_unless(mask: npt.NDArray[np.bool_], values: pa.Array) -> pa.Array:
    return pc.if_else(pa.array(mask), values, "")


# --------------------------------------------------------------------------- place ids


def _place_id_keys(n: int, rng: np.random.Generator) -> npt.NDArray[np.uint64]:
    """Sorted, unique 60-bit keys: the leading digits of the place ids."""
    keys = np.unique(rng.integers(0, 2**60, n, dtype=np.uint64))
    while len(keys) < n:  # a collision in 2**60: practically never, but stay exact
        keys = np.unique(
            np.concatenate([keys, rng.integers(0, 2**60, n - len(keys), dtype=np.uint64)])
        )
    return keys


def _place_ids(keys: npt.NDArray[np.uint64], rng: np.random.Generator) -> pa.Array:
    n = len(keys)
    digits = np.empty((n, _ID_DIGITS), dtype=np.uint8)
    for j in range(_ID_SORTED_DIGITS):
        shift = np.uint64(6 * (_ID_SORTED_DIGITS - 1 - j))
        digits[:, j] = ((keys >> shift) & np.uint64(63)).astype(np.uint8)
    digits[:, _ID_SORTED_DIGITS:] = rng.integers(
        0, 64, (n, _ID_DIGITS - _ID_SORTED_DIGITS), dtype=np.uint8
    )
    prefix = np.broadcast_to(np.frombuffer(_ID_PREFIX, dtype=np.uint8), (n, len(_ID_PREFIX)))
    return _strings_from_matrix(np.hstack([prefix, _ID_ALPHABET[digits]]))


# --------------------------------------------------------------------------- rows


@functools.cache
def _country_cities(code: str) -> _CountryCities:
    """Cities of a country with their sampling weight, locale, zipcode and area codes."""
    geo = build_geography()
    profile = COUNTRIES[code]
    where = np.flatnonzero(geo.city_country == code)
    prefixes = geo.city_zip_prefix[where]
    width = len(prefixes[0]) if len(prefixes) else 0
    pattern = profile.zip_pattern.replace("{z}", "z" * width)
    rng = np.random.default_rng([sum(map(ord, code)), 7])
    bases = _fill_pattern(pattern.replace("z", "#"), len(where), rng)
    if "z" in pattern:
        start = pattern.index("z")
        raw = np.frombuffer("".join(prefixes).encode("ascii"), dtype=np.uint8)
        bases[:, start : start + width] = raw.reshape(len(where), width)
    regions = dict(profile.regional_locales)
    level1_names = _names().location_name(geo.city_level1[where]).to_pylist()
    locales = np.array(
        [regions.get(str(name), profile.locale) for name in level1_names], dtype=object
    )
    weight = geo.city_population[where] ** 0.85
    # Area codes: a flat list with each city's slice of it.
    table = _phone_prefixes().get(code, {})
    choices = [table.get(str(a1), table.get("*", [""])) for a1 in geo.city_admin1[where]]
    counts = np.array([len(c) for c in choices], dtype=np.int64)
    flat = [p for c in choices for p in c]
    area_width = len(flat[0]) if flat else 0
    area = (
        np.frombuffer("".join(flat).encode("ascii"), dtype=np.uint8).reshape(len(flat), area_width)
        if area_width
        else np.zeros((len(flat), 0), dtype=np.uint8)
    )
    return _CountryCities(
        index=where,
        p=weight / weight.sum(),
        locale=locales,
        zip_bases=bases,
        zip_digit_cols=[j for j, ch in enumerate(pattern) if ch == "#"],
        area_codes=area,
        area_start=np.concatenate([[0], np.cumsum(counts)[:-1]]),
        area_count=counts,
    )


@functools.cache
def _phone_prefixes() -> dict[str, dict[str, list[str]]]:
    path = resources.files("scoutframe.sandbox") / "data" / "phone_prefixes.json"
    data: dict[str, dict[str, list[str]]] = json.loads(path.read_text("utf-8"))
    return data


@dataclass(frozen=True)
class _CountryCities:
    index: npt.NDArray[np.int64]  # positions in the Geography city arrays
    p: npt.NDArray[np.float64]
    locale: npt.NDArray[np.object_]
    zip_bases: npt.NDArray[np.uint8]
    zip_digit_cols: list[int]
    area_codes: npt.NDArray[np.uint8]  # (k, width) byte matrix
    area_start: npt.NDArray[np.int64]  # per city: its first row in area_codes
    area_count: npt.NDArray[np.int64]

    def phones(
        self, pattern: str, local: npt.NDArray[np.int64], rng: np.random.Generator
    ) -> pa.Array:
        """Phone numbers for rows in cities ``local``, ``{a}`` being the area's codes."""
        width = self.area_codes.shape[1]
        filled = pattern.replace("{a}", "a" * width)
        out = _fill_pattern(filled.replace("a", "#"), len(local), rng)
        if "a" in filled and width:
            pick = (
                self.area_start[local]
                + rng.integers(0, 1 << 30, len(local)) % (self.area_count[local])
            )
            start = filled.index("a")
            out[:, start : start + width] = self.area_codes[pick]
        return _strings_from_matrix(out)


_TOKEN = re.compile(r"\{(S2|S|F|W|C|A)\}")


def _render(template: str, tokens: dict[str, pa.Array]) -> pa.Array:
    """Fill a name template such as ``"{W} de {C}"`` from per-row arrays."""
    parts: list[pa.Array | str] = []
    for k, piece in enumerate(_TOKEN.split(template)):
        if k % 2:
            parts.append(tokens[piece])
        elif piece:
            parts.append(piece)
    return _join(*parts) if len(parts) > 1 else pc.cast(parts[0], pa.string())


def _pick_template(
    rng: np.random.Generator, lang: LanguageWords, kind: npt.NDArray[np.int8]
) -> npt.NDArray[np.int64]:
    """Draw a name template per row; ``kind`` 0 plain business, 1 firm, 2 public place."""
    u = rng.random(len(kind))
    last = len(lang.templates) - 1
    out = np.zeros(len(kind), dtype=np.int64)
    for k, p in enumerate((lang.weights, lang.firm_weights, lang.place_weights)):
        rows = kind == k
        out[rows] = np.minimum(np.searchsorted(np.cumsum(p), u[rows], side="right"), last)
    return out


# The helpers below each draw from the block's generator in turn: their order in `_block` is
# part of the dataset (the same seed must give the same bytes).
_FIELD = {f: i for i, f in enumerate(COVERAGE_FIELDS)}


def _categories(
    profile: CountryProfile, lang: LanguageWords, n: int, rng: np.random.Generator
) -> tuple[npt.NDArray[np.int64], pa.Array, pa.Array]:
    """Draw a main category per row, then up to two more from the same profession.

    Returns the main categories (catalog positions), the category names and ids as lists.
    """
    catalog, names = load_catalog(), _names()
    weight = catalog.weight
    if profile.local_categories_only:  # no English category words inside Japanese names
        weight = np.where(lang.is_local, weight, 0.0)
    main = rng.choice(len(weight), n, p=weight / weight.sum())
    extra_count = rng.choice(3, n, p=[0.5, 0.33, 0.17])
    members, sizes = names.profession_members, names.profession_sizes
    prof = catalog.profession_index[main]
    extra = members[prof[:, None], rng.integers(0, 1 << 30, (n, 2)) % sizes[prof][:, None]]
    cat_matrix = np.column_stack([main, extra])
    valid = np.ones((n, 3), dtype=bool)
    valid[:, 1] = (extra_count >= 1) & (extra[:, 0] != main)
    valid[:, 2] = (extra_count >= 2) & (extra[:, 1] != main) & (extra[:, 1] != extra[:, 0])
    flat = cat_matrix[valid]
    per_row = valid.sum(axis=1)
    categories = _lists(names.category_names.take(pa.array(flat)), per_row)
    category_ids = _lists(pa.array(catalog.ids[flat], pa.int32()), per_row)
    return main, categories, category_ids


def _contact_methods(
    profile: CountryProfile, main: npt.NDArray[np.int64], rng: np.random.Generator
) -> npt.NDArray[np.bool_]:
    """Which contact methods each business shows: ``(n, len(COVERAGE_FIELDS))`` booleans."""
    cov = load_catalog().coverage[main].copy()
    cov[:, _FIELD["email"]] *= profile.email_rate
    cov[:, _FIELD["website"]] *= profile.website_rate
    cov[:, _FIELD["instagram"]] *= profile.social_rate
    cov[:, _FIELD["facebook"]] *= profile.social_rate
    has: npt.NDArray[np.bool_] = rng.random((len(main), len(COVERAGE_FIELDS))) < np.clip(
        cov, 0.0, 0.99
    )
    return has


@dataclass(frozen=True)
class _Named:
    """Business names and the people and words they were made from."""

    name: pa.Array
    surname: npt.NDArray[np.int64]  # positions in the locale's name pool
    first_name: npt.NDArray[np.int64]
    city_name: pa.Array


def _business_names(
    pool: NamePool,
    lang: LanguageWords,
    main: npt.NDArray[np.int64],
    city: npt.NDArray[np.int64],
    rng: np.random.Generator,
) -> _Named:
    """Names from the language's templates ("{W} {S}" → "Plomberie Dupont")."""
    names, n = _names(), len(main)
    surname_i = rng.integers(0, len(pool.surnames), n)
    first_i = rng.integers(0, len(pool.first_names), n)
    city_name = names.city_names.take(pa.array(city))
    tokens = {
        "S": pool.surnames.take(pa.array(surname_i)),
        "S2": _take(pool.surnames, rng, n),
        "F": pool.first_names.take(pa.array(first_i)),
        "W": lang.words.take(pa.array(main)),
        "C": city_name,
        "A": _take(lang.adjectives, rng, n),
    }
    template = _pick_template(rng, lang, names.name_kind[main])
    name = _choose([_render(t, tokens) for t in lang.templates], template)
    return _Named(name, surname_i, first_i, city_name)


def _web_identity(
    named: _Named,
    pool: NamePool,
    lang: LanguageWords,
    tld: str,
    main: npt.NDArray[np.int64],
    city: npt.NDArray[np.int64],
    rng: np.random.Generator,
) -> dict[str, pa.Array]:
    """One domain per business, reused by website, handles and e-mail.

    Returns ``domain``, ``website``, ``instagram`` and ``facebook`` arrays.
    """
    n = len(main)
    s_slug = pool.surname_slugs.take(pa.array(named.surname))
    w_slug = lang.word_slugs.take(pa.array(main))
    c_slug = _names().city_slugs.take(pa.array(city))
    # Domains follow the name ("Plomberie Dupont" → plomberiedupont.fr) when it has enough
    # Latin letters; otherwise (Japanese names) surname + romanised business word.
    ascii_name = pc.utf8_lower(pc.utf8_normalize(named.name, form="NFKD"))
    joined = pc.replace_substring_regex(ascii_name, r"[^a-z0-9]+", "")
    dashed = pc.utf8_trim(pc.replace_substring_regex(ascii_name, r"[^a-z0-9]+", "-"), "-")
    fallback = _join(s_slug, w_slug)
    length = pc.utf8_length(joined)
    usable = pc.and_(pc.greater_equal(length, 4), pc.less_equal(length, 26))
    style = rng.choice(3, n, p=[0.55, 0.3, 0.15])
    domain_base = pc.if_else(
        usable, _choose([joined, dashed, _join(s_slug, "-", w_slug)], style), fallback
    )
    domain = _join(domain_base, "." + tld)
    website = _choose(
        [
            _join("https://www.", domain, "/"),
            _join("https://", domain),
            _join("http://www.", domain, "/"),
        ],
        rng.choice(3, n, p=[0.6, 0.3, 0.1]),
    )
    handle = _choose(
        [
            _join(s_slug, "_", w_slug),
            pc.replace_substring(domain_base, "-", "_"),
            _join(w_slug, c_slug),
        ],
        rng.choice(3, n, p=[0.4, 0.4, 0.2]),
    )
    return {
        "domain": domain,
        "website": website,
        "instagram": _join("https://www.instagram.com/", handle, "/"),
        "facebook": _join("https://www.facebook.com/", handle),
    }


def _emails(
    named: _Named,
    pool: NamePool,
    domain: pa.Array,
    has: npt.NDArray[np.bool_],
    rng: np.random.Generator,
) -> pa.Array:
    """Up to two addresses: one at the business's domain, one at a free mailbox."""
    n = len(has)
    names = _names()
    s_slug = pool.surname_slugs.take(pa.array(named.surname))
    f_slug = pool.first_name_slugs.take(pa.array(named.first_name))
    user = _choose(
        [
            pa.array(["info"] * n),
            pa.array(["contact"] * n),
            _join(f_slug),
            _join(f_slug, ".", s_slug),
        ],
        rng.choice(4, n, p=[0.4, 0.25, 0.15, 0.2]),
    )
    email1 = _join(user, "@", domain)
    free = names.free_mail.take(pa.array(rng.integers(0, len(names.free_mail), n)))
    email2 = _join(s_slug, _strings_from_matrix(_fill_pattern("##", n, rng)), "@", free)
    email_count = np.where(has[:, _FIELD["email"]], 1 + (rng.random(n) < 0.12), 0)
    # Without a website the address is usually a free mailbox.
    mailbox = np.where(has[:, _FIELD["website"]], 0, 1)
    return _interleave(
        _choose([email1, email2], mailbox), _choose([email2, email1], mailbox), email_count
    )


def _phones(
    profile: CountryProfile,
    cities: _CountryCities,
    local: npt.NDArray[np.int64],
    has: npt.NDArray[np.bool_],
    rng: np.random.Generator,
) -> pa.Array:
    """Up to two numbers per business, national or international style."""
    n = len(local)
    two = np.repeat(local, 2)
    phone_national = cities.phones(profile.phone_national, two, rng)
    phone_intl = cities.phones(profile.phone_international, two, rng)
    style = np.repeat(rng.random(n) < 0.5, 2).astype(np.int64)
    phone_all = _choose([phone_national, phone_intl], style)
    phone_count = np.where(has[:, _FIELD["phone"]], 1 + (rng.random(n) < 0.15), 0)
    keep = (np.arange(2)[None, :] < phone_count[:, None]).ravel()
    return _lists(phone_all.filter(pa.array(keep)), phone_count)


def _addresses(
    profile: CountryProfile, locale: str, pool: NamePool, n: int, rng: np.random.Generator
) -> pa.Array:
    """Street addresses in the country's order ("12 Main Street", "Hauptstraße 12")."""
    street = _take(pool.streets, rng, n)
    number = pa.array(rng.integers(1, 250, n).astype(str))
    if locale == "ja_JP":
        return _join(street, number, "-", pa.array(rng.integers(1, 30, n).astype(str)))
    if profile.address_order != "number_street":
        return _join(street, " ", number)
    address = _join(number, " ", street)
    if profile.code == "US":  # some offices sit in a suite: "12 Main Street, Suite 210"
        suite = _join(", Suite ", pa.array(rng.integers(100, 999, n).astype(str)))
        address = pc.if_else(pa.array(rng.random(n) < 0.08), _join(address, suite), address)
    return address


def _zipcodes(
    cities: _CountryCities,
    local: npt.NDArray[np.int64],
    pop: npt.NDArray[Any],
    rng: np.random.Generator,
) -> pa.Array:
    """Return each row's postcode; big cities span several (the last digit or two vary)."""
    zips = cities.zip_bases[local]
    zip_digit_cols = cities.zip_digit_cols
    for threshold, col in ((100_000, -1), (500_000, -2)):
        big = pop > threshold
        if len(zip_digit_cols) >= 3:
            zips[big, zip_digit_cols[col]] = rng.integers(48, 58, int(big.sum()), np.uint8)
    return _strings_from_matrix(zips)


def _coordinates(
    city: npt.NDArray[np.int64], pop: npt.NDArray[Any], rng: np.random.Generator
) -> tuple[pa.Array, pa.Array]:
    """Latitude and longitude scattered around the city centre, wider for big cities."""
    geo, n = build_geography(), len(city)
    spread_km = np.clip(1.0 + 6.0 * np.sqrt(pop / 1e6), 1.0, 12.0)
    lat0 = geo.city_lat[city]
    lat = lat0 + rng.normal(0.0, 1.0, n) * spread_km / 111.0
    lon = geo.city_lon[city] + rng.normal(0.0, 1.0, n) * spread_km / (
        111.0 * np.maximum(np.cos(np.radians(lat0)), 0.2)
    )
    return pa.array(lat), pa.array(lon)


def _ratings(has: npt.NDArray[np.bool_], rng: np.random.Generator) -> tuple[pa.Array, pa.Array]:
    """Ratings (null when unrated) and review counts."""
    n = len(has)
    rated = has[:, _FIELD["rating"]]
    reviews = np.where(rated, np.ceil(rng.lognormal(3.2, 1.3, n)), 0).astype(np.int32)
    # A business's true standing, seen through the noise of few reviews: places with a
    # handful of reviews show 5.0 or 1.0, busy ones cluster around 4.0-4.7.
    true = np.clip(rng.normal(4.3, 0.45, n), 1.0, 5.0)
    seen = true + rng.normal(0.0, 1.0, n) * 1.1 / np.sqrt(np.maximum(reviews, 1))
    rating = np.clip(np.round(seen, 1), 1.0, 5.0)
    rating = np.where(reviews == 1, np.clip(np.round(seen), 1.0, 5.0), rating)
    return pa.array(rating, mask=~rated), pa.array(reviews, pa.int32())


def _block(
    code: str,
    locale: str,
    cities: _CountryCities,
    local: npt.NDArray[np.int64],
    rng: np.random.Generator,
) -> dict[str, pa.Array]:
    """All columns (but place_id and collected_at) for contacts of one country and locale.

    ``local`` holds each row's city as a position in ``cities``.
    """
    city = cities.index[local]
    geo, names = build_geography(), _names()
    profile = COUNTRIES[code]
    pool = name_pool(locale)
    lang = language_words(language_of(locale))
    n = len(city)
    pop = geo.city_population[city]

    main, categories, category_ids = _categories(profile, lang, n, rng)
    has = _contact_methods(profile, main, rng)
    named = _business_names(pool, lang, main, city, rng)
    web = _web_identity(named, pool, lang, profile.tld, main, city, rng)
    emails = _emails(named, pool, web["domain"], has, rng)
    phones = _phones(profile, cities, local, has, rng)
    address = _addresses(profile, locale, pool, n, rng)
    zipcode = _zipcodes(cities, local, pop, rng)
    latitude, longitude = _coordinates(city, pop, rng)
    rating, review_count = _ratings(has, rng)
    level1 = geo.city_level1[city]
    level2 = geo.city_level2[city]
    return {
        "name": named.name,
        "email": emails,
        "phone": phones,
        "website": _blank_unless(has[:, _FIELD["website"]], web["website"]),
        "instagram": _blank_unless(has[:, _FIELD["instagram"]], web["instagram"]),
        "facebook": _blank_unless(has[:, _FIELD["facebook"]], web["facebook"]),
        "address": address,
        "city": named.city_name,
        "zipcode": zipcode,
        "level1_location": names.location_name(level1),
        "level2_location": names.location_name(level2),
        "level3_location": named.city_name,
        "country": pa.array(np.full(n, code, dtype=object), pa.string()),
        "categories": categories,
        "rating": rating,
        "review_count": review_count,
        "latitude": latitude,
        "longitude": longitude,
        "level1_id": pa.array(level1, pa.int32()),
        "level2_id": pa.array(level2, pa.int32()),
        "level3_id": pa.array(geo.city_id[city], pa.int32()),
        "category_ids": category_ids,
        "main_category_id": pa.array(load_catalog().ids[main], pa.int32()),
    }


def _interleave(first: pa.Array, second: pa.Array, counts: npt.NDArray[np.int64]) -> pa.Array:
    """Build a list per row of ``first[i]`` then ``second[i]``, cut to ``counts[i]`` items."""
    n = len(counts)
    both = pa.concat_arrays([first, second]).take(
        pa.array(np.column_stack([np.arange(n), np.arange(n) + n]).ravel())
    )
    keep = (np.arange(2)[None, :] < counts[:, None]).ravel()
    return _lists(both.filter(pa.array(keep)), counts)


@dataclass(frozen=True)
class _Names:
    """Name arrays shared by all countries, indexed by category or city position."""

    category_names: pa.Array
    name_kind: npt.NDArray[np.int8]  # per category: 0 business, 1 firm, 2 public place
    profession_members: npt.NDArray[np.int64]
    profession_sizes: npt.NDArray[np.int64]
    city_names: pa.Array
    city_slugs: pa.Array
    free_mail: pa.Array
    location_ids: npt.NDArray[np.int32]  # sorted
    location_names: pa.Array  # aligned with location_ids

    def location_name(self, ids: npt.NDArray[np.int32]) -> pa.Array:
        return self.location_names.take(pa.array(np.searchsorted(self.location_ids, ids)))


@functools.cache
def _names() -> _Names:
    geo, catalog = build_geography(), load_catalog()
    members = [
        np.flatnonzero(catalog.profession_index == p) for p in range(len(catalog.professions))
    ]
    width = max(len(m) for m in members)
    matrix = np.zeros((len(members), width), dtype=np.int64)
    for i, m in enumerate(members):
        matrix[i, : len(m)] = m
    kind = np.array(
        [
            1 if p in FIRM_PROFESSIONS else 2 if p in PLACE_NAMED_PROFESSIONS else 0
            for p in catalog.professions
        ],
        dtype=np.int8,
    )
    order = np.argsort(geo.locations.column("id").to_numpy())
    return _Names(
        category_names=pa.array(catalog.names, pa.string()),
        name_kind=kind[catalog.profession_index],
        profession_members=matrix,
        profession_sizes=np.array([len(m) for m in members], dtype=np.int64),
        city_names=pa.array(list(geo.city_name), pa.string()),
        city_slugs=pa.array([slug(c) or "city" for c in geo.city_name], pa.string()),
        free_mail=pa.array(
            ["gmail.com", "outlook.com", "yahoo.com", "hotmail.com", "icloud.com"], pa.string()
        ),
        location_ids=geo.locations.column("id").to_numpy()[order],
        location_names=geo.locations.column("name").combine_chunks().take(pa.array(order)),
    )


# --------------------------------------------------------------------------- whole tables


def make_contacts(
    n: int,
    *,
    seed: int,
    start: datetime | None = None,
    end: datetime | None = None,
    exclude_place_ids: pa.Array | pa.ChunkedArray | None = None,
    stream: int = 0,
) -> pa.Table:
    """Generate ``n`` contacts, sorted by ``place_id``.

    Parameters
    ----------
    n
        Number of contacts.
    seed
        Seed: the same seed, ``n`` and ``stream`` give the same table.
    start, end
        ``collected_at`` is spread uniformly over ``[start, end]``; by default the two years
        before ``REFERENCE_TIME``. Pass ``start == end`` for a fixed instant.
    exclude_place_ids
        Place ids that must not be produced (existing contacts).
    stream
        Separates independent draws made with one seed (0: the base dataset).

    Returns
    -------
    pyarrow.Table
        Contacts with ``CONTACT_SCHEMA``.
    """
    rng = np.random.default_rng([seed, stream, n])
    keys = _place_id_keys(n, rng)
    place_id = _place_ids(keys, rng)
    if exclude_place_ids is not None and n:
        clash = pc.is_in(place_id, value_set=exclude_place_ids)
        if pc.any(clash).as_py():
            # Redraw from another stream; a clash in 2**138 ids is only a theoretical worry.
            return make_contacts(
                n,
                seed=seed,
                start=start,
                end=end,
                exclude_place_ids=exclude_place_ids,
                stream=stream + 1000,
            )

    codes = sorted(COUNTRIES)
    weights = np.array([COUNTRIES[c].weight for c in codes])
    country_of_row = rng.choice(len(codes), n, p=weights / weights.sum())

    def country(k: int) -> list[tuple[pa.Table, npt.NDArray[np.int64]]]:
        code = codes[k]
        idx = np.flatnonzero(country_of_row == k)
        if not len(idx):
            return []
        block_rng = np.random.default_rng([seed, stream, n, k])
        cities = _country_cities(code)
        local = block_rng.choice(len(cities.index), len(idx), p=cities.p)
        out = []
        # Regions speaking another language (Quebec, Wallonia...) get their own names.
        for locale in sorted(set(cities.locale[local])):
            part = cities.locale[local] == locale
            out.append(
                (pa.table(_block(code, str(locale), cities, local[part], block_rng)), idx[part])
            )
        return out

    _names()  # build shared caches once, before the threads
    # Countries are independent (each has its own random stream), so threads change
    # nothing in the result; numpy and Arrow kernels release the GIL.
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        done = [part for parts in pool.map(country, range(len(codes))) for part in parts]
    blocks = [table for table, _ in done]
    rows = [idx for _, idx in done]
    if blocks:
        body = pa.concat_tables(blocks)
        order = np.empty(n, dtype=np.int64)
        order[np.concatenate(rows)] = np.arange(n)
        body = body.take(pa.array(order))
    else:
        body = pa.table(
            {
                f.name: pa.array([], f.type)
                for f in CONTACT_SCHEMA
                if f.name not in ("place_id", "collected_at")
            }
        )

    end = end or REFERENCE_TIME
    start = start or end - _HISTORY
    start_us = int(start.timestamp()) * 1_000_000
    span_s = max(0, int((end - start).total_seconds()))
    collected = start_us + rng.integers(0, span_s + 1, n) * 1_000_000
    columns = {"place_id": place_id, "collected_at": pa.array(collected, _TS)}
    return pa.table(
        [columns[f.name] if f.name in columns else body.column(f.name) for f in CONTACT_SCHEMA],
        schema=CONTACT_SCHEMA,
    )


def generate_new_contacts(
    dataset: Dataset, n: int, *, seed: int, collected_at: datetime
) -> pa.Table:
    """Generate ``n`` new businesses for an existing dataset (the admin's "add contacts").

    Parameters
    ----------
    dataset
        The dataset whose place ids must not be reused.
    n
        Number of contacts.
    seed
        Seed of this batch; use a different one for each batch.
    collected_at
        Collection time given to every new contact (aware datetime).

    Returns
    -------
    pyarrow.Table
        ``n`` contacts with ``CONTACT_SCHEMA``, sorted by ``place_id``, none of whose
        ``place_id`` occurs in ``dataset.contacts``.
    """
    return make_contacts(
        n,
        seed=seed,
        start=collected_at,
        end=collected_at,
        exclude_place_ids=dataset.contacts.column("place_id"),
        stream=1,
    )


# --------------------------------------------------------------------------- persistence


# Repetitive columns are dictionary-encoded; unique ones (names, urls, ids) are not, and the
# random place ids are not compressed either: about twice as fast to read back.
_DICTIONARY_COLUMNS = (
    "city",
    "zipcode",
    "level1_location",
    "level2_location",
    "level3_location",
    "country",
    "categories",
    "rating",
    "review_count",
    "level1_id",
    "level2_id",
    "level3_id",
    "category_ids",
    "main_category_id",
    "code",
    "name",
    "type",
    "profession",
    "gcid",
)


def _write_atomic(table: pa.Table, path: Path) -> None:
    """Write ``table`` as Parquet through a temporary file, so readers never see half a file."""
    unique = {"place_id", "name"} if "place_id" in table.column_names else set()
    dictionary = [c for c in table.column_names if c in _DICTIONARY_COLUMNS and c not in unique]
    compression = {c: "none" if c == "place_id" else "zstd" for c in table.column_names}
    with atomic_write(path) as tmp:
        pq.write_table(
            table,
            str(tmp),
            compression=compression,
            use_dictionary=dictionary,
            row_group_size=1 << 20,
        )


_VERSIONED = re.compile(r"(?P<base>.+)-v(?P<version>\d+)\.(?:parquet|arrow)")


def _remove_stale_versions(path: Path) -> None:
    """Delete the other generator versions of the file just written (Parquet and Arrow).

    ``contacts-5000000-s0-v3.parquet`` replaces ``contacts-5000000-s0-v1.parquet`` and
    ``-v2.arrow``: nothing reads them any more and they can be gigabytes.
    """
    current = _VERSIONED.fullmatch(path.name)
    if current is None:
        return
    for sibling in path.parent.glob(f"{glob.escape(current['base'])}-v*"):
        other = _VERSIONED.fullmatch(sibling.name)
        if (
            other is not None
            and other["base"] == current["base"]
            and other["version"] != current["version"]
        ):
            sibling.unlink(missing_ok=True)


def _read_or_build(
    path: Path, build: Callable[[], pa.Table], schema: pa.Schema, rows: int | None = None
) -> pa.Table:
    """Read ``path`` if it holds a table of ``schema``; otherwise build and write it."""
    if path.exists():
        try:
            table = pq.read_table(path, memory_map=True)
        except (pa.ArrowInvalid, OSError):
            table = None  # unreadable (a foreign or damaged file): build it again
        if (
            table is not None
            and table.schema.equals(schema)
            and (rows is None or table.num_rows == rows)
        ):
            return table
    table = build()
    _write_atomic(table, path)
    _remove_stale_versions(path)
    return table


# From this size on, contacts also get an uncompressed Arrow copy that a restart maps into
# memory in milliseconds (decoding 5,000,000 rows of Parquet takes seconds on two cores).
_MAPPED_COPY_MIN_ROWS = 1_000_000


def _read_mapped(path: Path, schema: pa.Schema, rows: int) -> pa.Table | None:
    try:
        table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    except (pa.ArrowInvalid, OSError):
        return None
    return table if table.schema.equals(schema) and table.num_rows == rows else None


def _write_mapped(table: pa.Table, path: Path) -> None:
    with (
        atomic_write(path) as tmp,
        pa.OSFile(str(tmp), "wb") as sink,
        pa.ipc.new_file(sink, table.schema) as writer,
    ):
        writer.write_table(table, max_chunksize=1 << 20)
    _remove_stale_versions(path)


def _load_contacts(path: Path, contacts: int, seed: int) -> pa.Table:
    """Load the contacts of ``path`` (Parquet), through its mapped Arrow copy when large."""
    mapped = path.with_suffix(".arrow")
    large = contacts >= _MAPPED_COPY_MIN_ROWS
    if large and path.exists():
        table = _read_mapped(mapped, CONTACT_SCHEMA, contacts) if mapped.exists() else None
        if table is not None:
            return table
    table = _read_or_build(
        path, functools.partial(make_contacts, contacts, seed=seed), CONTACT_SCHEMA, contacts
    )
    if large:
        _write_mapped(table, mapped)
    return table


def load_or_generate(data_dir: Path, *, contacts: int = 200_000, seed: int = 0) -> Dataset:
    """Load the dataset for ``(contacts, seed)`` from ``data_dir``, generating it if missing.

    Parameters
    ----------
    data_dir
        Directory of the Parquet files (created if needed). From 1,000,000 contacts on, an
        uncompressed Arrow copy (``.arrow``) sits beside the contacts file and is
        memory-mapped on later loads.
    contacts
        Number of contacts.
    seed
        Generation seed.

    Returns
    -------
    Dataset
        Contacts and reference tables.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    v = GENERATOR_VERSION
    # Reference tables are built only when missing: a restart reads files and nothing else.
    countries = _read_or_build(
        data_dir / f"countries-v{v}.parquet", lambda: build_geography().countries, COUNTRY_SCHEMA
    )
    locations = _read_or_build(
        data_dir / f"locations-v{v}.parquet", lambda: build_geography().locations, LOCATION_SCHEMA
    )
    categories = _read_or_build(
        data_dir / f"categories-v{v}.parquet", lambda: load_catalog().categories, CATEGORY_SCHEMA
    )
    table = _load_contacts(data_dir / f"contacts-{contacts}-s{seed}-v{v}.parquet", contacts, seed)
    return Dataset(contacts=table, countries=countries, locations=locations, categories=categories)
