"""The export CSV format (contract section 6): columns, quoting, lists, numbers, atomicity."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from scoutframe.sandbox import csvexport
from scoutframe.sandbox.columns import CONTACT_COLUMNS as CSV_COLUMNS
from scoutframe.sandbox.csvexport import (
    export_csv_bytes,
    to_export_table,
    write_export_csv,
)

CONTRACT_HEADER = (
    "place_id,name,email,phone,website,instagram,facebook,address,city,zipcode,"
    "level1_location,level2_location,level3_location,country,categories,rating,review_count,"
    "latitude,longitude,collected_at"
)

SCHEMA = pa.schema(
    [
        ("place_id", pa.string()),
        ("name", pa.string()),
        ("email", pa.list_(pa.string())),
        ("phone", pa.list_(pa.string())),
        ("website", pa.string()),
        ("instagram", pa.string()),
        ("facebook", pa.string()),
        ("address", pa.string()),
        ("city", pa.string()),
        ("zipcode", pa.string()),
        ("level1_location", pa.string()),
        ("level2_location", pa.string()),
        ("level3_location", pa.string()),
        ("country", pa.string()),
        ("categories", pa.list_(pa.string())),
        ("rating", pa.float64()),
        ("review_count", pa.int32()),
        ("latitude", pa.float64()),
        ("longitude", pa.float64()),
        ("collected_at", pa.timestamp("us", tz="UTC")),
        # internal columns that must not reach the CSV
        ("level1_id", pa.int32()),
        ("category_ids", pa.list_(pa.int32())),
    ]
)

AWKWARD_ROWS: list[dict[str, Any]] = [
    {
        "place_id": "ChIJ-0001",
        "name": 'Chez "Léon", bar & grill',
        "email": ["contact@leon.fr", "b@leon.fr"],
        "phone": ["+33 1 23 45 67 89"],
        "website": "https://leon.fr/?a=1,2",
        "instagram": "",
        "facebook": "https://facebook.com/leon",
        "address": "12 rue de la Paix\nBâtiment B, 2e étage",
        "city": "Paris",
        "zipcode": "01234",
        "level1_location": "Île-de-France",
        "level2_location": "TN157",
        "level3_location": "Paris",
        "country": "FR",
        "categories": ["Bar", "Grill, charcoal"],
        "rating": 4.5,
        "review_count": 1234,
        "latitude": 48.85661400000001,
        "longitude": -2.3522219,
        "collected_at": datetime(2025, 3, 4, 12, 34, 56, 789000, tzinfo=UTC),
        "level1_id": 1000,
        "category_ids": [1, 2],
    },
    {
        "place_id": "ChIJ-0002",
        "name": "Namibia Ñandú 東京 ☕",
        "email": [],
        "phone": [],
        "website": "",
        "instagram": "",
        "facebook": "",
        "address": 'Quote at end"',
        "city": "Windhoek",
        "zipcode": "00000",
        "level1_location": "",
        "level2_location": "",
        "level3_location": "",
        "country": "NA",
        "categories": [],
        "rating": None,
        "review_count": 0,
        "latitude": -22.5609,
        "longitude": 17.0658,
        "collected_at": datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC),
        "level1_id": 1001,
        "category_ids": [],
    },
    {
        "place_id": "ChIJ-0003",
        "name": "Windows\r\nline end",
        "email": None,
        "phone": ["+1 555 0100", "+1 555 0101", "+1 555 0102"],
        "website": None,
        "instagram": "https://instagram.com/x",
        "facebook": None,
        "address": ",,,",
        "city": "Austin",
        "zipcode": "78701",
        "level1_location": "Texas",
        "level2_location": "Travis County",
        "level3_location": "Austin",
        "country": "US",
        "categories": ["Plumber"],
        "rating": 1.0,
        "review_count": 7,
        "latitude": 30.267153,
        "longitude": -97.7430608,
        "collected_at": None,
        "level1_id": 40,
        "category_ids": [8059],
    },
]


def awkward_table() -> pa.Table:
    return pa.Table.from_pylist(AWKWARD_ROWS, schema=SCHEMA)


def joined(value: list[str] | None) -> str:
    return "; ".join(value or [])


def expected_text(row: dict[str, Any], column: str) -> str:
    value = row[column]
    if column in ("email", "phone", "categories"):
        return joined(value)
    if column == "collected_at":
        return "" if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if value is None:
        return ""
    return str(value)


def test_columns_are_the_contract_columns_in_order() -> None:
    assert ",".join(CSV_COLUMNS) == CONTRACT_HEADER
    table = to_export_table(awkward_table())
    assert tuple(table.column_names) == CSV_COLUMNS
    assert table.column("rating").type == pa.float64()
    assert table.column("review_count").type == pa.int32()


def test_python_csv_reads_back_every_awkward_value() -> None:
    data = export_csv_bytes(awkward_table())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert rows[0] == list(CSV_COLUMNS)
    assert len(rows) == 1 + len(AWKWARD_ROWS)
    for source, written in zip(AWKWARD_ROWS, rows[1:], strict=True):
        for column, text in zip(CSV_COLUMNS, written, strict=True):
            if column in ("rating", "latitude", "longitude"):
                original = source[column]
                assert (float(text) if text else None) == original, column
            else:
                assert text == expected_text(source, column), column


def test_pyarrow_reads_back_types_and_values() -> None:
    data = export_csv_bytes(awkward_table())
    strings = {c: pa.string() for c in CSV_COLUMNS if c not in ("rating", "review_count")}
    strings.pop("latitude")
    strings.pop("longitude")
    table = pacsv.read_csv(
        io.BytesIO(data), convert_options=pacsv.ConvertOptions(column_types=strings)
    )
    assert table.column("zipcode").to_pylist() == ["01234", "00000", "78701"]
    assert table.column("country").to_pylist() == ["FR", "NA", "US"]
    assert table.column("rating").to_pylist() == [4.5, None, 1.0]
    assert table.column("latitude").to_pylist() == [r["latitude"] for r in AWKWARD_ROWS]
    assert table.column("longitude").to_pylist() == [r["longitude"] for r in AWKWARD_ROWS]
    assert table.column("review_count").to_pylist() == [1234, 0, 7]
    assert table.column("categories").to_pylist() == ["Bar; Grill, charcoal", "", "Plumber"]
    assert table.column("collected_at").to_pylist() == [
        "2025-03-04T12:34:56Z",
        "2026-01-01T00:00:00Z",
        "",
    ]


def test_rfc4180_quoting_and_line_ends() -> None:
    text = export_csv_bytes(awkward_table()).decode("utf-8")
    assert text.startswith(CONTRACT_HEADER + "\n")
    assert text.endswith("\n")
    # Embedded quotes are doubled inside a quoted field; commas and newlines are quoted.
    assert '"Chez ""Léon"", bar & grill"' in text
    assert '"12 rue de la Paix\nBâtiment B, 2e étage"' in text
    assert '"Quote at end"""' in text
    assert '",,,"' in text
    # The only \r is the one inside a quoted value; records end with \n.
    assert text.count("\r") == 1
    assert '"Windows\r\nline end"' in text
    # Empty values (empty lists, empty strings, nulls) are empty, unquoted fields.
    second = text.split("\n")[3]
    assert second.startswith('"ChIJ-0002","Namibia Ñandú 東京 ☕",,,,,,')
    assert ',"NA",,,0,-22.5609,17.0658,"2026-01-01T00:00:00Z"' in text
    # Numbers are written as numbers: the short form of the double, never rounded.
    assert ",4.5,1234,48.85661400000001,-2.3522219," in text


def test_internal_columns_are_not_exported() -> None:
    header = export_csv_bytes(awkward_table()).split(b"\n", 1)[0].decode()
    assert "level1_id" not in header
    assert "category_ids" not in header


def test_missing_column_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="rating"):
        to_export_table(awkward_table().drop_columns(["rating"]))


def test_write_is_atomic_and_returns_size(tmp_path: Path) -> None:
    target = tmp_path / "export.csv"
    size = write_export_csv(awkward_table(), target)
    assert size == target.stat().st_size
    assert target.read_bytes() == export_csv_bytes(awkward_table())
    assert [p.name for p in tmp_path.iterdir()] == ["export.csv"]


def test_failed_write_leaves_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "export.csv"
    target.write_bytes(b"previous")
    with pytest.raises(ValueError, match="collected_at"):
        write_export_csv(awkward_table().drop_columns(["collected_at"]), target)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["export.csv"]


def test_empty_table_is_header_only(tmp_path: Path) -> None:
    empty = awkward_table().slice(0, 0)
    assert export_csv_bytes(empty) == (CONTRACT_HEADER + "\n").encode()
    assert write_export_csv(empty, tmp_path / "e.csv") == len(CONTRACT_HEADER) + 1


def test_many_slices_keep_row_order_and_one_header(monkeypatch: pytest.MonkeyPatch) -> None:
    # Small slices force many parallel encode tasks (the real slice size is 65,536 rows).
    monkeypatch.setattr(csvexport, "_SLICE_ROWS", 7)
    base = awkward_table()
    n = 500
    indices = pa.array([i % base.num_rows for i in range(n)])
    table = base.take(indices)
    ids = pa.array([f"ChIJ-{i:05d}" for i in range(n)])
    table = table.set_column(0, "place_id", ids)
    rows = list(csv.reader(io.StringIO(export_csv_bytes(table).decode(), newline="")))
    assert rows[0] == list(CSV_COLUMNS)
    assert [r[0] for r in rows[1:]] == ids.to_pylist()
    monkeypatch.undo()
    assert export_csv_bytes(table) == b"".join(
        [export_csv_bytes(table.slice(0, 1)), export_csv_bytes(table.slice(1)).split(b"\n", 1)[1]]
    )


def chunked_table(n: int, chunk: int) -> pa.Table:
    base = awkward_table()
    table = base.take(pa.array([i % base.num_rows for i in range(n)]))
    table = table.set_column(0, "place_id", pa.array([f"ChIJ-{i:05d}" for i in range(n)]))
    return pa.Table.from_batches(table.to_batches(max_chunksize=chunk))


@pytest.mark.parametrize(
    "indices",
    [
        [5, 6, 7, 8, 9, 10],  # contiguous, inside one chunk
        [30, 31, 32, 33, 34, 35, 36, 37],  # contiguous across a chunk boundary
        [0, 3, 17, 33, 34, 61, 62, 99, 250, 499],  # ascending, scattered over many chunks
        [499, 3, 250, 0, 3],  # unsorted, with a repeat
        [],
    ],
)
def test_indices_select_rows_in_order(monkeypatch: pytest.MonkeyPatch, indices: list[int]) -> None:
    monkeypatch.setattr(csvexport, "_SLICE_ROWS", 4)
    table = chunked_table(500, chunk=32)
    assert table.column(0).num_chunks > 10
    expected = export_csv_bytes(table.take(pa.array(indices, pa.int64())))
    assert export_csv_bytes(table, indices=indices) == expected
    assert export_csv_bytes(table, indices=pa.array(indices, pa.int64())) == expected
    assert export_csv_bytes(table, indices=np.asarray(indices, dtype=np.int32)) == expected


def test_write_with_indices(tmp_path: Path) -> None:
    table = chunked_table(300, chunk=50)
    target = tmp_path / "sel.csv"
    size = write_export_csv(table, target, indices=range(1, 300, 3))
    rows = list(csv.reader(io.StringIO(target.read_text("utf-8"), newline="")))
    assert size == target.stat().st_size
    assert [r[0] for r in rows[1:]] == [f"ChIJ-{i:05d}" for i in range(1, 300, 3)]
