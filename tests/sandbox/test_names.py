"""The word pools and country names come from shipped data, not from Faker or pycountry."""

from __future__ import annotations

import json
import subprocess
import sys

from scoutframe.sandbox import catalog, geo

# Not blocked, so an import that something catches would still show in sys.modules.
_SCRIPT = """
import json, sys, tempfile
from pathlib import Path
from scoutframe.sandbox import dataset
with tempfile.TemporaryDirectory() as tmp:
    data = dataset.load_or_generate(Path(tmp), contacts=300, seed=0)
print(json.dumps({
    "rows": data.contacts.num_rows,
    "countries": data.countries.num_rows,
    "imported": sorted({"faker", "pycountry"} & set(sys.modules)),
}))
"""


def _sandbox_locales() -> set[str]:
    locales = {profile.locale for profile in geo.COUNTRIES.values()}
    return locales | {loc for p in geo.COUNTRIES.values() for _, loc in p.regional_locales}


def test_every_locale_of_the_sandbox_has_a_shipped_pool() -> None:
    assert set(catalog._pools()) == _sandbox_locales()  # none missing, none left over
    for locale in sorted(_sandbox_locales()):
        pool = catalog.name_pool(locale)
        for words, slugs in (
            (pool.surnames, pool.surname_slugs),
            (pool.first_names, pool.first_name_slugs),
        ):
            assert len(words) > 0, locale
            assert len(slugs) == len(words), locale
            assert all(s.isascii() and s.isalnum() for s in slugs.to_pylist()), locale
        assert len(pool.streets) > 0, locale


def test_every_country_has_a_shipped_name() -> None:
    names = geo._country_names()
    assert set(names) == set(geo.COUNTRIES)
    assert names["GB"] == "United Kingdom"
    assert names["CZ"] == "Czechia"  # ISO 3166-1's short name, not the official one


def test_generating_a_dataset_imports_neither_faker_nor_pycountry() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["rows"] == 300
    assert result["countries"] == len(geo.COUNTRIES)
    assert result["imported"] == []
