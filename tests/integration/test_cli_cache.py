"""``scoutframe search --cache`` and ``scoutframe cache ...``; ``--partition-by`` datasets."""

from __future__ import annotations

import io
import json
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads
import pytest
from cli_run import cli

from scoutframe.sandbox import Sandbox

PLUMBERS = ("--countries", "FR", "--category", "Plumber")


@pytest.fixture
def account(
    shell_account: Callable[..., dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """A fresh sandbox account configured through the environment; the cache in tmp_path."""
    created = shell_account(credits=50_000)
    # the commands are given --cache-dir: the environment's directory must stay unused
    monkeypatch.setenv("SCOUTFRAME_CACHE_DIR", str(tmp_path / "env-cache"))
    return {**created, "cache": tmp_path / "cache"}


@pytest.fixture
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def debits(sb: Sandbox, account: dict[str, Any]) -> list[int]:
    return [int(e["delta"]) for e in sb.admin.ledger(account["id"]) if int(e["delta"]) < 0]


def test_search_cache_then_every_cache_command(
    sandbox_docs: Sandbox,
    account: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cache = ("--cache-dir", str(account["cache"]))
    out, _ = cli(capsys, account, "cache", "list", *cache)
    assert out.strip() == f"the cache at {account['cache']} is empty"
    first = tmp_path / "first.parquet"
    out, _ = cli(
        capsys,
        account,
        "search",
        "-o",
        str(first),
        *PLUMBERS,
        "--method",
        "export",
        "--cache",
        *cache,
    )
    match = re.search(r"wrote ([\d,]+) rows .*cache entry (\w{12}), credits spent ([\d,]+)", out)
    assert match, out
    rows, key, spent = int(match[1].replace(",", "")), match[2], int(match[3].replace(",", ""))
    assert spent == rows > 0
    paid = debits(sandbox_docs, account)
    out, _ = cli(
        capsys,
        account,
        "search",
        "-o",
        str(tmp_path / "again.csv"),
        *PLUMBERS,
        "--cache",
        "--max-age",
        "12h",
        *cache,
    )
    assert f"cache entry {key}, credits spent 0" in out
    assert debits(sandbox_docs, account) == paid  # served from the cache

    out, _ = cli(capsys, account, "cache", "list", *cache)
    header, *lines = out.strip().splitlines()
    assert header.split() == ["key", "method", "rows", "size", "refreshed", "filters"]
    assert len(lines) == 1
    assert lines[0].startswith(f"{key}  export")
    assert lines[0].endswith("--category 8059 --countries FR")
    (entry,) = json.loads(cli(capsys, account, "cache", "list", "--json", *cache)[0])
    assert entry["key"].startswith(key)
    assert entry["filters"] == {"category": [8059], "countries": ["FR"]}
    assert entry["rows"] == rows
    assert re.match(r"^\d{4}-\d\d-\d\dT", entry["refreshed"])

    out, _ = cli(capsys, account, "cache", "show", key[:6], *cache)
    assert re.search(rf"^key:\s+{entry['key']}$", out, re.MULTILINE)
    assert (
        "scoutframe search -o FILE.parquet --category 8059 --countries FR --method export "
        "--cache" in out
    )
    assert re.search(r"^place_id\s+name\s+city\s+country", out, re.MULTILINE)
    shown = json.loads(
        cli(capsys, account, "cache", "show", key, "--head", "2", "--json", *cache)[0]
    )
    assert len(shown["head"]) == 2
    assert shown["head"][0]["country"] == "FR"
    _, err = cli(capsys, account, "cache", "show", "zz", *cache, status=1)
    assert "`scoutframe cache list` shows the keys" in err

    out, _ = cli(capsys, account, "cache", "verify", *cache)
    assert re.search(rf"^{key}\s+yes\s*$", out, re.MULTILINE)
    assert json.loads(cli(capsys, account, "cache", "verify", "--json", *cache)[0])[0]["ok"]

    out, _ = cli(capsys, account, "cache", "refresh", key, *cache)
    assert f"cache entry {key} had nothing new" in out
    assert "credits spent 0" in out
    assert debits(sandbox_docs, account) == paid

    out, _ = cli(capsys, account, "cache", "prune", "--older-than", "30d", *cache)
    assert out.strip() == "nothing to remove"
    out, _ = cli(capsys, account, "cache", "prune", "--max-bytes", "1k", "--json", *cache)
    assert json.loads(out) == {"removed": [entry["key"]]}
    assert json.loads(cli(capsys, account, "cache", "list", "--json", *cache)[0]) == []


def test_refreshing_an_export_entry_pays_the_delta_only_with_a_budget(
    sandbox_docs: Sandbox,
    account: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out, _ = cli(
        capsys,
        account,
        "search",
        "-o",
        str(tmp_path / "us.parquet"),
        "--countries",
        "US",
        "--method",
        "export",
        "--cache",
    )  # the cache from SCOUTFRAME_CACHE_DIR
    key = re.search(r"cache entry (\w{12})", out)[1]  # type: ignore[index]
    paid = debits(sandbox_docs, account)
    sandbox_docs.admin.add_contacts(400)
    out, _ = cli(capsys, account, "cache", "refresh", key, "--dry-run")
    cost = int(re.search(r"a refresh now costs ([\d,]+) credits", out)[1].replace(",", ""))  # type: ignore[index]
    assert cost > 0
    _, err = cli(capsys, account, "cache", "refresh", key, status=1)
    assert f"Pass --max-credits {cost}" in err
    assert "max_credits" not in err
    _, err = cli(capsys, account, "cache", "refresh", key, "--max-credits", str(cost - 1), status=1)
    assert f"more than --max-credits {cost - 1}" in err
    assert debits(sandbox_docs, account) == paid  # refused: nothing spent
    out, _ = cli(capsys, account, "cache", "refresh", key, "--max-credits", str(cost))
    assert f"took a delta of {cost:,} rows" in out
    assert f"credits spent {cost:,}" in out
    assert debits(sandbox_docs, account) == [*paid, -cost]


def test_cache_clear_asks_first(
    account: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli(
        capsys,
        account,
        "search",
        "-o",
        str(tmp_path / "p.csv"),
        *PLUMBERS,
        "--method",
        "pages",
        "--cache",
    )
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    _, err = cli(capsys, account, "cache", "clear", status=1)
    assert "Delete the 1 entry" in err
    assert "nothing was removed" in err
    assert len(json.loads(cli(capsys, account, "cache", "list", "--json")[0])) == 1
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    out, _ = cli(capsys, account, "cache", "clear")
    assert out.startswith("removed 1 cache entry")
    cli(
        capsys,
        account,
        "search",
        "-o",
        str(tmp_path / "p.csv"),
        *PLUMBERS,
        "--method",
        "pages",
        "--cache",
    )
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no answer at all: no
    cli(capsys, account, "cache", "clear", status=1)
    out, err = cli(capsys, account, "cache", "clear", "--yes")
    assert out.startswith("removed 1 cache entry")
    assert err == ""
    key = re.search(
        r"cache entry (\w{12})",
        cli(
            capsys,
            account,
            "search",
            "-o",
            str(tmp_path / "p.csv"),
            *PLUMBERS,
            "--method",
            "pages",
            "--cache",
        )[0],
    )[1]  # type: ignore[index]
    out, _ = cli(capsys, account, "cache", "remove", key)
    assert out.startswith(f"removed cache entry {key}")
    _, err = cli(capsys, account, "cache", "remove", key, status=1)
    assert "`scoutframe cache list`" in err


def test_partition_by_country_reads_back_with_pyarrow_dataset(
    sandbox_docs: Sandbox,
    account: dict[str, Any],
    tmp_path: Path,
    usual_umask: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = tmp_path / "contacts"
    out, _ = cli(
        capsys,
        account,
        "search",
        "-o",
        f"{target}/",
        "--partition-by",
        "country",
        "--countries",
        "NA,NZ",
        "--method",
        "export",
        "--chunksize",
        "40",
    )  # several chunks: memory stays bounded
    rows = int(re.search(r"wrote ([\d,]+) rows", out)[1].replace(",", ""))  # type: ignore[index]
    assert f"{target}/ partitioned by country" in out
    assert sorted(p.name for p in target.iterdir() if p.is_dir()) == ["country=NA", "country=NZ"]
    dataset = pads.dataset(
        target,
        format="parquet",
        partitioning=pads.partitioning(pa.schema([("country", pa.string())]), flavor="hive"),
    )
    table = dataset.to_table()
    assert table.num_rows == rows == -sum(debits(sandbox_docs, account))
    assert set(table.column("country").to_pylist()) == {"NA", "NZ"}  # Namibia stays NA
    assert len(set(table.column("place_id").to_pylist())) == rows
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    # Refused before any request: a partition column that cannot name directories.
    _, err = cli(
        capsys,
        account,
        "search",
        "-o",
        str(tmp_path / "x"),
        "--partition-by",
        "rating",
        *PLUMBERS,
        status=2,
    )
    assert "--partition-by rating" in err
    _, err = cli(
        capsys,
        account,
        "search",
        "-o",
        str(tmp_path / "x"),
        "--partition-by",
        "nope",
        *PLUMBERS,
        status=2,
    )
    assert "no such column" in err
    _, err = cli(
        capsys,
        account,
        "search",
        "-o",
        str(tmp_path / "x.csv"),
        "--chunksize",
        "5",
        *PLUMBERS,
        status=2,
    )
    assert "--chunksize needs --partition-by" in err
    _, err = cli(
        capsys,
        account,
        "search",
        "-o",
        str(tmp_path / "gone" / "ds"),
        "--partition-by",
        "country",
        *PLUMBERS,
        status=2,
    )
    assert "does not exist" in err
    assert debits(sandbox_docs, account) == [-rows]


@pytest.mark.parametrize("table_format", ["parquet", "delta"])
def test_a_scheduled_refresh_of_a_cache_on_s3_with_credentials_from_the_environment(
    sandbox_docs: Sandbox,
    account: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    s3_server: Any,
    table_format: str,
) -> None:
    # What docs/sharing.md's cron line runs: SCOUTFRAME_CACHE_DIR=s3://..., AWS_* credentials.
    for name, value in {**s3_server.env(), "SCOUTFRAME_CACHE_LEASE": "2"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SCOUTFRAME_CACHE_DIR", s3_server.uri(f"cli-{tmp_path.name}"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    out, _ = cli(
        capsys,
        account,
        "search",
        "-o",
        str(tmp_path / "de.parquet"),
        "--countries",
        "DE",
        "--method",
        "export",
        "--cache",
        "--cache-format",
        table_format,
    )
    key = re.search(r"cache entry (\w{12})", out)[1]  # type: ignore[index]
    out, _ = cli(capsys, account, "cache", "list", "--json")
    listed = json.loads(out)
    assert [e["location"].startswith("s3://scoutframe-test/cli-") for e in listed] == [True]
    paid = debits(sandbox_docs, account)
    sandbox_docs.admin.recollect(60)
    out, _ = cli(capsys, account, "cache", "refresh", key, "--dry-run")
    cost = int(re.search(r"a refresh now costs ([\d,]+) credits", out)[1].replace(",", ""))  # type: ignore[index]
    out, err = cli(capsys, account, "cache", "refresh", key, "--max-credits", str(cost))
    assert f"took a delta of {cost:,} rows" in out
    out, err2 = cli(capsys, account, "cache", "verify")
    assert debits(sandbox_docs, account) == [*paid, -cost]
    assert s3_server.secret_key not in out + err + err2
