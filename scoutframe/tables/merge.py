"""The merge rule of the Parquet cache's delta refresh: :func:`upsert` of two Arrow tables.

The rule, for every key (``place_id``):

* the row with the newer ``collected_at`` wins; a null ``collected_at`` is the oldest;
* on a tie the delta's row wins, and among rows of one table the later row wins;
* the winner replaces the other rows **whole**: a field that is empty in the winning row is
  empty in the result (no field-by-field coalescing);
* keys found only in the delta are added; nothing is deleted;
* the result is sorted by key, ascending, with unique keys (duplicate keys inside the base
  or the delta are resolved by the same rule).

So merging deltas one by one equals one merge of their concatenation, in order
(``upsert(upsert(b, d1), d2) == upsert(b, pa.concat_tables([d1, d2]))``), and merging the
same delta twice changes nothing.

Everything is vectorised: one sort of the keys of both tables (with the timestamp and the
row's position as tie-breakers) and one ``take`` of the winners. :func:`upsert_slices` applies
the same rule one slice of a sorted base at a time, so that a cache refresh can write the
first slices while it merges the next ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ArgumentError

__all__ = ["aligned", "is_strictly_ascending", "upsert", "upsert_slices"]


def upsert(
    base: pa.Table,
    delta: pa.Table,
    *,
    key: str = "place_id",
    newer: str = "collected_at",
) -> pa.Table:
    """Merge ``delta`` into ``base``: per key, the newest row wins whole.

    Parameters
    ----------
    base
        The rows known so far (e.g. the cached table).
    delta
        The new rows (e.g. a delta download). Same columns and types as ``base``, in any
        order.
    key
        Column that identifies a row. Nulls are refused.
    newer
        Column ordering the versions of a row (a timestamp); a null counts as the oldest.

    Returns
    -------
    pyarrow.Table
        One row per key of ``base`` or ``delta``, sorted by ``key`` ascending, with the
        columns (and schema metadata) of ``base``. For each key it is the row with the
        greatest ``newer``; on a tie the delta's row, and within one table the later row.

    Raises
    ------
    ArgumentError
        When the two tables differ in columns or types, when ``key`` or ``newer`` is not a
        column, or when ``key`` has nulls.

    Examples
    --------
    >>> merged = upsert(cached, delta)  # doctest: +SKIP
    """
    for table in (base, delta):
        if not isinstance(table, pa.Table):
            raise ArgumentError(
                f"upsert() takes pyarrow Tables, got {type(table).__name__}; convert a "
                "DataFrame with df.spherescout.to_arrow()"
            )
    _check_same_columns(base, delta)
    for name in (key, newer):
        if name not in base.column_names:
            raise ArgumentError(
                f"upsert(): no column {name!r} to merge on; columns: {base.column_names}"
            )
    delta = pa.Table.from_arrays(delta.select(base.column_names).columns, schema=base.schema)
    for label, table in (("base", base), ("delta", delta)):
        nulls = table.column(key).null_count
        if nulls:
            raise ArgumentError(
                f"upsert(): the {label} has {nulls} row(s) with a null {key!r}; every row "
                f"needs a key (drop them first: table.filter(pc.is_valid(table[{key!r}])))"
            )
    both = pa.concat_tables([base, delta])
    keys = both.column(key)
    order = pc.sort_indices(
        pa.table(
            {
                "key": keys,
                "newer": both.column(newer),
                # the row's position: delta rows come after base rows, later rows after earlier
                "position": pa.array(np.arange(both.num_rows, dtype=np.int64)),
            }
        ),
        # Nulls sort at the end (the default) whatever the order: a null timestamp comes
        # after every real one, so it is the oldest.
        sort_keys=[("key", "ascending"), ("newer", "descending"), ("position", "descending")],
    )
    return both.take(_first_of_each_key(keys.take(order), order))


def upsert_slices(
    base_slices: Iterable[pa.Table],
    delta: pa.Table,
    *,
    key: str = "place_id",
    newer: str = "collected_at",
) -> Iterator[pa.Table]:
    """Merge ``delta`` into a base given as consecutive slices; yield the merged slices.

    The concatenation of what this yields equals ``upsert(pa.concat_tables(base_slices),
    delta)``, provided the base is sorted by ``key`` with unique keys (a table :func:`upsert`
    returned is). Each delta row goes with the slice whose key range holds it; a slice that
    receives none passes through unchanged (no copy); keys past the last slice come last.

    Parameters
    ----------
    base_slices
        Consecutive slices of the base, e.g. record batches of a Parquet file as tables.
    delta, key, newer
        As for :func:`upsert`.

    Yields
    ------
    pyarrow.Table
        The merged slices, in key order.

    Raises
    ------
    ArgumentError
        As :func:`upsert` does, and when the base is not sorted with unique keys (found
        slice by slice, so some slices may have been yielded already).
    """
    winners = upsert(delta.slice(0, 0), delta, key=key, newer=newer)  # sorted, unique keys
    keys = winners.column(key).to_numpy(zero_copy_only=False)
    start = 0
    previous: object = None
    for piece in base_slices:
        if piece.num_rows == 0:
            continue
        piece_keys = piece.column(key)
        first, last = piece_keys[0].as_py(), piece_keys[-1].as_py()
        if not is_strictly_ascending(piece_keys) or (previous is not None and first <= previous):
            raise ArgumentError(
                f"upsert_slices(): the base is not sorted by {key!r} with unique keys; "
                "merge it with upsert() instead"
            )
        previous = last
        end = int(np.searchsorted(keys, last, side="right"))
        yield (
            upsert(piece, winners.slice(start, end - start), key=key, newer=newer)
            if end > start
            else piece
        )
        start = end
    if start < winners.num_rows:
        yield winners.slice(start)


def aligned(base: pa.Table, changes: pa.Table) -> pa.Table:
    """Return *base* with the columns of *changes*, in its order (one the API added since is null).

    A delta carries the columns the API sends today; a base stored earlier may lack a new one
    (and keep one the delta no longer has, which is dropped): :func:`upsert` needs both alike.
    """
    for name in changes.column_names:
        if name not in base.column_names:
            base = base.append_column(
                changes.schema.field(name), pa.nulls(base.num_rows, changes.schema.field(name).type)
            )
    return base.select(changes.column_names) if base.column_names != changes.column_names else base


def is_strictly_ascending(keys: pa.Array | pa.ChunkedArray) -> bool:
    """Whether ``keys`` has no nulls and each value is greater than the one before it."""
    n = len(keys)
    if keys.null_count:
        return False
    if n < 2:
        return True
    return bool(pc.all(pc.greater(keys.slice(1), keys.slice(0, n - 1))).as_py())


def _first_of_each_key(sorted_keys: pa.ChunkedArray, order: pa.Array) -> pa.Array:
    """Return the indices (from ``order``) of the first row of each run of equal keys."""
    n = len(sorted_keys)
    if n == 0:
        return order
    flat = sorted_keys.combine_chunks()
    changed = pc.not_equal(flat.slice(1), flat.slice(0, n - 1))
    first = pa.concat_arrays([pa.array([True]), changed])
    return order.filter(first)


def _check_same_columns(base: pa.Table, delta: pa.Table) -> None:
    """Refuse tables whose columns differ in names or types (their order may differ)."""
    for label, table in (("base", base), ("delta", delta)):
        names = table.column_names
        if len(set(names)) != len(names):
            repeated = sorted({n for n in names if names.count(n) > 1})
            raise ArgumentError(f"upsert(): the {label} has repeated columns {repeated}")
    base_types = dict(zip(base.column_names, base.schema.types, strict=True))
    delta_types = dict(zip(delta.column_names, delta.schema.types, strict=True))
    problems = []
    only_base = [n for n in base_types if n not in delta_types]
    only_delta = [n for n in delta_types if n not in base_types]
    if only_base:
        problems.append(f"missing from the delta: {only_base}")
    if only_delta:
        problems.append(f"not in the base: {only_delta}")
    differ = [
        f"{n} ({base_types[n]} in the base, {delta_types[n]} in the delta)"
        for n in base_types
        if n in delta_types and base_types[n] != delta_types[n]
    ]
    if differ:
        problems.append("of different types: " + ", ".join(differ))
    if problems:
        raise ArgumentError(
            "upsert() needs two tables with the same columns and types; columns "
            + "; ".join(problems)
            + ". Read both with scoutframe (the contacts schema) or cast one to the other's "
            "schema (delta.select(base.column_names).cast(base.schema))"
        )
