"""The delta-refresh merge rule: scoutframe.tables.merge.upsert (examples and properties)."""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from scoutframe.errors import ArgumentError
from scoutframe.tables.merge import is_strictly_ascending, upsert, upsert_slices
from scoutframe.tables.schema import CONTACT_SCHEMA

# A few contact columns with every kind of type the schema has: strings, lists, floats, times.
SCHEMA = pa.schema(
    [CONTACT_SCHEMA.field(n) for n in ("place_id", "name", "email", "rating", "collected_at")]
)
T0 = datetime(2025, 1, 1, tzinfo=UTC)

# No example database; and Hypothesis's other cache (constants of the code under test, which
# its pytest plugin writes while collecting, before any fixture runs) goes to a temporary
# directory removed at exit: the tests write no .hypothesis/ folder into the repository.
PROPERTIES = settings(
    database=None, max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    _HOME = tempfile.mkdtemp(prefix="scoutframe-hypothesis-")
    atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
    set_hypothesis_home_dir(_HOME)


def table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMA)


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


# --------------------------------------------------------------------------------------------
# Examples of the rule


def test_newer_row_wins_from_either_side() -> None:
    base = table([row("a", 1, name="old a"), row("b", 5, name="base b")])
    delta = table([row("a", 2, name="new a"), row("b", 4, name="stale b")])
    assert upsert(base, delta).column("name").to_pylist() == ["new a", "base b"]


def test_tie_goes_to_the_delta() -> None:
    base = table([row("a", 3, name="base")])
    delta = table([row("a", 3, name="delta")])
    assert upsert(base, delta).column("name").to_pylist() == ["delta"]


def test_winner_replaces_the_whole_row_even_with_empty_fields() -> None:
    base = table([row("a", 1, name="Bistro", email=["x@y.fr", "z@y.fr"], rating=4.5)])
    delta = table([row("a", 2, name=None, email=[], rating=None)])
    assert upsert(base, delta).to_pylist() == [row("a", 2)]


def test_null_timestamp_is_the_oldest() -> None:
    base = table(
        [row("a", None, name="base a"), row("b", 1, name="base b"), row("c", None, name="base c")]
    )
    delta = table(
        [
            row("a", 0, name="delta a"),
            row("b", None, name="delta b"),
            row("c", None, name="delta c"),
        ]
    )
    names = upsert(base, delta).column("name").to_pylist()
    assert names == ["delta a", "base b", "delta c"]  # two nulls tie: the delta wins


def test_new_keys_are_added_nothing_is_deleted_result_sorted() -> None:
    base = table([row("m", 1), row("c", 1)])
    delta = table([row("x", 1), row("a", 1)])
    assert upsert(base, delta).column("place_id").to_pylist() == ["a", "c", "m", "x"]


def test_duplicates_inside_the_delta_and_the_base() -> None:
    base = table([row("a", 5, name="b1"), row("a", 5, name="b2"), row("b", 1, name="b")])
    delta = table(
        [
            row("b", 2, name="d1"),
            row("b", 3, name="d2"),
            row("b", 3, name="d3"),
            row("b", 1, name="d4"),
        ]
    )
    assert upsert(base, delta).column("name").to_pylist() == ["b2", "d3"]


def test_delta_columns_in_another_order_keep_the_base_order_and_metadata() -> None:
    base = table([row("a", 1, name="base")]).replace_schema_metadata({b"k": b"v"})
    delta = table([row("a", 2, name="delta")])
    delta = delta.select(list(reversed(delta.column_names)))
    merged = upsert(base, delta)
    assert merged.column_names == SCHEMA.names
    assert merged.schema.metadata == {b"k": b"v"}
    assert merged.column("name").to_pylist() == ["delta"]


def test_empty_inputs() -> None:
    empty = SCHEMA.empty_table()
    assert upsert(empty, empty).num_rows == 0
    some = table([row("b", 1), row("a", 1)])
    assert upsert(some, empty).column("place_id").to_pylist() == ["a", "b"]
    assert upsert(empty, some).column("place_id").to_pylist() == ["a", "b"]


def test_other_key_and_timestamp_columns() -> None:
    schema = pa.schema([("id", pa.int64()), ("version", pa.int32()), ("v", pa.string())])
    base = pa.table({"id": [2, 1], "version": [1, 9], "v": ["b", "a"]}, schema=schema)
    delta = pa.table({"id": [1, 2], "version": [3, 3], "v": ["A", "B"]}, schema=schema)
    merged = upsert(base, delta, key="id", newer="version")
    assert merged.to_pydict() == {"id": [1, 2], "version": [9, 3], "v": ["a", "B"]}


def test_different_columns_are_refused_by_name() -> None:
    base = table([row("a", 1)])
    with pytest.raises(ArgumentError, match=r"missing from the delta: \['rating'\]"):
        upsert(base, base.drop_columns(["rating"]))
    extra = base.append_column("city", pa.array(["Paris"]))
    with pytest.raises(ArgumentError, match=r"not in the base: \['city'\]"):
        upsert(base, extra)
    other = base.set_column(3, "rating", pa.array(["4.5"]))
    with pytest.raises(ArgumentError, match=r"rating \(double in the base, string in the delta\)"):
        upsert(base, other)
    with pytest.raises(ValueError, match="same columns"):  # ArgumentError is a ValueError
        upsert(base, other)


def test_bad_arguments() -> None:
    base = table([row("a", 1)])
    with pytest.raises(ArgumentError, match="no column 'id'"):
        upsert(base, base, key="id")
    with pytest.raises(ArgumentError, match="pyarrow Tables"):
        upsert(base.to_pandas(), base)  # type: ignore[arg-type]
    nulls = base.set_column(0, "place_id", pa.array([None], pa.string()))
    with pytest.raises(ArgumentError, match="delta has 1 row"):
        upsert(base, nulls)


# --------------------------------------------------------------------------------------------
# Properties, against a plain-Python model of the rule

KEYS = st.text(alphabet="abc", min_size=1, max_size=2)
HOURS = st.one_of(st.none(), st.integers(0, 3))  # few instants: many ties and nulls
ROWS = st.builds(
    row,
    KEYS,
    HOURS,
    name=st.one_of(st.none(), st.text(alphabet="xyz; ", max_size=3)),
    email=st.one_of(st.none(), st.lists(st.sampled_from(["", "a@b.fr", "c@d.fr"]), max_size=2)),
    rating=st.one_of(st.none(), st.floats(0, 5, allow_nan=False)),
)
TABLES = st.lists(ROWS, max_size=12).map(table)


def expected(*tables: pa.Table) -> list[dict[str, Any]]:
    """Per key, the row with the greatest (timestamp, position); null timestamps lowest."""
    best: dict[str, tuple[tuple[bool, datetime, int], dict[str, Any]]] = {}
    position = 0
    for t in tables:
        for r in t.to_pylist():
            at = r["collected_at"]
            rank = (at is not None, at or T0, position)
            position += 1
            if r["place_id"] not in best or rank > best[r["place_id"]][0]:
                best[r["place_id"]] = (rank, r)
    return [best[k][1] for k in sorted(best)]


@PROPERTIES
@given(TABLES, TABLES)
def test_each_winner_is_the_newest_row_delta_on_ties(base: pa.Table, delta: pa.Table) -> None:
    assert upsert(base, delta).to_pylist() == expected(base, delta)


@PROPERTIES
@given(TABLES, TABLES)
def test_keys_unique_sorted_and_all_present(base: pa.Table, delta: pa.Table) -> None:
    keys = upsert(base, delta).column("place_id").to_pylist()
    assert keys == sorted(set(keys))
    assert set(keys) == set(
        base.column("place_id").to_pylist() + delta.column("place_id").to_pylist()
    )


@PROPERTIES
@given(TABLES, TABLES)
def test_idempotent(base: pa.Table, delta: pa.Table) -> None:
    once = upsert(base, delta)
    assert upsert(once, delta).equals(once)


@PROPERTIES
@given(TABLES, TABLES, TABLES)
def test_deltas_one_by_one_equal_one_merge_of_their_concatenation(
    base: pa.Table, d1: pa.Table, d2: pa.Table
) -> None:
    # "concatenation" keeps d1's rows before d2's: on a tie the later delta (d2) wins,
    # exactly as when d2 is merged after d1.
    step_by_step = upsert(upsert(base, d1), d2)
    at_once = upsert(base, pa.concat_tables([d1, d2]))
    assert step_by_step.equals(at_once)


@PROPERTIES
@given(TABLES, TABLES, st.randoms(use_true_random=False))
def test_column_order_of_the_delta_does_not_matter(
    base: pa.Table, delta: pa.Table, rnd: Any
) -> None:
    names = list(delta.column_names)
    rnd.shuffle(names)
    assert upsert(base, delta.select(names)).equals(upsert(base, delta))


# --------------------------------------------------------------------------------------------
# upsert_slices: the same rule, one slice of a sorted base at a time


def slices_of(base: pa.Table, cuts: list[int]) -> list[pa.Table]:
    """``base`` cut at the given row positions (consecutive, possibly empty, slices)."""
    edges = [0, *sorted(c % (base.num_rows + 1) for c in cuts), base.num_rows]
    return [base.slice(a, b - a) for a, b in itertools.pairwise(edges)]


@PROPERTIES
@given(TABLES, TABLES, st.lists(st.integers(0, 20), max_size=5))
def test_slices_merged_one_by_one_equal_one_merge(
    base: pa.Table, delta: pa.Table, cuts: list[int]
) -> None:
    sorted_base = upsert(base.slice(0, 0), base)  # sorted, unique keys: what an entry holds
    streamed = list(upsert_slices(slices_of(sorted_base, cuts), delta))
    merged = pa.concat_tables(streamed) if streamed else sorted_base.slice(0, 0)
    assert merged.to_pylist() == upsert(sorted_base, delta).to_pylist()
    assert merged.num_rows == upsert(sorted_base, delta).num_rows


def test_a_slice_the_delta_does_not_touch_passes_through_uncopied() -> None:
    base = table([row("a", 1), row("b", 1), row("m", 1), row("n", 1)])
    first, second = base.slice(0, 2), base.slice(2, 2)
    out = list(upsert_slices([first, second], table([row("n", 2), row("z", 0)])))
    assert out[0] is first  # nothing to merge into "a".."b": the same object
    assert [t.column("place_id").to_pylist() for t in out] == [["a", "b"], ["m", "n"], ["z"]]
    assert out[1].column("collected_at")[1].as_py() == T0 + timedelta(hours=2)


def test_an_empty_base_yields_the_deduplicated_delta() -> None:
    delta = table([row("b", 1, name="old"), row("a", 0), row("b", 1, name="later")])
    (only,) = upsert_slices([], delta)
    assert only.column("place_id").to_pylist() == ["a", "b"]
    assert only.column("name").to_pylist() == [None, "later"]


@pytest.mark.parametrize(
    "slices",
    [
        [table([row("b", 1), row("a", 1)])],  # unsorted inside a slice
        [table([row("a", 1), row("a", 2)])],  # repeated key
        [table([row("c", 1)]), table([row("b", 1)])],  # slices out of order
        [table([row("c", 1)]), table([row("c", 2)])],  # a key across two slices
    ],
)
def test_a_base_not_sorted_with_unique_keys_is_refused(slices: list[pa.Table]) -> None:
    with pytest.raises(ArgumentError, match=r"not sorted .* unique keys"):
        list(upsert_slices(slices, table([row("a", 3)])))


def test_is_strictly_ascending() -> None:
    assert is_strictly_ascending(pa.chunked_array([["a", "b"], ["c"]]))
    assert is_strictly_ascending(pa.array([], pa.string()))
    assert not is_strictly_ascending(pa.chunked_array([["a", "b"], ["b"]]))
    assert not is_strictly_ascending(pa.array(["a", None]))
