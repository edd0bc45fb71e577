"""The ``scoutframe`` command line, driven in-process against the sandbox."""

from __future__ import annotations

import csv
import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from scoutframe import read_export_csv
from scoutframe.api.client import Client
from scoutframe.cli import in_cli_terms, main
from scoutframe.sandbox import Sandbox
from scoutframe.tables.exportcsv import lists_joined

CSV_COLUMNS = [
    "place_id",
    "name",
    "email",
    "phone",
    "website",
    "instagram",
    "facebook",
    "address",
    "city",
    "zipcode",
    "level1_location",
    "level2_location",
    "level3_location",
    "country",
    "categories",
    "rating",
    "review_count",
    "latitude",
    "longitude",
    "collected_at",
]


@pytest.fixture
def account_env(shell_account: Callable[..., dict[str, Any]]) -> dict[str, str]:
    """A fresh sandbox account configured the way a shell user would: environment variables."""
    account = shell_account()
    return {"id": str(account["id"]), "api_key": account["api_key"]}


@pytest.fixture
def usual_umask() -> Iterator[int]:
    """Run under the umask most systems give users (022): new files are 0644."""
    previous = os.umask(0o022)
    try:
        yield 0o022
    finally:
        os.umask(previous)


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in (
        "sandbox",
        "demo",
        "search",
        "profile",
        "countries",
        "categories",
        "locations",
        "history",
        "exports",
        "keys",
        "cache",
    ):
        assert f"  {command} " in out, command
    assert "130" in out  # the exit statuses are documented


def test_help_imports_nothing_of_the_client() -> None:
    """``scoutframe --help`` costs what ``import scoutframe`` costs, and nothing more."""
    code = (
        "import sys, json, scoutframe\n"
        "before = set(sys.modules)\n"
        "from scoutframe.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    output = subprocess.check_output([sys.executable, "-c", code], text=True)
    added = json.loads(output.splitlines()[-1])
    for heavy in (
        "requests",
        "urllib3",
        "tqdm",
        "scoutframe.api.client",
        "scoutframe.sandbox",
        "scoutframe.cli.search",
        "scoutframe.cache",
        "pyarrow.parquet",
    ):
        assert heavy not in added, heavy


def test_sandbox_is_dispatched_without_the_client() -> None:
    code = (
        "import sys, json\n"
        "from scoutframe.cli import main\n"
        "try:\n    main(['sandbox', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    output = subprocess.check_output([sys.executable, "-c", code], text=True)
    assert "usage: scoutframe sandbox" in output
    loaded = json.loads(output.splitlines()[-1])
    assert "scoutframe.sandbox.server" in loaded
    for name in ("scoutframe.api.client", "scoutframe.api.transport", "requests"):
        assert name not in loaded, name
    done = subprocess.run(
        [sys.executable, "-m", "scoutframe.cli", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.startswith("scoutframe ")


def test_package_keeps_the_old_module_surface() -> None:
    frame = pd.DataFrame({"email": [["a@b.fr", "c@d.fr"], []], "name": ["x", "y"]})
    assert list(lists_joined(frame)["email"]) == ["a@b.fr; c@d.fr", ""]
    assert in_cli_terms("use method='pages'") == "use --method pages"
    script = Path(sys.executable).with_name("scoutframe")
    if script.exists():  # the console entry point scoutframe.cli:main
        done = subprocess.run(
            [str(script), "--version"], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0
        assert done.stdout.startswith("scoutframe ")


def test_unknown_command_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serach"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_dry_run_prints_the_plan_and_spends_nothing(
    sandbox_docs: Sandbox,
    account_env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = sandbox_docs.admin.ledger(int(account_env["id"]))
    target = tmp_path / "plumbers.parquet"
    status = main(
        [
            "search",
            "-o",
            str(target),
            "--countries",
            "FR",
            "--category",
            "Plumber",
            "--method",
            "export",
            "--dry-run",
        ]
    )
    assert status == 0
    out = capsys.readouterr().out
    assert "by export" in out
    assert "credits needed" in out
    assert not target.exists()
    assert sandbox_docs.admin.ledger(int(account_env["id"])) == before


def test_pages_to_parquet_keeps_types(
    sandbox_docs: Sandbox,
    account_env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "plumbers.parquet"
    status = main(
        [
            "search",
            "-o",
            str(target),
            "--countries",
            "FR,BE",
            "--category",
            "Plumber",
            "--method",
            "pages",
        ]
    )
    assert status == 0
    captured = capsys.readouterr()
    assert "note: Emails from search pages are masked" in captured.err
    assert "Traceback" not in captured.err
    frame = pd.read_parquet(target)
    with Client(
        account_env["api_key"], sandbox_docs.url, allow_http=True, state_dir=tmp_path / "state"
    ) as client:
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
    status = main(
        [
            "search",
            "-o",
            str(target),
            "--countries",
            "FR",
            "--category",
            "plumber",
            "--method",
            "export",
        ]
    )
    assert status == 0
    with target.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == CSV_COLUMNS
    assert any("; " in row["categories"] for row in rows), "lists are joined with '; '"
    assert not any(row["email"].startswith("[") for row in rows)
    assert not any("*" in row["email"] for row in rows), "exports carry real emails"
    ledger = sandbox_docs.admin.ledger(int(account_env["id"]))
    assert -sum(entry["delta"] for entry in ledger if entry["delta"] < 0) == len(rows)
    again = read_export_csv(target)  # the export format: read back typed, exactly
    assert len(again) == len(rows)
    assert again["zipcode"].map(lambda value: value is None or isinstance(value, str)).all()


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
    status = main(
        ["demo", "--contacts", "5000", "--data-dir", str(tmp_path / "sandbox"), "--no-progress"]
    )
    assert status == 0
    out = capsys.readouterr().out
    for heading in (
        "Reference data",
        "Preview",
        "Plan",
        "Load it through an export",
        "dtypes:",
        "cost:",
        "Time per phase",
    ):
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
    account_env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    message: str,
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
    status = main(
        ["search", "-o", str(tmp_path / "x.csv"), "--countries", "FR", "--columns", "name,nom"]
    )
    assert status == 2
    err = capsys.readouterr().err
    assert "nom" in err
    assert "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_outputs_get_the_umask_mode_not_0600(
    account_env: dict[str, str],
    tmp_path: Path,
    usual_umask: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A report written for a shared folder is readable there, as any new file would be."""
    for name in ("plumbers.parquet", "plumbers.csv"):
        target = tmp_path / name
        status = main(
            [
                "search",
                "-o",
                str(target),
                "--countries",
                "FR",
                "--category",
                "Plumber",
                "--method",
                "pages",
            ]
        )
        assert status == 0, capsys.readouterr().err
        assert stat.S_IMODE(target.stat().st_mode) == 0o644, name


def test_a_missing_output_directory_is_refused_not_created(
    sandbox_docs: Sandbox,
    account_env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = sandbox_docs.admin.ledger(int(account_env["id"]))
    target = tmp_path / "typo" / "plumbers.csv"
    status = main(
        [
            "search",
            "-o",
            str(target),
            "--countries",
            "FR",
            "--category",
            "Plumber",
            "--method",
            "export",
        ]
    )
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("scoutframe search: ")
    assert "does not exist" in err
    assert f"mkdir -p {target.parent}" in err
    assert "Traceback" not in err
    assert not (tmp_path / "typo").exists()
    assert sandbox_docs.admin.ledger(int(account_env["id"])) == before  # refused before paying


def test_output_is_required_unless_dry_run(
    account_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["search", "--countries", "FR"])
    assert exit_info.value.code == 2
    assert "-o/--output" in capsys.readouterr().err
    assert main(["search", "--countries", "FR", "--category", "Plumber", "--dry-run"]) == 0
    assert "ReadPlan" in capsys.readouterr().out


def test_no_api_key_in_any_output(
    account_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (
        ["profile"],
        ["profile", "--json"],
        ["keys", "list", "--json"],
        [
            "search",
            "-o",
            str(tmp_path / "x.csv"),
            "--countries",
            "FR",
            "--category",
            "Plumber",
            "--method",
            "pages",
            "-v",
        ],
    ):
        assert main(argv) == 0
        captured = capsys.readouterr()
        assert account_env["api_key"] not in captured.out + captured.err, argv
    assert "scoutframe: GET /api/companies" in captured.err  # -v logs requests, not the key
    import logging

    assert not logging.getLogger("scoutframe").handlers  # -v cleaned up after itself
