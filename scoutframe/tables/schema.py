"""The contacts schema: one Arrow schema for pages, exports, chunks, deltas and the cache.

Conventions:

* ids, zipcodes, phones and country codes are strings; nothing is guessed as NA, so the
  zipcode ``01000`` and the country ``NA`` (Namibia) survive;
* an empty scalar field (``""``) becomes null; an empty list field becomes an empty list;
* ``email``, ``phone`` and ``categories`` are ``list<string>`` (the CSV joins them with ``"; "``;
  the live API sometimes sends ``phone`` as a plain string, which becomes a one-element list);
* ``collected_at`` is ``timestamp[us, tz=UTC]``;
* columns the schema does not know are kept as strings and announced by a
  :class:`SchemaDriftWarning`.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ArgumentError

__all__ = [
    "CONTACT_COLUMNS",
    "CONTACT_SCHEMA",
    "LIST_COLUMNS",
    "LIST_SEPARATOR",
    "MaskedEmailWarning",
    "PageDriftWarning",
    "SchemaDriftWarning",
    "announce_drift",
    "check_columns",
    "drift_columns",
    "drift_message",
    "empty_table",
    "is_list_type",
    "normalise_table",
    "split_lists",
    "to_timestamps",
    "warn_from_caller",
]

#: Separator of list fields in the export CSV.
LIST_SEPARATOR = "; "

CONTACT_SCHEMA = pa.schema(
    [
        pa.field("place_id", pa.string()),
        pa.field("name", pa.string()),
        pa.field("email", pa.list_(pa.string())),
        pa.field("phone", pa.list_(pa.string())),
        pa.field("website", pa.string()),
        pa.field("instagram", pa.string()),
        pa.field("facebook", pa.string()),
        pa.field("address", pa.string()),
        pa.field("city", pa.string()),
        pa.field("zipcode", pa.string()),
        pa.field("level1_location", pa.string()),
        pa.field("level2_location", pa.string()),
        pa.field("level3_location", pa.string()),
        pa.field("country", pa.string()),
        pa.field("categories", pa.list_(pa.string())),
        pa.field("rating", pa.float64()),
        pa.field("review_count", pa.int32()),
        pa.field("latitude", pa.float64()),
        pa.field("longitude", pa.float64()),
        pa.field("collected_at", pa.timestamp("us", tz="UTC")),
    ]
)
CONTACT_COLUMNS: tuple[str, ...] = tuple(CONTACT_SCHEMA.names)
LIST_COLUMNS: frozenset[str] = frozenset({"email", "phone", "categories"})
TIMESTAMP = pa.timestamp("us", tz="UTC")


class SchemaDriftWarning(UserWarning):
    """The data carried columns the contacts schema does not know; they are kept as strings."""


class MaskedEmailWarning(UserWarning):
    """The frame's emails are masked (``j***@d*****.fr``): search pages never carry real ones."""


class PageDriftWarning(UserWarning):
    """The result changed while it was being paged, and re-reading did not settle it."""


def check_columns(columns: Iterable[str] | None) -> list[str] | None:
    """Validate a ``columns`` selection against the schema (``ArgumentError`` on unknown names)."""
    if columns is None:
        return None
    if isinstance(columns, str):
        columns = [columns]
    selected = list(dict.fromkeys(columns))
    if not selected:
        raise ArgumentError(
            "columns=[] selects no column; pass None for all of them, or name "
            "some: columns=['name', 'email']"
        )
    unknown = [c for c in selected if c not in CONTACT_COLUMNS]
    if unknown:
        known = ", ".join(CONTACT_COLUMNS)
        raise ArgumentError(f"Unknown column(s) {unknown}; known columns: {known}")
    return selected


def is_list_type(kind: pa.DataType) -> bool:
    """Whether an Arrow type is a list (``list`` or ``large_list``)."""
    return bool(pa.types.is_list(kind) or pa.types.is_large_list(kind))


def drift_columns(table: pa.Table) -> list[str]:
    """Names of the columns of *table* that :data:`CONTACT_SCHEMA` does not know."""
    return [name for name in table.column_names if name not in CONTACT_COLUMNS]


def empty_table(columns: Sequence[str] | None = None) -> pa.Table:
    """Return an empty table with the contacts schema (or the selected columns of it)."""
    schema = CONTACT_SCHEMA
    if columns is not None:
        schema = pa.schema([CONTACT_SCHEMA.field(c) for c in columns])
    return schema.empty_table()


# scoutframe/, not scoutframe/tables/: the reads that warn run through read/ and cache/ too
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def warn_from_caller(message: str, category: type[Warning]) -> None:
    """Warn, pointing at the first frame outside scoutframe (the user's line).

    Reads run through generators and helpers of varying depth; a fixed ``stacklevel`` would
    point inside the package whenever that depth changes.
    """
    level = 2  # 1 is this function; 2 its caller
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


def drift_message(names: Sequence[str]) -> str:
    """Return the :class:`SchemaDriftWarning` text for the unknown columns ``names``."""
    return (
        f"Unknown column(s) {list(names)} kept as strings; the API sent fields this version "
        "of scoutframe does not know."
    )


def announce_drift(names: Sequence[str]) -> None:
    """Warn (:class:`SchemaDriftWarning`) about unknown columns, if there are any."""
    if names:
        warn_from_caller(drift_message(names), SchemaDriftWarning)


# --------------------------------------------------------------------------------------------
# Conversions of single columns


def split_lists(strings: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Split ``"a; b"`` strings into lists; empty or null fields give empty lists."""
    if isinstance(strings, pa.ChunkedArray):  # chunk by chunk: no copy of the whole column
        return pa.chunked_array(
            [_split_chunk(chunk) for chunk in strings.chunks], type=pa.list_(pa.string())
        )
    return _split_chunk(strings)


def _split_chunk(strings: pa.Array) -> pa.Array:
    n = len(strings)
    split = pc.split_pattern(strings, LIST_SEPARATOR)
    values = pc.list_flatten(split)
    parents = pc.list_parent_indices(split).to_numpy()
    keep = pc.not_equal(values, "").to_numpy(zero_copy_only=False)
    counts = np.bincount(parents[keep], minlength=n)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    kept = values.filter(pa.array(keep)) if not keep.all() else values
    return pa.ListArray.from_arrays(pa.array(offsets), kept, type=pa.list_(pa.string()))


def to_timestamps(strings: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Parse ISO-8601 strings as UTC timestamps; values without an offset are taken as UTC."""
    strings = pc.if_else(pc.equal(strings, ""), pa.scalar(None, pa.string()), strings)
    try:
        return strings.cast(TIMESTAMP)
    except pa.ArrowInvalid:
        naive = pc.replace_substring_regex(strings, r"(Z|[+-]\d\d:?\d\d)$", "")
        return pc.assume_timezone(naive.cast(pa.timestamp("us")), timezone="UTC")


def _normalise_column(name: str, column: pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    """Bring one CSV column (read as strings for list/timestamp columns) to its schema type."""
    if name in LIST_COLUMNS:
        return split_lists(column)
    if name == "collected_at" and not pa.types.is_timestamp(column.type):
        return to_timestamps(column)
    if name in CONTACT_COLUMNS:
        target = CONTACT_SCHEMA.field(name).type
        return column if column.type == target else column.cast(target)
    return column if column.type == pa.string() else column.cast(pa.string())


def normalise_table(holder: list[pa.Table]) -> pa.Table:
    """Convert the raw table in *holder* (taken out of it) column by column.

    Each raw column is released as soon as it is converted, so the peak memory is about one
    table plus one column, not two tables.
    """
    raw = holder.pop()
    names = raw.column_names
    columns: list[pa.ChunkedArray | None] = list(raw.columns)
    del raw
    arrays = []
    for i, name in enumerate(names):
        column, columns[i] = columns[i], None
        assert column is not None
        arrays.append(_normalise_column(name, column))
        del column
    fields_ = [
        CONTACT_SCHEMA.field(n) if n in CONTACT_COLUMNS else pa.field(n, pa.string()) for n in names
    ]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields_))
