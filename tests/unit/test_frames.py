"""Unit tests of the contacts schema and its conversions (no sockets)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from scoutframe.models import Provenance
from scoutframe.tables import frames, schema
from scoutframe.tables.exportcsv import iter_csv, read_csv
from scoutframe.tables.frames import records_to_table, to_pandas
from scoutframe.tables.schema import CONTACT_COLUMNS, CONTACT_SCHEMA, SchemaDriftWarning

AWKWARD = {
    "place_id": "0001",
    "name": 'Café "Zoë", Ltd\nsecond line — ünïcode',
    "email": ["a@b.fr", "c,d@e.fr"],
    "phone": ["+33 1 23", "+33 4 56"],
    "website": "",
    "instagram": "",
    "facebook": "https://fb.example/x",
    "address": '1 rue "du Port", 2e',
    "city": "Windhoek",
    "zipcode": "01000",
    "level1_location": "Khomas",
    "level2_location": "TN157",
    "level3_location": "NA",
    "country": "NA",
    "categories": ["Plumber", "Heating, cooling"],
    "rating": None,
    "review_count": 0,
    "latitude": -22.56,
    "longitude": 17.08,
    "collected_at": "2024-05-01T12:00:00Z",
}
PLAIN = {
    **AWKWARD,
    "place_id": "0002",
    "name": "Bob",
    "email": [],
    "phone": [],
    "categories": [],
    "rating": 4.5,
    "review_count": 12,
    "zipcode": "",
    "collected_at": "2024-05-02T08:30:00.250000+00:00",
}


def write_export_csv(
    path: Path, records: list[dict], extra: dict[str, list[str]] | None = None
) -> Path:
    """Write records in the contract's export format (lists joined with '; ')."""
    header = list(CONTACT_COLUMNS) + list(extra or {})
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for i, record in enumerate(records):
            row = []
            for name in CONTACT_COLUMNS:
                value = record[name]
                if isinstance(value, list):
                    value = "; ".join(value)
                row.append("" if value is None else value)
            row += [values[i] for values in (extra or {}).values()]
            writer.writerow(row)
    return path


def test_schema_has_the_contract_columns_in_csv_order():
    assert CONTACT_COLUMNS[0] == "place_id"
    assert CONTACT_COLUMNS[-1] == "collected_at"
    assert len(CONTACT_COLUMNS) == 20
    assert CONTACT_SCHEMA.field("zipcode").type == pa.string()
    assert CONTACT_SCHEMA.field("phone").type == pa.list_(pa.string())
    assert CONTACT_SCHEMA.field("collected_at").type == pa.timestamp("us", tz="UTC")


def test_csv_awkward_values_round_trip(tmp_path):
    table = read_csv(write_export_csv(tmp_path / "x.csv", [AWKWARD, PLAIN]))
    assert table.schema.equals(CONTACT_SCHEMA)
    first, second = table.to_pylist()
    assert first["place_id"] == "0001"
    assert first["name"] == AWKWARD["name"]
    assert first["address"] == AWKWARD["address"]
    assert first["zipcode"] == "01000"
    assert first["country"] == "NA"
    assert first["level3_location"] == "NA"
    assert first["email"] == ["a@b.fr", "c,d@e.fr"]
    assert first["categories"] == ["Plumber", "Heating, cooling"]
    assert first["website"] is None
    assert first["rating"] is None
    assert first["review_count"] == 0
    assert second["email"] == []
    assert second["phone"] == []
    assert second["categories"] == []
    assert second["zipcode"] is None
    assert second["rating"] == 4.5
    assert str(second["collected_at"]) == "2024-05-02 08:30:00.250000+00:00"


def test_pages_and_csv_give_identical_tables(tmp_path):
    from_csv = read_csv(write_export_csv(tmp_path / "x.csv", [AWKWARD, PLAIN]))
    from_records = records_to_table([AWKWARD, PLAIN])
    assert from_records.equals(from_csv)


def test_live_phone_as_string_becomes_one_element_list():
    live = {**PLAIN, "phone": "+1 555 0100"}
    empty = {**PLAIN, "phone": ""}
    table = records_to_table([live, empty])
    assert table.column("phone").to_pylist() == [["+1 555 0100"], []]


def test_missing_fields_become_nulls_of_the_schema_type():
    table = records_to_table([{"place_id": "p", "name": "n"}])
    assert table.schema.equals(CONTACT_SCHEMA)
    row = table.to_pylist()[0]
    assert row["email"] == []
    assert row["rating"] is None
    assert row["collected_at"] is None


def test_naive_timestamps_are_taken_as_utc():
    table = records_to_table([{**PLAIN, "collected_at": "2024-01-01T10:00:00"}])
    assert str(table.column("collected_at")[0]) == "2024-01-01 10:00:00+00:00"


def test_drift_in_records_is_kept_as_strings_and_warned():
    with pytest.warns(SchemaDriftWarning, match="vip"):
        table = records_to_table([{**PLAIN, "vip": True, "tags": {"a": 1}}, PLAIN])
    assert table.column_names[-2:] == ["vip", "tags"]
    assert table.column("vip").to_pylist() == ["True", None]
    assert json.loads(table.column("tags")[0].as_py()) == {"a": 1}


def test_drift_in_csv_is_kept_as_strings_and_warned(tmp_path):
    path = write_export_csv(tmp_path / "x.csv", [AWKWARD, PLAIN], extra={"score": ["007", ""]})
    with pytest.warns(SchemaDriftWarning, match="score"):
        table = read_csv(path)
    assert table.column("score").type == pa.string()
    assert table.column("score").to_pylist() == ["007", None]


def test_columns_selection_and_unknown_column(tmp_path):
    path = write_export_csv(tmp_path / "x.csv", [AWKWARD, PLAIN])
    table = read_csv(path, columns=["zipcode", "place_id", "email"])
    assert table.column_names == ["zipcode", "place_id", "email"]
    assert table.column("email").to_pylist()[1] == []
    with pytest.raises(ValueError, match="zip_code"):
        schema.check_columns(["zip_code"])


def test_iter_csv_yields_exact_chunks_and_honours_nrows(tmp_path):
    records = [{**PLAIN, "place_id": f"{i:05d}", "name": f"n\n{i}"} for i in range(1234)]
    path = write_export_csv(tmp_path / "x.csv", records)
    sizes = [t.num_rows for t in iter_csv(path, chunksize=100)]
    assert sizes == [100] * 12 + [34]
    chunks = list(iter_csv(path, chunksize=100, nrows=250))
    assert [t.num_rows for t in chunks] == [100, 100, 50]
    ids = pa.concat_tables(chunks).column("place_id").to_pylist()
    assert ids == [f"{i:05d}" for i in range(250)]
    assert read_csv(path, nrows=7).num_rows == 7


def test_to_pandas_pyarrow_backend(tmp_path):
    df = to_pandas(records_to_table([AWKWARD, PLAIN]))
    assert all(isinstance(t, pd.ArrowDtype) for t in df.dtypes)
    assert df.loc[0, "zipcode"] == "01000"
    assert list(df["email"].iloc[1]) == []
    assert list(df["categories"].iloc[0]) == ["Plumber", "Heating, cooling"]
    assert pd.isna(df.loc[0, "rating"])


def test_to_pandas_numpy_nullable_backend():
    df = to_pandas(records_to_table([AWKWARD, PLAIN]), dtype_backend="numpy_nullable")
    assert str(df["review_count"].dtype) == "Int32"
    assert str(df["rating"].dtype) == "Float64"
    assert str(df["collected_at"].dtype) == "datetime64[us, UTC]"
    assert isinstance(df["zipcode"].dtype, pd.StringDtype)
    assert df.loc[0, "email"] == ["a@b.fr", "c,d@e.fr"]
    assert df.loc[1, "phone"] == []
    assert list(df.columns) == list(CONTACT_COLUMNS)
    with pytest.raises(ValueError, match="dtype_backend"):
        to_pandas(records_to_table([PLAIN]), dtype_backend="numpy")  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["pyarrow", "numpy_nullable"])
def test_frames_from_both_backends_return_to_the_schema(backend):
    table = records_to_table([AWKWARD, PLAIN])
    back = frames.table_from_pandas(to_pandas(table, dtype_backend=backend))
    assert back.schema.equals(CONTACT_SCHEMA)
    assert back.equals(table)


def test_index_start_and_provenance_attach():
    prov = Provenance(
        filters={"countries": ["NA"]},
        search_id="s",
        total_count=2,
        method="pages",
        emails_masked=True,
        fetched_at="2024-01-01T00:00:00+00:00",
    )
    df = to_pandas(records_to_table([AWKWARD, PLAIN]), provenance=prov, index_start=100)
    assert list(df.index) == [100, 101]
    assert Provenance.from_dict(df.attrs["scoutframe"]) == prov


def test_provenance_is_json_safe_and_round_trips():
    prov = Provenance(
        filters={"countries": ["FR"], "email": ["true"]},
        search_id="srch_1",
        total_count=10,
        method="export",
        credits_spent=10,
        task_id="task_1",
        history_id=3,
        fetched_at="2024-01-01T00:00:00+00:00",
        api_origin="http://127.0.0.1:1",
        library_version="0.1.0",
    )
    text = json.dumps(prov.to_dict())
    data = json.loads(text)
    assert data["version"] == Provenance.SCHEMA_VERSION
    assert Provenance.from_dict({**data, "future_key": 1}) == prov


def test_to_polars_keeps_lists_and_strings():
    table = records_to_table([AWKWARD, PLAIN])
    pl_df = frames.to_polars(to_pandas(table))
    assert pl_df.height == 2
    assert pl_df["zipcode"].to_list() == ["01000", None]
    assert pl_df["email"].to_list()[0] == ["a@b.fr", "c,d@e.fr"]
    assert frames.to_polars(table)["country"].to_list() == ["NA", "NA"]


def test_empty_table_has_the_schema():
    assert schema.empty_table().schema.equals(CONTACT_SCHEMA)
    assert schema.empty_table(["email"]).column_names == ["email"]


# -- the df.spherescout accessor ------------------------------------------------------------


@pytest.fixture
def contacts_frame():
    from scoutframe import register_pandas

    register_pandas()
    prov = Provenance(search_id="s", method="pages", emails_masked=True)
    return to_pandas(records_to_table([AWKWARD, PLAIN]), provenance=prov)


def test_accessor_rejects_frames_without_place_id(contacts_frame):
    with pytest.raises(AttributeError, match="place_id"):
        _ = pd.DataFrame({"a": [1]}).spherescout
    assert not hasattr(pd.DataFrame({"a": [1]}), "spherescout")


def test_accessor_provenance_and_conversions(contacts_frame):
    acc = contacts_frame.spherescout
    assert acc.provenance.search_id == "s"
    assert acc.emails_masked is True
    assert acc.to_arrow().schema.equals(CONTACT_SCHEMA)
    assert acc.to_polars()["zipcode"].to_list() == ["01000", None]
    assert contacts_frame.drop(columns=["email"]).assign(place_id="x").spherescout.provenance


def test_accessor_without_provenance_is_none():
    from scoutframe import register_pandas

    register_pandas()
    df = to_pandas(records_to_table([PLAIN]))
    assert df.spherescout.provenance is None
    assert df.spherescout.emails_masked is False


@pytest.mark.parametrize("backend", ["pyarrow", "numpy_nullable"])
def test_accessor_helpers(backend):
    from scoutframe import register_pandas

    register_pandas()
    df = to_pandas(records_to_table([AWKWARD, PLAIN]), dtype_backend=backend)
    emails = df.spherescout.explode_emails()
    assert emails["email"].tolist() == ["a@b.fr", "c,d@e.fr"]
    assert emails["place_id"].tolist() == ["0001", "0001"]
    phones = df.spherescout.with_primary_phone()
    assert phones["primary_phone"].iloc[0] == "+33 1 23"
    assert pd.isna(phones["primary_phone"].iloc[1])
    assert "primary_phone" not in df.columns


def test_register_pandas_exposes_the_same_function():
    from scoutframe import register_pandas
    from scoutframe.read import read_spherescout

    register_pandas()
    assert pd.read_spherescout is read_spherescout


def test_provenance_survives_copy_slicing_and_concat_of_one_read(contacts_frame):
    meta = contacts_frame.attrs["scoutframe"]
    assert meta["search_id"] == "s"
    kept = [
        contacts_frame.copy(),
        contacts_frame.iloc[1:],
        contacts_frame[contacts_frame["place_id"] == "0001"],
        contacts_frame[["place_id", "email"]],
        contacts_frame.head(1),
        # the chunks of one read carry equal attrs, so their concatenation keeps them
        pd.concat([contacts_frame.iloc[:1], contacts_frame.iloc[1:]]),
    ]
    for frame in kept:
        assert frame.attrs["scoutframe"] == meta
        assert frame.spherescout.provenance.search_id == "s"


def test_concat_of_different_reads_drops_the_provenance(contacts_frame):
    # documented in read_spherescout's Returns: pandas keeps attrs only when all are equal
    other = contacts_frame.copy()
    Provenance(search_id="t", method="export").attach(other)
    joined = pd.concat([contacts_frame, other])
    assert "scoutframe" not in joined.attrs
    assert joined.spherescout.provenance is None


def test_warnings_point_at_the_callers_line():
    with pytest.warns(SchemaDriftWarning) as caught:
        records_to_table([{**PLAIN, "brand_new": 1}])
    assert caught[0].filename == __file__


def test_contact_schema_matches_the_sandboxs_for_the_contract_columns() -> None:
    """The client's schema and the emulator's agree on the 20 contract columns, in CSV order."""
    from scoutframe.sandbox import dataset

    sandbox_fields = [dataset.CONTACT_SCHEMA.field(name) for name in dataset.CONTACT_COLUMNS]
    assert [f.name for f in sandbox_fields] == list(schema.CONTACT_COLUMNS)
    assert len(schema.CONTACT_COLUMNS) == 20
    for field in sandbox_fields:
        assert schema.CONTACT_SCHEMA.field(field.name).type == field.type, field.name
