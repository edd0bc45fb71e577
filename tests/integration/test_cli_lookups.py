"""The everyday lookups over the sandbox: a table by default, one JSON document with --json.

``profile``, ``countries``, ``categories``, ``locations``, ``history``, ``exports list |
resume`` (and Ctrl-C during a paid read), ``keys list | create | revoke``.
"""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_run import cli

from scoutframe import read_export_csv
from scoutframe.sandbox import Sandbox

ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)$")


@pytest.fixture
def account(shell_account: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """A fresh sandbox account, configured through the environment as a shell user would."""
    return shell_account()


def table(out: str) -> tuple[list[str], list[str]]:
    """The header's column names and the data lines of a printed table."""
    lines = out.rstrip("\n").splitlines()
    return lines[0].split(), lines[1:]


def test_profile(account: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = cli(capsys, account, "profile")
    assert re.search(r"^credits:\s+5,000$", out, re.MULTILINE)
    assert re.search(rf"^email:\s+{re.escape(account['email'])}$", out, re.MULTILINE)
    assert "none: only --method export spends" in out
    out, _ = cli(capsys, account, "profile", "--json")
    data = json.loads(out)
    assert data["credits"] == 5_000
    assert data["id"] == account["id"]
    assert data["default_budget"] is None
    assert ISO_TIME.match(data["date_joined"])


def test_countries(account: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = cli(capsys, account, "countries")
    header, lines = table(out)
    assert header == ["code", "name"]
    assert any(re.fullmatch(r"FR\s+France", line) for line in lines)
    assert any(line.startswith("NA ") for line in lines)  # Namibia stays "NA"
    data = json.loads(cli(capsys, account, "countries", "--json")[0])
    assert {"code": "NA", "name": "Namibia"} in data
    assert len(data) == len(lines)


def test_categories(account: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = cli(capsys, account, "categories", "plumb", "--limit", "3")
    header, lines = table(out)
    assert header == ["id", "name", "gcid"]
    assert re.fullmatch(r"8059\s+Plumber\s+gcid:plumber", lines[0])
    assert len(lines) <= 3
    data = json.loads(cli(capsys, account, "categories", "plumber", "--json")[0])
    assert data[0]["id"] == 8059
    assert data[0]["name"] == "Plumber"
    out, _ = cli(capsys, account, "categories", "zzzqqqxxx")
    assert out.strip() == "no category matches 'zzzqqqxxx'"
    _, err = cli(capsys, account, "categories", "x", "--limit", "0", status=2)
    assert "--limit" in err


def test_locations(account: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = cli(capsys, account, "locations", "Paris", "--country", "FR")
    header, lines = table(out)
    assert header == ["id", "name", "type", "country", "parent_id"]
    assert any(re.search(r"\bParis\s+level3\s+FR\b", line) for line in lines)
    data = json.loads(cli(capsys, account, "locations", "Paris", "--level", "3", "--json")[0])
    assert data
    assert {row["type"] for row in data} == {"level3"}
    paris = next(row for row in data if row["name"] == "Paris" and row["country"] == "FR")
    assert isinstance(paris["id"], int)
    _, err = cli(capsys, account, "locations", "Paris", "--level", "4", status=2)
    assert "invalid choice" in err


def test_history_and_exports_list(
    account: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = cli(capsys, account, "history")
    assert out.strip() == "no exports yet"
    assert json.loads(cli(capsys, account, "history", "--json")[0]) == []
    cli(
        capsys,
        account,
        "search",
        "-o",
        str(tmp_path / "p.csv"),
        "--countries",
        "FR",
        "--category",
        "Plumber",
        "--method",
        "export",
    )
    out, _ = cli(capsys, account, "history")
    header, lines = table(out)
    assert header[:4] == ["id", "kind", "status", "row_count"]
    assert len(lines) == 1
    assert "--category 8059 --countries FR" in lines[0]
    assert "UTC" in lines[0]
    (entry,) = json.loads(cli(capsys, account, "history", "--json")[0])
    assert entry["kind"] == "full"
    assert ISO_TIME.match(entry["created_at"])
    assert "download_url" not in entry  # a signed URL is a credential of sorts
    out, _ = cli(capsys, account, "exports", "list")
    assert out.startswith("no export waiting")  # delivered: no longer waiting
    (job,) = json.loads(cli(capsys, account, "exports", "list", "--all", "--json")[0])
    assert job["state"] == "done"
    assert job["lead_count"] == entry["row_count"]
    assert ISO_TIME.match(job["created_at"])


def test_ctrl_c_during_a_paid_read_then_resume_without_paying_again(
    sandbox_docs: Sandbox,
    account: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from scoutframe.api.jobs import ExportJob

    def interrupted(self: ExportJob, *args: Any, **kwargs: Any) -> Path:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(ExportJob, "download", interrupted)
        out, err = cli(
            capsys,
            account,
            "search",
            "-o",
            str(tmp_path / "p.csv"),
            "--countries",
            "FR",
            "--category",
            "Plumber",
            "--method",
            "export",
            status=130,
        )
    assert out == ""
    assert err.rstrip().endswith("scoutframe search: interrupted")
    match = re.search(r"scoutframe search: note: export (\S+) is paid for", err)
    assert match, err
    job_id = match.group(1)
    assert f"`scoutframe exports resume {job_id} -o FILE.csv`" in err
    assert "read_spherescout" not in err
    assert "client." not in err
    assert not (tmp_path / "p.csv").exists()
    paid = [e["delta"] for e in sandbox_docs.admin.ledger(account["id"]) if e["delta"] < 0]
    assert len(paid) == 1

    out, _ = cli(capsys, account, "exports", "list")
    header, lines = table(out)
    assert header[0] == "job_id"
    assert lines[0].startswith(job_id)
    target = tmp_path / "resumed.csv"
    out, _ = cli(capsys, account, "exports", "resume", job_id, "-o", str(target))
    assert f"downloaded export {job_id}" in out
    assert "no credits spent" in out
    frame = read_export_csv(target)
    assert len(frame) == -paid[0]
    assert stat.S_IMODE(target.stat().st_mode) & 0o044  # a report, not a private file
    again = [e["delta"] for e in sandbox_docs.admin.ledger(account["id"]) if e["delta"] < 0]
    assert again == paid  # nothing charged again
    data = json.loads(
        cli(capsys, account, "exports", "resume", job_id, "-o", str(target), "--json")[0]
    )
    assert data["job_id"] == job_id
    assert data["credits_spent"] == 0
    _, err = cli(
        capsys,
        account,
        "exports",
        "resume",
        job_id,
        "-o",
        str(tmp_path / "missing" / "x.csv"),
        status=2,
    )
    assert "does not exist" in err


def test_keys_create_then_revoke(
    account: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = cli(capsys, account, "keys", "list")
    header, lines = table(out)
    assert header == ["id", "name", "prefix", "created", "expiry"]
    assert len(lines) == 1
    out, err = cli(capsys, account, "keys", "create", "--name", "ci", "--expiry", "2031-01-31")
    first_line, new_key = out.strip().splitlines()
    assert "'ci'" in first_line
    assert "2031-01-31" in first_line
    assert re.fullmatch(r"[0-9a-f]{64}", new_key)
    assert "only time the full key is shown" in err
    key_id = int(re.search(r"created API key (\d+)", first_line).group(1))  # type: ignore[union-attr]
    listed = json.loads(cli(capsys, account, "keys", "list", "--json")[0])
    assert {row["id"] for row in listed} >= {key_id}
    assert all("key" not in row for row in listed)  # only the prefix, ever again
    mine = next(row for row in listed if row["id"] == key_id)
    assert mine["prefix"] == new_key[:8]
    assert ISO_TIME.match(mine["expiry"])
    assert new_key not in json.dumps(listed)
    out, _ = cli(capsys, account, "keys", "revoke", str(key_id))
    assert out.strip() == f"revoked API key {key_id}"
    assert key_id not in {
        row["id"] for row in json.loads(cli(capsys, account, "keys", "list", "--json")[0])
    }
    _, err = cli(capsys, account, "keys", "revoke", str(key_id), status=1)
    assert err.startswith("scoutframe keys revoke: 404")
    created = json.loads(cli(capsys, account, "keys", "create", "--json")[0])
    assert re.fullmatch(r"[0-9a-f]{64}", created["key"])
    cli(capsys, account, "keys", "revoke", str(created["id"]), "--json")
    _, err = cli(capsys, account, "keys", "create", "--expiry", "soon", status=2)
    assert "ISO-8601" in err
