"""The synthetic dataset: schema, determinism, reference integrity, realism, persistence."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from scoutframe.sandbox import dataset as ds
from scoutframe.sandbox.geo import US_STATE_IDS

N = 5_000


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sandbox-data")


@pytest.fixture(scope="module")
def dataset(data_dir: Path) -> ds.Dataset:
    return ds.load_or_generate(data_dir, contacts=N, seed=3)


@pytest.fixture(scope="module")
def frame(dataset: ds.Dataset):  # type: ignore[no-untyped-def]
    return dataset.contacts.to_pandas()


def test_contact_schema_is_the_documented_one(dataset: ds.Dataset) -> None:
    schema = dataset.contacts.schema
    assert tuple(schema.names[:20]) == ds.CONTACT_COLUMNS
    assert schema.names[20:] == [
        "level1_id",
        "level2_id",
        "level3_id",
        "category_ids",
        "main_category_id",
    ]
    expected = {
        "place_id": pa.string(),
        "name": pa.string(),
        "email": pa.list_(pa.string()),
        "phone": pa.list_(pa.string()),
        "website": pa.string(),
        "instagram": pa.string(),
        "facebook": pa.string(),
        "address": pa.string(),
        "city": pa.string(),
        "zipcode": pa.string(),
        "level1_location": pa.string(),
        "level2_location": pa.string(),
        "level3_location": pa.string(),
        "country": pa.string(),
        "categories": pa.list_(pa.string()),
        "rating": pa.float64(),
        "review_count": pa.int32(),
        "latitude": pa.float64(),
        "longitude": pa.float64(),
        "collected_at": pa.timestamp("us", tz="UTC"),
        "level1_id": pa.int32(),
        "level2_id": pa.int32(),
        "level3_id": pa.int32(),
        "category_ids": pa.list_(pa.int32()),
        "main_category_id": pa.int32(),
    }
    assert {f.name: f.type for f in schema} == expected
    assert dataset.contacts.num_rows == N


def test_reference_schemas(dataset: ds.Dataset) -> None:
    assert dataset.countries.schema.names == ["code", "name"]
    assert dataset.categories.schema == pa.schema(
        [
            ("id", pa.int32()),
            ("name", pa.string()),
            ("gcid", pa.string()),
            ("profession", pa.string()),
        ]
    )
    assert dataset.locations.schema == pa.schema(
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


def test_same_seed_same_table_other_seed_other_table(dataset: ds.Dataset) -> None:
    again = ds.make_contacts(N, seed=3)
    assert again.equals(dataset.contacts)
    other = ds.make_contacts(N, seed=4)
    assert not other.column("place_id").equals(again.column("place_id"))


def test_place_ids_unique_sorted_and_shaped(dataset: ds.Dataset) -> None:
    ids = dataset.contacts.column("place_id")
    assert pc.count_distinct(ids).as_py() == N
    values = ids.to_pylist()
    assert values == sorted(values)
    assert all(re.fullmatch(r"ChIJ[A-Za-z0-9_-]{23}", v) for v in values)


def test_us_states_use_production_ids(dataset: ds.Dataset) -> None:
    loc = dataset.locations.to_pandas()
    us1 = loc[(loc.country == "US") & (loc.type == "level1")]
    assert dict(zip(us1.name, us1.id, strict=True))["Texas"] == 40
    assert dict(zip(us1.name, us1.id, strict=True))["District of Columbia"] == 90
    assert set(us1.id) == set(US_STATE_IDS.values())
    others = loc[(loc.country != "US") & (loc.type == "level1")]
    assert (others.id >= 1000).all()
    assert (others.id < 100_000).all()
    assert loc[loc.type == "level2"].id.between(100_000, 999_999).all()
    assert (loc[loc.type == "level3"].id >= 1_000_000).all()
    assert loc.id.is_unique


def test_location_ids_do_not_depend_on_seed_or_size(data_dir: Path, dataset: ds.Dataset) -> None:
    small = ds.load_or_generate(data_dir / "other", contacts=50, seed=99)
    assert small.locations.equals(dataset.locations)
    assert small.categories.equals(dataset.categories)


def test_categories(dataset: ds.Dataset) -> None:
    cats = dataset.categories.to_pandas()
    assert len(cats) >= 200
    assert cats.id.is_unique
    assert cats.gcid.is_unique
    assert cats.name.is_unique
    plumber = cats[cats.id == 8059].iloc[0]
    assert (plumber["name"], plumber["gcid"]) == ("Plumber", "gcid:plumber")
    assert cats.gcid.str.fullmatch(r"gcid:[a-z0-9_]+").all()
    assert cats.id.between(8000, 9999).all()
    assert cats.profession.nunique() >= 8


def test_countries_are_real_and_include_namibia(dataset: ds.Dataset, frame) -> None:  # type: ignore[no-untyped-def]
    codes = set(dataset.countries.column("code").to_pylist())
    assert len(codes) >= 30
    assert {
        "US",
        "FR",
        "DE",
        "GB",
        "ES",
        "IT",
        "BE",
        "NL",
        "CA",
        "AU",
        "BR",
        "MX",
        "JP",
        "IN",
        "NA",
        "ZA",
    } <= codes
    names = dict(
        zip(
            dataset.countries.column("code").to_pylist(),
            dataset.countries.column("name").to_pylist(),
            strict=True,
        )
    )
    assert names["NA"] == "Namibia"
    assert set(frame.country) <= codes
    big = ds.make_contacts(60_000, seed=1)
    namibia = big.filter(pc.equal(big.column("country"), "NA")).to_pandas()
    assert len(namibia) > 0
    assert set(namibia.level1_location) <= {
        "Khomas",
        "Erongo",
        "Hardap",
        "ǁKaras",
        "Kunene",
        "Ohangwena",
        "Omaheke",
        "Omusati",
        "Oshana",
        "Oshikoto",
        "Otjozondjupa",
        "Kavango East",
        "Kavango West",
        "Zambezi",
    }


def test_every_contact_points_at_a_consistent_location_chain(dataset: ds.Dataset, frame) -> None:  # type: ignore[no-untyped-def]
    loc = dataset.locations.to_pandas().set_index("id")
    l3 = loc.loc[frame.level3_id]
    assert (l3.type.to_numpy() == "level3").all()
    assert (l3.parent_id.to_numpy() == frame.level2_id.to_numpy()).all()
    assert (l3.country.to_numpy() == frame.country.to_numpy()).all()
    assert (l3.name.to_numpy() == frame.level3_location.to_numpy()).all()
    l2 = loc.loc[frame.level2_id]
    assert (l2.type.to_numpy() == "level2").all()
    assert (l2.parent_id.to_numpy() == frame.level1_id.to_numpy()).all()
    assert (l2.name.to_numpy() == frame.level2_location.to_numpy()).all()
    l1 = loc.loc[frame.level1_id]
    assert (l1.type.to_numpy() == "level1").all()
    assert l1.parent_id.isna().all()
    assert (l1.country.to_numpy() == frame.country.to_numpy()).all()
    assert (l1.name.to_numpy() == frame.level1_location.to_numpy()).all()
    # Contacts are scattered near their city's real coordinates.
    dlat = np.abs(frame.latitude.to_numpy() - l3.latitude.to_numpy())
    dlon = np.abs(frame.longitude.to_numpy() - l3.longitude.to_numpy())
    assert np.quantile(dlat, 0.99) < 0.6
    assert np.quantile(dlon, 0.99) < 1.5
    assert dlat.max() > 0  # scattered, not stacked on the city centre


def test_known_cities_sit_where_they_really_are(dataset: ds.Dataset) -> None:
    loc = dataset.locations.to_pandas()
    paris = loc[(loc.name == "Paris") & (loc.country == "FR")].iloc[0]
    assert abs(paris.latitude - 48.85) < 0.1
    assert abs(paris.longitude - 2.35) < 0.1
    windhoek = loc[(loc.name == "Windhoek") & (loc.country == "NA")].iloc[0]
    assert abs(windhoek.latitude + 22.56) < 0.1
    parent = loc.set_index("id").loc[int(paris.parent_id)]
    region = loc.set_index("id").loc[int(parent.parent_id)]
    assert region["name"] == "Île-de-France"


def test_categories_column_matches_ids(dataset: ds.Dataset, frame) -> None:  # type: ignore[no-untyped-def]
    by_id = dict(
        zip(
            dataset.categories.column("id").to_pylist(),
            dataset.categories.column("name").to_pylist(),
            strict=True,
        )
    )
    lengths = frame.categories.map(len)
    assert lengths.between(1, 3).all()
    assert (lengths > 1).any()
    for names, ids, main in zip(
        frame.categories, frame.category_ids, frame.main_category_id, strict=True
    ):
        assert list(names) == [by_id[i] for i in ids]
        assert ids[0] == main
        assert len(set(ids)) == len(ids)


def test_zipcodes_follow_country_formats(frame) -> None:  # type: ignore[no-untyped-def]
    formats = {
        "US": r"\d{5}",
        "FR": r"\d{5}",
        "DE": r"\d{5}",
        "NL": r"\d{4} [A-Z]{2}",
        "CA": r"[A-Z]\d[A-Z] \d[A-Z]\d",
        "BR": r"\d{5}-\d{3}",
        "JP": r"\d{3}-\d{4}",
        "GB": r"[A-Z]{1,2}\d{1,2} \d[A-Z]{2}",
        "PL": r"\d{2}-\d{3}",
    }
    for country, fmt in formats.items():
        zips = frame.zipcode[frame.country == country]
        assert len(zips) > 0, country
        assert zips.str.fullmatch(fmt).all(), (country, zips[~zips.str.fullmatch(fmt)].head())
    # Leading zeros survive (a number type would drop them).
    assert frame.zipcode[frame.country.isin(["US", "FR", "DE"])].str.startswith("0").any()


def test_us_and_fr_zipcodes_agree_with_the_region(frame) -> None:  # type: ignore[no-untyped-def]
    ma = frame.zipcode[frame.level1_location == "Massachusetts"]
    assert len(ma)
    assert ma.str.match(r"0[12]").all()
    tx = frame.zipcode[frame.level1_location == "Texas"]
    assert len(tx)
    assert tx.str.match(r"7[5-9]").all()
    idf = frame.zipcode[frame.level1_location == "Île-de-France"]
    assert len(idf)
    assert idf.str[:2].isin(["75", "77", "78", "91", "92", "93", "94", "95"]).all()


def test_contact_fields_look_real(frame) -> None:  # type: ignore[no-untyped-def]
    assert (frame.website.eq("") | frame.website.str.match(r"https?://")).all()
    assert (
        frame.instagram.eq("") | frame.instagram.str.startswith("https://www.instagram.com/")
    ).all()
    assert (
        frame.facebook.eq("") | frame.facebook.str.startswith("https://www.facebook.com/")
    ).all()
    emails = [e for lst in frame.email for e in lst]
    assert emails
    assert all(re.fullmatch(r"[a-z0-9._-]+@[a-z0-9.-]+\.[a-z]{2,}", e) for e in emails)
    counts = frame.email.map(len)
    assert set(counts) == {0, 1, 2}
    phone_counts = frame.phone.map(len)
    assert set(phone_counts) == {0, 1, 2}
    assert (phone_counts == 1).mean() > 0.6
    us = [p for lst in frame.phone[frame.country == "US"] for p in lst]
    assert all(re.fullmatch(r"\(\d{3}\) \d{3}-\d{4}|\+1 \d{3}-\d{3}-\d{4}", p) for p in us)
    fr = [p for lst in frame.phone[frame.country == "FR"] for p in lst]
    assert all(re.fullmatch(r"0\d( \d\d){4}|\+33 \d( \d\d){4}", p) for p in fr)
    rated = frame.rating.notna()
    assert frame.rating[rated].between(1.0, 5.0).all()
    assert (frame.review_count[~rated] == 0).all()
    assert (frame.review_count[rated] > 0).all()
    assert 0.3 < rated.mean() < 0.95
    assert frame.collected_at.min() >= ds.REFERENCE_TIME - ds._HISTORY
    assert frame.collected_at.max() <= ds.REFERENCE_TIME
    assert frame.collected_at.max() - frame.collected_at.min() > pd_days(500)
    assert frame.name.str.len().gt(2).all()
    assert frame.name.nunique() > 0.8 * len(frame)


def pd_days(days: int) -> timedelta:
    # Not pd.Timedelta(days=...): on pandas 2.x with NumPy >= 2.5 its constructor warns (its
    # own use of the 'generic' timedelta unit), which the suite's warnings-as-errors refuses.
    return timedelta(days=days)


def test_awkward_names_are_present(frame) -> None:  # type: ignore[no-untyped-def]
    names = frame.name
    assert names.str.contains(",").any()
    assert names.str.contains('"').any()
    assert names.str.contains(r"[éèüößñ]").any()
    assert names.str.contains(r"[\u3040-\u30ff\u4e00-\u9fff]").any()  # Japanese
    assert not names.str.contains("\n").any()
    assert frame.address.str.contains(",").any()  # "12 Main Street, Suite 210"


def test_coverage_varies_by_category_and_country() -> None:
    table = ds.make_contacts(40_000, seed=5).to_pandas()
    main = table.main_category_id

    def share(mask, column):  # type: ignore[no-untyped-def]
        values = table.loc[mask, column]
        return (values.map(len) > 0 if column in ("email", "phone") else values.ne("")).mean()

    restaurants = main.isin([9099])  # Restaurant
    plumbers = main == 8059
    lawyers = table.categories.map(lambda c: c[0] in ("Lawyer", "Law firm"))
    assert share(restaurants, "instagram") > 0.6 > share(plumbers, "instagram")
    assert share(plumbers, "phone") > 0.9
    assert share(lawyers, "website") > 0.75 > share(plumbers, "website")
    assert share(lawyers, "email") > share(restaurants, "email") + 0.3
    assert share(table.country == "DE", "email") > share(table.country == "JP", "email") + 0.1


def test_parquet_round_trip_loads_instead_of_regenerating(
    data_dir: Path, dataset: ds.Dataset
) -> None:
    path = data_dir / f"contacts-{N}-s3-v{ds.GENERATOR_VERSION}.parquet"
    assert path.exists()
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))  # mark the file
    again = ds.load_or_generate(data_dir, contacts=N, seed=3)
    assert path.stat().st_mtime_ns == 1_000_000_000  # not rewritten
    assert again.contacts.equals(dataset.contacts)
    assert again.locations.equals(dataset.locations)
    assert not list(data_dir.glob(".*.part"))  # no temporary of atomic_write left


def test_a_damaged_file_is_regenerated(tmp_path: Path) -> None:
    first = ds.load_or_generate(tmp_path, contacts=100, seed=1)
    path = tmp_path / f"contacts-100-s1-v{ds.GENERATOR_VERSION}.parquet"
    path.write_bytes(b"not parquet")
    again = ds.load_or_generate(tmp_path, contacts=100, seed=1)
    assert again.contacts.equals(first.contacts)


def test_new_contacts_do_not_collide(dataset: ds.Dataset) -> None:
    when = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    new = ds.generate_new_contacts(dataset, 500, seed=11, collected_at=when)
    assert new.schema.equals(ds.CONTACT_SCHEMA)
    assert new.num_rows == 500
    ids = new.column("place_id")
    assert not pc.any(pc.is_in(ids, value_set=dataset.contacts.column("place_id"))).as_py()
    assert ids.to_pylist() == sorted(ids.to_pylist())
    assert set(new.column("collected_at").to_pylist()) == {when}
    again = ds.generate_new_contacts(dataset, 500, seed=11, collected_at=when)
    assert again.equals(new)
    other = ds.generate_new_contacts(dataset, 500, seed=12, collected_at=when)
    assert not pc.any(pc.is_in(other.column("place_id"), value_set=ids)).as_py()


def test_dataset_helpers(dataset: ds.Dataset) -> None:
    assert len(dataset) == N
    assert "NA" in dataset.country_codes
    assert 8059 in dataset.category_ids
    assert 40 in dataset.location_ids
    assert dataset.latest_collected_at <= ds.REFERENCE_TIME


_DIGEST = """
import hashlib
import pyarrow as pa
from scoutframe.sandbox.dataset import make_contacts

def digest(table):
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()
"""


def test_generation_is_identical_in_another_process() -> None:
    import subprocess
    import sys

    scope: dict[str, object] = {}
    exec(_DIGEST, scope)  # the same digest code in both processes
    here = scope["digest"](ds.make_contacts(2000, seed=8))  # type: ignore[operator]
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # set-order bugs would show here
    out = subprocess.run(
        [sys.executable, "-c", _DIGEST + "print(digest(make_contacts(2000, seed=8)))"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    assert out.stdout.strip() == here


def test_phone_area_codes_follow_the_region(frame) -> None:  # type: ignore[no-untyped-def]
    def area_codes(state: str) -> set[str]:
        phones = [p for lst in frame.phone[frame.level1_location == state] for p in lst]
        assert phones, state
        return {re.sub(r"^\+1 |^\(", "", p)[:3] for p in phones}

    texas, california = area_codes("Texas"), area_codes("California")
    assert texas.isdisjoint(california)
    assert texas <= {
        "210",
        "214",
        "254",
        "281",
        "325",
        "361",
        "409",
        "432",
        "469",
        "512",
        "682",
        "713",
        "737",
        "806",
        "817",
        "830",
        "832",
        "903",
        "915",
        "936",
        "940",
        "956",
        "972",
        "979",
    }
    paris = [p for lst in frame.phone[frame.level1_location == "Île-de-France"] for p in lst]
    assert paris
    assert all(re.match(r"0[167] |\+33 [167] ", p) for p in paris)


def test_excluded_place_ids_are_redrawn() -> None:
    base = ds.make_contacts(1000, seed=1)
    # The same draw would reproduce every id: all must be redrawn.
    again = ds.make_contacts(1000, seed=1, exclude_place_ids=base.column("place_id"))
    assert again.num_rows == 1000
    assert not pc.any(pc.is_in(again.column("place_id"), value_set=base.column("place_id"))).as_py()


def test_large_datasets_restart_from_a_mapped_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ds, "_MAPPED_COPY_MIN_ROWS", 500)
    first = ds.load_or_generate(tmp_path, contacts=600, seed=2)
    mapped = tmp_path / f"contacts-600-s2-v{ds.GENERATOR_VERSION}.arrow"
    assert mapped.exists()
    read: list[str] = []
    real_read = ds.pq.read_table
    monkeypatch.setattr(
        ds.pq,
        "read_table",
        lambda path, **kw: read.append(Path(path).name) or real_read(path, **kw),
    )
    again = ds.load_or_generate(tmp_path, contacts=600, seed=2)
    assert again.contacts.equals(first.contacts)
    assert not [name for name in read if name.startswith("contacts-")]  # mapped, not decoded
    del again  # its buffers are the mapped file, which the next line truncates in place
    mapped.write_bytes(b"damaged")  # a broken copy falls back to the Parquet file
    third = ds.load_or_generate(tmp_path, contacts=600, seed=2)
    assert third.contacts.equals(first.contacts)
    assert ds._read_mapped(mapped, ds.CONTACT_SCHEMA, 600) is not None  # rewritten
    small = ds.load_or_generate(tmp_path, contacts=100, seed=2)
    assert small.contacts.num_rows == 100
    assert not (tmp_path / f"contacts-100-s2-v{ds.GENERATOR_VERSION}.arrow").exists()


def test_writing_a_version_removes_the_stale_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ds, "_MAPPED_COPY_MIN_ROWS", 50)
    v = ds.GENERATOR_VERSION
    stale = [
        f"contacts-60-s1-v{v - 2}.parquet",
        f"contacts-60-s1-v{v - 1}.arrow",
        f"countries-v{v - 1}.parquet",
        f"categories-v{v - 2}.parquet",
    ]
    kept = [
        f"contacts-600-s1-v{v - 1}.parquet",  # another size: another dataset
        f"contacts-60-s2-v{v - 1}.parquet",  # another seed
        "overlay-60-s1.parquet",
        "notes-v1.txt",
    ]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"old")
    ds.load_or_generate(tmp_path, contacts=60, seed=1)
    names = {p.name for p in tmp_path.iterdir()}
    assert not names & set(stale)
    assert set(kept) <= names
    assert {
        f"contacts-60-s1-v{v}.parquet",
        f"contacts-60-s1-v{v}.arrow",
        f"countries-v{v}.parquet",
    } <= names
