"""Write the sandbox's word pools and country names: ``names.json.gz`` and ``countries.json``.

Sources:

- ``scoutframe/sandbox/data/names.json.gz``: surnames, first names and street names from
  the locale word lists of Faker (https://github.com/joke2k/faker, MIT licence, "Copyright
  (c) 2012 Daniele Faraglia") version 40.63.0, drawn with a fixed seed per locale;
- ``scoutframe/sandbox/data/countries.json``: the English names of the sandbox's countries
  from pycountry (https://github.com/pycountry/pycountry) version 26.2.16, whose ISO 3166-1
  data is Debian's iso-codes (LGPL 2.1).

Both are attributed in ``scoutframe/sandbox/data/README.md``, with what changed from the
source. Two files, not one: each holds one source under one licence, and each is read by
the one module that needs it (``catalog.name_pool`` the pools, ``geo`` the country names),
so building the geography never decompresses the pools. The country names are 31 lines of
plain JSON, readable in a diff like ``admin1.json``.

What ``names.json.gz`` holds, for every locale the sandbox uses (each
``CountryProfile.locale`` and ``regional_locales`` entry of `scoutframe.sandbox.geo`), the
five lists of `scoutframe.sandbox.catalog.NamePool`, exactly as ``catalog.name_pool``
built them with Faker at run time before this file existed:

- ``surnames`` / ``surname_slugs``: up to 800 distinct surnames, sorted, each with its
  ASCII slug (`scoutframe.sandbox.catalog.slug`); names without one are dropped;
- ``first_names`` / ``first_name_slugs``: up to 400 first names, the same way;
- ``streets``: distinct street names, sorted; English ones get common street types.

Some Faker locales have English placeholders for surnames or streets: those borrow a
neighbouring locale's (``SURNAME_LOCALE``, ``STREET_LOCALE``), still seeded by the locale
asked for. Japanese names come from Faker's (kanji, katakana, romaji) tables: kanji
surnames with romaji slugs, romaji first names, and "town + N丁目" streets.

Adding a country or a locale to ``geo.py`` needs this script run again. Run it from the
repository root, with Faker and pycountry installed
(``pip install faker==40.63.0 pycountry==26.2.16``)::

    python scripts/make_sandbox_names.py

The output is deterministic (sorted keys, gzip without a timestamp): running it twice
gives the same bytes.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's scoutframe, not an installed one

from scoutframe.sandbox import geo  # noqa: E402
from scoutframe.sandbox.catalog import slug  # noqa: E402

NAMES = ROOT / "scoutframe" / "sandbox" / "data" / "names.json.gz"
COUNTRIES = ROOT / "scoutframe" / "sandbox" / "data" / "countries.json"
EXPECTED_VERSIONS = {"faker": "40.63.0", "pycountry": "26.2.16"}

POOL_SIZE = 400
# Faker locales whose own surnames or streets are English placeholders: borrow a neighbour's.
SURNAME_LOCALE = {"it_CH": "it_IT", "ar_AE": "en_GB"}
STREET_LOCALE = {"fr_BE": "fr_FR", "it_CH": "it_IT", "en_CA": "en_GB"}
BAD_STREET_WORDS = ("Favela",)
# English faker streets end in oddities ("Stravenue", "Trafficway"): keep common endings.
ENGLISH_STREET_TYPES = (
    "Street",
    "Avenue",
    "Road",
    "Drive",
    "Lane",
    "Boulevard",
    "Court",
    "Way",
    "Place",
    "Terrace",
    "Crescent",
    "Close",
    "Parade",
    "Highway",
)


def _check_versions() -> None:
    for dist, expected in EXPECTED_VERSIONS.items():
        version = importlib.metadata.version(dist)
        if version != expected:  # the docstring and data/README.md name the versions
            sys.exit(
                f"{dist} {expected} expected, {version} installed: update EXPECTED_VERSIONS, "
                "this docstring and scoutframe/sandbox/data/README.md"
            )


def sandbox_locales() -> list[str]:
    """Return every Faker locale the sandbox draws names from, sorted."""
    locales = {profile.locale for profile in geo.COUNTRIES.values()}
    locales |= {loc for profile in geo.COUNTRIES.values() for _, loc in profile.regional_locales}
    return sorted(locales)


def _english_street(street: str, i: int) -> str:
    head, _, kind = street.rpartition(" ")
    if kind in ENGLISH_STREET_TYPES or not head:
        return street
    return f"{head} {ENGLISH_STREET_TYPES[i % len(ENGLISH_STREET_TYPES)]}"


def pool(locale: str) -> dict[str, list[str]]:
    """Return the five word lists of ``locale`` (the fields of ``catalog.NamePool``)."""
    from faker import Faker

    def faker(loc: str) -> Faker:
        fake = Faker(loc)
        fake.seed_instance(sum(map(ord, locale)))  # the locale asked for, even if borrowing
        return fake

    people, places = (
        faker(SURNAME_LOCALE.get(locale, locale)),
        faker(STREET_LOCALE.get(locale, locale)),
    )
    if locale == "ja_JP":
        from faker.providers.person.ja_JP import Provider as JaPerson

        # (kanji, katakana, romaji) triples: kanji for names, romaji for domains.
        last = [(str(p[0]), slug(str(p[2]))) for p in list(JaPerson.last_name_pairs)]
        first = [(str(p[2]), slug(str(p[2]))) for p in list(JaPerson.first_name_pairs)]
        streets = sorted({f"{places.town()}{i % 9 + 1}丁目" for i in range(POOL_SIZE)})
    else:
        last_set = sorted({people.last_name() for _ in range(POOL_SIZE * 2)})
        first_set = sorted({people.first_name() for _ in range(POOL_SIZE)})
        last = [(s, slug(s)) for s in last_set if slug(s)]
        first = [(s, slug(s)) for s in first_set if slug(s)]
        streets = sorted({places.street_name() for _ in range(POOL_SIZE * 2)})
        streets = [s for s in streets if not s.startswith(BAD_STREET_WORDS)]
        if locale == "zu_ZA":  # bare names ("Somerset"): add the street type
            streets = [s if " " in s else f"{s} Street" for s in streets]
        if locale.startswith("en_") and locale != "en_IN":
            streets = sorted({_english_street(s, i) for i, s in enumerate(streets)})
    last, first = last[: POOL_SIZE * 2], first[:POOL_SIZE]
    return {
        "surnames": [s for s, _ in last],
        "surname_slugs": [s for _, s in last],
        "first_names": [s for s, _ in first],
        "first_name_slugs": [s for _, s in first],
        "streets": streets,
    }


def country_names() -> dict[str, str]:
    """Return country code → English name (ISO 3166-1 common name, else name)."""
    import pycountry

    names = {}
    for code in sorted(geo.COUNTRIES):
        country = pycountry.countries.get(alpha_2=code)
        assert country is not None, code
        names[code] = str(getattr(country, "common_name", None) or country.name)
    return names


def _source(dist: str, licence: str) -> str:
    return f"{dist} {EXPECTED_VERSIONS[dist]}, {licence}; see scoutframe/sandbox/data/README.md"


def main() -> int:
    """Write both files and print their sizes."""
    _check_versions()
    pools = {locale: pool(locale) for locale in sandbox_locales()}
    document: dict[str, Any] = {
        "source": _source("faker", 'MIT licence, "Copyright (c) 2012 Daniele Faraglia"'),
        "locales": pools,
    }
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    NAMES.write_bytes(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))
    countries = {
        "source": _source("pycountry", "ISO 3166-1 data from Debian's iso-codes, LGPL 2.1"),
        "countries": country_names(),
    }
    text = json.dumps(countries, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    COUNTRIES.write_text(text, encoding="utf-8")
    words = sum(len(words) for p in pools.values() for words in p.values())
    print(
        f"{NAMES.relative_to(ROOT)}: {len(pools)} locales, {words:,} words, "
        f"{NAMES.stat().st_size:,} bytes; {COUNTRIES.relative_to(ROOT)}: "
        f"{len(countries['countries'])} countries, {COUNTRIES.stat().st_size:,} bytes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
