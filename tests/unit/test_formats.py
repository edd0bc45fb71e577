"""Frames that come back intact: Parquet, the export CSV and Excel (scoutframe.tables)."""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import scoutframe
from scoutframe.errors import ArgumentError
from scoutframe.models import PROVENANCE_ATTR, Provenance
from scoutframe.read import read_export_csv
from scoutframe.tables import excel, exportcsv, frames, parquet
from scoutframe.tables.schema import CONTACT_COLUMNS, LIST_COLUMNS

BACKENDS = ["pyarrow", "numpy_nullable"]
PROVENANCE = Provenance(
    search_id="s-1",
    method="export",
    credits_spent=3,
    history_id=7,
    filters={"countries": ["NA", "FR"]},
    fetched_at="2025-01-02T03:04:05Z",
)
RECORDS = [
    {
        "place_id": "p3",
        "name": 'Chez "Léon"\nBistro, Windhoek',
        "email": ["a@b.fr", "c@d.fr"],
        "phone": [],
        "zipcode": "01000",
        "country": "NA",
        "city": "Windhoek",
        "categories": ["Restaurant"],
        "rating": None,
        "review_count": 12,
        "latitude": -22.5594,
        "longitude": 17.0832,
        "collected_at": "2024-05-06T07:08:09.123456Z",
    },
    {
        "place_id": "p1",
        "name": "Zoë; l'Atelier",
        "email": [],
        "phone": ["+33 1 23 45 67 89"],
        "website": "https://x.fr/a,b?c=1",
        "zipcode": "75001",
        "country": "FR",
        "rating": 4.5,
        "review_count": None,
        "latitude": 0.1,
        "longitude": 1 / 3,
        "categories": ["Plumber", "Heating"],
        "collected_at": "2023-01-01T00:00:00Z",
    },
    {"place_id": "p2"},  # everything else missing, collected_at too
]


def contacts_frame(backend: str) -> pd.DataFrame:
    """The frame read_spherescout would return for these records."""
    table = frames.records_to_table(RECORDS)
    return frames.to_pandas(table, dtype_backend=backend, provenance=PROVENANCE)  # type: ignore[arg-type]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


# --------------------------------------------------------------------------------------------
# Parquet


@pytest.mark.parametrize("backend", BACKENDS)
def test_parquet_round_trip_is_exact(tmp_path: Path, backend: str) -> None:
    df = contacts_frame(backend)
    path = parquet.to_parquet(df, tmp_path / "c.parquet")
    back = parquet.read_parquet(path, dtype_backend=backend)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(back, df)
    assert back.attrs == df.attrs
    assert back.spherescout.provenance == PROVENANCE
    assert leftovers(tmp_path) == []
    # the other backend reads it too, as scoutframe would convert the same table
    other = "numpy_nullable" if backend == "pyarrow" else "pyarrow"
    pd.testing.assert_frame_equal(
        parquet.read_parquet(path, dtype_backend=other),  # type: ignore[arg-type]
        contacts_frame(other),
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_plain_pandas_read_parquet_works(tmp_path: Path, backend: str) -> None:
    df = contacts_frame(backend)
    path = parquet.to_parquet(df, tmp_path / "c.parquet")
    plain = pd.read_parquet(path)  # no TypeError about 'list<item: string>[pyarrow]'
    assert plain.attrs == df.attrs  # pandas restores attrs from the file
    scalars = [c for c in df.columns if c not in LIST_COLUMNS]
    pd.testing.assert_frame_equal(plain[scalars], df[scalars])  # exact scalar dtypes
    for name in LIST_COLUMNS:  # lists: object columns of NumPy arrays
        assert plain[name].dtype == object
        assert [list(v) for v in plain[name]] == [list(v) for v in df[name]]


def test_read_parquet_reads_files_of_dataframe_to_parquet(tmp_path: Path) -> None:
    df = contacts_frame("pyarrow")
    df.to_parquet(tmp_path / "pandas.parquet")  # what a user does first
    back = parquet.read_parquet(tmp_path / "pandas.parquet")
    pd.testing.assert_frame_equal(back, df)
    assert back.attrs == df.attrs


def test_read_parquet_columns_and_errors(tmp_path: Path) -> None:
    path = parquet.to_parquet(contacts_frame("pyarrow"), tmp_path / "c.parquet")
    back = parquet.read_parquet(path, columns=["zipcode", "place_id"])
    assert list(back.columns) == ["zipcode", "place_id"]
    assert back["zipcode"].tolist()[:2] == ["01000", "75001"]
    assert back["zipcode"].isna().tolist() == [False, False, True]
    assert back.attrs[PROVENANCE_ATTR] == PROVENANCE.to_dict()
    with pytest.raises(ArgumentError, match=r"no column\(s\) \['zip'\]"):
        parquet.read_parquet(path, columns=["zip"])
    with pytest.raises(ArgumentError, match="is not a file"):
        parquet.read_parquet(tmp_path)
    with pytest.raises(ArgumentError, match="dtype_backend"):
        parquet.read_parquet(path, dtype_backend="numpy")  # type: ignore[arg-type]


def test_write_table_metadata_and_modes(tmp_path: Path) -> None:
    table = frames.with_provenance(frames.records_to_table(RECORDS), PROVENANCE)
    shared = parquet.write_table(table, tmp_path / "shared.parquet")
    private = parquet.write_table(table, tmp_path / "private.parquet", private=True)
    mask = os.umask(0)
    os.umask(mask)
    assert shared.stat().st_mode & 0o777 == 0o666 & ~mask
    assert private.stat().st_mode & 0o777 == 0o600
    schema = pq.read_schema(shared)
    assert frames.provenance_of(schema) == PROVENANCE
    assert table.equals(pq.read_table(shared))
    plain = pd.read_parquet(shared)  # a table's file reads like an Arrow-backed frame
    assert plain.attrs == {PROVENANCE_ATTR: PROVENANCE.to_dict()}
    assert plain["country"].dtype == pd.ArrowDtype(pa.string())
    pd.testing.assert_frame_equal(parquet.read_parquet(shared), contacts_frame("pyarrow"))


def test_to_parquet_refusals_leave_nothing(tmp_path: Path) -> None:
    df = contacts_frame("pyarrow")
    df.attrs["when"] = datetime(2025, 1, 1)
    with pytest.raises(ArgumentError, match=r"df.attrs \['when'\] cannot be stored"):
        parquet.to_parquet(df, tmp_path / "c.parquet")
    with pytest.raises(ArgumentError, match="does not exist; create it first"):
        parquet.to_parquet(contacts_frame("pyarrow"), tmp_path / "no" / "c.parquet")
    with pytest.raises(ArgumentError, match="takes a DataFrame"):
        parquet.to_parquet(frames.records_to_table(RECORDS), tmp_path / "c.parquet")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# The export CSV


@pytest.mark.parametrize("backend", BACKENDS)
def test_csv_round_trip_through_read_export_csv(tmp_path: Path, backend: str) -> None:
    df = contacts_frame(backend)
    path = exportcsv.to_csv(df, tmp_path / "c.csv")
    back = read_export_csv(path, dtype_backend=backend)  # type: ignore[arg-type]
    expected = df.copy()
    expected.attrs = {}  # a CSV has no place for the provenance
    pd.testing.assert_frame_equal(back, expected)
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == ",".join(CONTACT_COLUMNS)
    for piece in (
        '"01000"',
        '"NA"',
        '"a@b.fr; c@d.fr"',
        '"2024-05-06T07:08:09.123456Z"',
        '"2023-01-01T00:00:00Z"',
        '"Chez ""Léon""\nBistro, Windhoek"',
    ):
        assert piece in text
    assert text.endswith('"p2",,,,,,,,,,,,,,,,,,,\n')  # empty values are empty fields
    assert leftovers(tmp_path) == []


def test_csv_writes_the_contract_order(tmp_path: Path) -> None:
    df = contacts_frame("pyarrow")
    shuffled = df[list(reversed(df.columns))]
    back = read_export_csv(exportcsv.to_csv(shuffled, tmp_path / "c.csv"))
    assert list(back.columns) == list(CONTACT_COLUMNS)
    expected = df.copy()
    expected.attrs = {}
    pd.testing.assert_frame_equal(back, expected)


@pytest.mark.parametrize(
    ("element", "why"),
    [("a@b.fr; c@d.fr", "contains the list separator"), ("", "is empty or missing")],
)
def test_csv_refuses_list_elements_that_cannot_round_trip(
    tmp_path: Path, element: str, why: str
) -> None:
    df = contacts_frame("numpy_nullable")
    df.index = pd.Index([10, 11, 12])
    df.at[11, "email"] = ["ok@x.fr", element]
    with pytest.raises(ArgumentError, match=f"column 'email', row 11: .* {why}"):
        exportcsv.to_csv(df, tmp_path / "c.csv")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_reader_check_refuses_dataframe_to_csv_files(tmp_path: Path, backend: str) -> None:
    df = contacts_frame(backend)
    df.to_csv(tmp_path / "pandas.csv", index=False)  # lists written as ['a@b.fr', ...]
    refusal = (
        r"Column '(email|phone|categories)', row 0 .*DataFrame\.to_csv.*"
        r"df\.spherescout\.to_csv\(path\)"
    )
    for read in (
        lambda p: exportcsv.read_csv(p, warn_drift=False),
        lambda p: list(exportcsv.iter_csv(p, chunksize=2, warn_drift=False)),
        scoutframe.read_export_csv,
    ):
        with pytest.raises(ArgumentError, match=refusal):
            read(tmp_path / "pandas.csv")
    raw = pa.table({"phone": ["+33 1", "[]"]})  # strings, as before the list split
    with pytest.raises(ArgumentError, match=r"Column 'phone', row 1 .*'\[\]'"):
        exportcsv.check_not_list_repr(raw)


def test_reader_check_passes_export_files(tmp_path: Path) -> None:
    path = exportcsv.to_csv(contacts_frame("pyarrow"), tmp_path / "c.csv")
    table = exportcsv.read_csv(path)
    assert exportcsv.check_not_list_repr(table) is table
    brackets = pa.table({"categories": pa.array([["[Bar] and grill"], ["x"]])})
    assert exportcsv.check_not_list_repr(brackets) is brackets  # a bracket is not a repr


# --------------------------------------------------------------------------------------------
# Excel


@pytest.mark.parametrize("backend", BACKENDS)
def test_excel_values_header_and_text_zip_codes(tmp_path: Path, backend: str) -> None:
    import openpyxl

    df = contacts_frame(backend)
    path = excel.to_excel(df, tmp_path / "c.xlsx")
    sheet = openpyxl.load_workbook(path).active
    rows = list(sheet.iter_rows())
    header = [cell.value for cell in rows[0]]
    assert header == [*CONTACT_COLUMNS[:-1], "collected_at (UTC)"]
    values = [{h: cell for h, cell in zip(header, row, strict=True)} for row in rows[1:]]
    first = values[0]
    assert first["zipcode"].value == "01000"
    assert first["zipcode"].data_type == "s"  # text, not the number 1000
    assert first["zipcode"].number_format == "@"
    assert first["country"].value == "NA"
    assert first["name"].value == 'Chez "Léon"\nBistro, Windhoek'
    assert first["email"].value == "a@b.fr; c@d.fr"
    assert first["phone"].value is None
    assert first["rating"].value is None
    assert first["review_count"].value == 12
    assert first["latitude"].value == -22.5594
    # naive UTC; Excel keeps milliseconds
    assert first["collected_at (UTC)"].value == datetime(2024, 5, 6, 7, 8, 9, 123000)
    assert values[1]["collected_at (UTC)"].value == datetime(2023, 1, 1)
    assert values[1]["categories"].value == "Plumber; Heating"
    assert [cell.value for cell in rows[3]] == ["p2"] + [None] * 19
    assert leftovers(tmp_path) == []


def test_excel_without_openpyxl_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # import openpyxl -> ImportError
    with pytest.raises(ImportError, match=r'pip install "scoutframe\[excel\]"'):
        excel.to_excel(contacts_frame("pyarrow"), tmp_path / "c.xlsx")
    assert list(tmp_path.iterdir()) == []
