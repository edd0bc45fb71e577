"""Delta Lake tables of contacts (delta-rs, local directories): merge rule, versions, readers."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import deltalake
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

import scoutframe
from scoutframe.errors import ArgumentError
from scoutframe.models import Provenance
from scoutframe.tables import delta as deltatables
from scoutframe.tables import frames
from scoutframe.tables.merge import upsert
from scoutframe.tables.schema import CONTACT_SCHEMA

SCHEMA = pa.schema(
    [CONTACT_SCHEMA.field(n) for n in ("place_id", "name", "email", "rating", "collected_at")]
)
T0 = datetime(2025, 1, 1, tzinfo=UTC)
PROPERTIES = settings(
    database=None, max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    _HOME = tempfile.mkdtemp(prefix="scoutframe-hypothesis-")
    atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
    set_hypothesis_home_dir(_HOME)


def row(key: str, hours: int | None, **fields: Any) -> dict[str, Any]:
    at = None if hours is None else T0 + timedelta(hours=hours)
    return {
        "place_id": key,
        "name": None,
        "email": [],
        "rating": None,
        "collected_at": at,
        **fields,
    }


def table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def by_key(t: pa.Table) -> list[dict[str, Any]]:
    return t.take(pc.sort_indices(t, [("place_id", "ascending")])).to_pylist()


ROWS = st.builds(
    row,
    st.text(alphabet="abc", min_size=1, max_size=2),
    st.one_of(st.none(), st.integers(0, 3)),  # few instants: many ties and nulls
    name=st.one_of(st.none(), st.text(alphabet="xyz; ", max_size=3)),
    email=st.one_of(st.none(), st.lists(st.sampled_from(["", "a@b.fr"]), max_size=2)),
    rating=st.one_of(st.none(), st.floats(0, 5, allow_nan=False)),
)
TABLES = st.lists(ROWS, max_size=10).map(table)


@PROPERTIES
@given(TABLES, TABLES)
def test_delta_rs_merge_gives_exactly_what_upsert_gives(base: pa.Table, delta: pa.Table) -> None:
    # Ties, null times, repeated keys in the delta: delta-rs's MERGE with the predicates of
    # tables/delta.py must agree with merge.upsert on every row and every field.
    with tempfile.TemporaryDirectory() as where:
        start = upsert(base.slice(0, 0), base)  # a table's keys are unique
        assert deltatables.write_delta(start, where, mode="overwrite") == 0
        assert deltatables.write_delta(delta, where, mode="merge") == 1  # one version
        merged, _, version = deltatables.read_delta_table(where)
        assert version == 1
        assert by_key(merged.cast(SCHEMA)) == upsert(start, delta).to_pylist()


def contacts(n: int, hours: int = 0, tag: str = "v") -> pa.Table:
    rows = [
        {"place_id": f"p{i:04d}", "name": f"{tag}{i}", "email": [f"{i}@x.fr"], "zipcode": "01000",
         "country": "NA", "collected_at": (T0 + timedelta(hours=hours)).isoformat()}
        for i in range(n)
    ]  # fmt: skip
    return frames.records_to_table(rows, warn_drift=False)


def test_each_write_is_a_version_readable_later_by_number_or_time(tmp_path: Path) -> None:
    uri = tmp_path / "contacts"
    first = frames.with_provenance(contacts(5), Provenance(search_id="srch_a", method="export"))
    assert scoutframe.write_delta(first, uri) == 0  # merge into nothing: a new table
    when = datetime.now(UTC)
    changed = contacts(7, hours=1, tag="new")  # 5 re-collected, 2 new
    assert scoutframe.write_delta(changed, uri, mode="merge") == 1
    now = scoutframe.read_delta(uri)
    assert sorted(now["name"].tolist()) == sorted(f"new{i}" for i in range(7))
    assert now.attrs["scoutframe"]["delta_version"] == 1
    then = scoutframe.read_delta(uri, version=0)
    assert sorted(then["place_id"].tolist()) == [f"p{i:04d}" for i in range(5)]
    assert then.attrs["scoutframe"]["search_id"] == "srch_a"  # the provenance of version 0
    assert then["zipcode"].tolist() == ["01000"] * 5  # the contacts types, not guesses
    assert str(then["collected_at"].dtype) == "timestamp[us, tz=UTC][pyarrow]"
    assert scoutframe.read_delta(uri, version=when).equals(then)
    assert len(scoutframe.read_delta(uri, version=datetime.now(UTC).isoformat())) == 7
    older = contacts(3, hours=-5, tag="old")  # older than what is there: nothing changes
    scoutframe.write_delta(older, uri)
    assert sorted(scoutframe.read_delta(uri)["name"]) == sorted(now["name"])
    with pytest.raises(ArgumentError, match="no version 9"):
        scoutframe.read_delta(uri, version=9)
    with pytest.raises(ArgumentError, match="no Delta table"):
        scoutframe.read_delta(tmp_path / "absent")
    with pytest.raises(ArgumentError, match="mode must be one of"):
        scoutframe.write_delta(changed, uri, mode="upsert")  # type: ignore[arg-type]


def test_the_accessor_writes_and_chunks_stream_in(tmp_path: Path) -> None:
    frame = frames.to_pandas(contacts(6))
    uri = tmp_path / "t"
    assert frame.spherescout.to_delta(uri, mode="overwrite") == 0
    chunks = (frames.to_pandas(contacts(n, hours=2, tag="c")) for n in (2, 4))
    assert scoutframe.write_delta(chunks, uri, mode="overwrite") == 1
    assert sorted(scoutframe.read_delta(uri)["name"]) == ["c0", "c0", "c1", "c1", "c2", "c3"]


def test_polars_and_duckdb_read_the_same_rows_as_read_delta(tmp_path: Path) -> None:
    import duckdb
    import polars as pl

    uri = str(tmp_path / "t")
    scoutframe.write_delta(contacts(50), uri)
    scoutframe.write_delta(contacts(80, hours=1, tag="n"), uri)
    ours = scoutframe.read_delta(uri).sort_values("place_id").reset_index(drop=True)
    polars = pl.read_delta(uri).sort("place_id")
    assert polars["place_id"].to_list() == ours["place_id"].tolist()
    assert polars["name"].to_list() == ours["name"].tolist()
    assert polars["email"].to_list() == [list(e) for e in ours["email"]]
    # DuckDB through the Delta table's Arrow dataset (its own `delta` extension is a
    # download, which CI does not allow).
    dataset = deltalake.DeltaTable(uri).to_pyarrow_dataset()
    duck = duckdb.from_arrow(dataset).order("place_id").select("place_id, name").fetchall()
    assert duck == list(zip(ours["place_id"], ours["name"], strict=True))
    old = pl.read_delta(uri, version=0)
    assert old.height == 50


def test_the_commit_says_where_the_rows_came_from_and_holds_no_option(tmp_path: Path) -> None:
    uri = tmp_path / "t"
    source = frames.with_provenance(contacts(3), Provenance(search_id="srch_b"))
    scoutframe.write_delta(source, uri, metadata={"note": "monthly"})
    log = (uri / "_delta_log" / "00000000000000000000.json").read_text()
    info = next(json.loads(line)["commitInfo"] for line in log.splitlines() if "commitInfo" in line)
    assert info["note"] == "monthly"
    assert json.loads(info["scoutframe"])["search_id"] == "srch_b"


def test_a_merge_refuses_a_table_of_other_columns(tmp_path: Path) -> None:
    uri = tmp_path / "t"
    scoutframe.write_delta(pa.table({"place_id": ["a"], "x": [1]}), uri, mode="overwrite")
    with pytest.raises(ArgumentError, match="merge contacts into a table of contacts"):
        scoutframe.write_delta(contacts(2), uri)
    assert pd.DataFrame(scoutframe.read_delta(uri)).shape == (1, 2)
