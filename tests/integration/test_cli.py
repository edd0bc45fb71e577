"""The ``scoutframe`` command line, driven in-process against the sandbox."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from scoutframe.cli import main
from scoutframe.client import Client
from scoutframe.sandbox import Sandbox

CSV_COLUMNS = [
    "place_id", "name", "email", "phone", "website", "instagram", "facebook", "address", "city",
    "zipcode", "level1_location", "level2_location", "level3_location", "country", "categories",
    "rating", "review_count", "latitude", "longitude", "collected_at",
]


@pytest.fixture
def account_env(
    sandbox_docs: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """A fresh sandbox account configured the way a shell user would: environment variables."""
    account = sandbox_docs.admin.create_account(credits=5_000)
    monkeypatch.setenv("SPHERESCOUT_API_KEY", account["api_key"])
    monkeypatch.setenv("SPHERESCOUT_BASE_URL", sandbox_docs.url)
    monkeypatch.setenv("SPHERESCOUT_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("SCOUTFRAME_PROGRESS", "0")
    return {"id": str(account["id"]), "api_key": account["api_key"]}


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("sandbox", "demo", "search"):
        assert command in out


def test_unknown_command_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serach"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_dry_run_prints_the_plan_and_spends_nothing(
    sandbox_docs: Sandbox, account_env: dict[str, str], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = sandbox_docs.admin.ledger(int(account_env["id"]))
    target = tmp_path / "plumbers.parquet"
    status = main(["search", "-o", str(target), "--countries", "FR", "--category", "Plumber",
                   "--method", "export", "--dry-run"])
    assert status == 0
    out = capsys.readouterr().out
    assert "by export" in out
    assert "credits needed" in out
    assert not target.exists()
    assert sandbox_docs.admin.ledger(int(account_env["id"])) == before


def test_pages_to_parquet_keeps_types(
    sandbox_docs: Sandbox, account_env: dict[str, str], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = tmp_path / "out" / "plumbers.parquet"
    status = main(["search", "-o", str(target), "--countries", "FR,BE", "--category",
                   "Plumber", "--method", "pages"])
    assert status == 0
    captured = capsys.readouterr()
    assert "note: Emails from search pages are masked" in captured.err
    assert "Traceback" not in captured.err
    frame = pd.read_parquet(target)
    with Client(account_env["api_key"], sandbox_docs.url, allow_http=True,
                state_dir=tmp_path / "state") as client:  # fmt: skip
        expected = client.search(countries=["FR", "BE"], category="Plumber").total_count
    assert len(frame) == expected
    assert frame["place_id"].is_unique
    assert set(frame["country"]) <= {"FR", "BE"}
    assert frame["zipcode"].map(lambda value: isinstance(value, str)).all()
    emails = [address for addresses in frame["email"] for address in addresses]
    assert emails
    assert all(re.fullmatch(r"\w\*+@\w\*+\.\w+", address) for address in emails)  # masked
    assert f"wrote {len(frame):,} rows" in captured.out
    provenance = json.loads(pq.read_schema(target).metadata[b"scoutframe"])
    assert provenance["method"] == "pages"
    assert provenance["emails_masked"] is True
    assert account_env["api_key"] not in target.read_bytes().decode("latin-1")
    assert not list(target.parent.glob(".*.tmp")), "no temporary file left behind"


def test_export_to_csv_matches_the_contract_format(
    sandbox_docs: Sandbox, account_env: dict[str, str], tmp_path: Path
) -> None:
    target = tmp_path / "plumbers.csv"
    status = main(["search", "-o", str(target), "--countries", "FR", "--category", "plumber",
                   "--method", "export"])
    assert status == 0
    with target.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == CSV_COLUMNS
    assert any("; " in row["categories"] for row in rows), "lists are joined with '; '"
    assert not any(row["email"].startswith("[") for row in rows)
    assert not any("*" in row["email"] for row in rows), "exports carry real emails"
    ledger = sandbox_docs.admin.ledger(int(account_env["id"]))
    assert -sum(entry["delta"] for entry in ledger if entry["delta"] < 0) == len(rows)


def test_misspelt_category_fails_with_suggestions_and_writes_nothing(
    account_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "x.csv"
    status = main(["search", "-o", str(target), "--countries", "FR", "--category", "Plumbr"])
    assert status == 1
    err = capsys.readouterr().err
    assert "Unknown category 'Plumbr'" in err
    assert "Plumber" in err
    assert account_env["api_key"] not in err
    assert not target.exists()


def test_unsupported_output_suffix_is_refused(
    account_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["search", "-o", str(tmp_path / "x.xlsx"), "--countries", "FR"])
    assert status == 2
    assert ".parquet or .csv" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_demo_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["demo", "--contacts", "5000", "--data-dir", str(tmp_path / "sandbox"),
                   "--no-progress"])
    assert status == 0
    out = capsys.readouterr().out
    for heading in ("Reference data", "Preview", "Plan", "Load it through an export",
                    "dtypes:", "cost:", "Time per phase"):
        assert heading in out, heading
    assert "string[pyarrow]" in out


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--nrows", "-1"], "--nrows"),
        (["--max-credits", "ten"], "--max-credits"),
    ],
)
def test_bad_numbers_are_usage_errors(
    account_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    options: list[str], message: str,
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["search", "-o", str(tmp_path / "x.csv"), "--countries", "FR", *options])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_unknown_column_is_a_clear_usage_error(
    account_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["search", "-o", str(tmp_path / "x.csv"), "--countries", "FR",
                   "--columns", "name,nom"])
    assert status == 2
    err = capsys.readouterr().err
    assert "nom" in err
    assert "Traceback" not in err
    assert not list(tmp_path.iterdir())
