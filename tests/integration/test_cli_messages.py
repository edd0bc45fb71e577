"""Every message the command line prints speaks its words: flags and commands, not Python.

Messages are produced by the library itself wherever a test can make it speak (over the
sandbox, or by calling the function that words them), so a new Python spelling in a library
message fails here until ``scoutframe.cli.in_cli_terms`` learns it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from scoutframe import errors
from scoutframe.cli import in_cli_terms, main
from scoutframe.cli._terms import filters_as_flags, notes_in_cli_terms
from scoutframe.models import ReadPlan

#: What a Python spelling looks like: keyword=value, call(), client./df./Client( ...
PYTHON = re.compile(
    r"\b[a-z_]+=(?:['\"\d(\[]|True\b|False\b|\.\.\.|,|\s)"
    r"|\b[a-z_]\w*\((?:path|key|\.\.\.|'[^']*')?\)|\bclient\.|\bClient\(|\bdf\.|\bCache\(|\bFilters\(|read_spherescout"
    r"|\bmax_credits\b|\bbase_url\b|\bmax_age\b|\bcache_dir\b"
)


def python_in(text: str) -> list[str]:
    """The Python spellings left in ``text`` (URLs and paths aside)."""
    text = re.sub(r"https?://\S+|(?<!\w)/\S+", "", text)
    return PYTHON.findall(text)


@pytest.fixture
def account_env(shell_account: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """Configure the environment for a fresh account, as a shell user would."""
    return shell_account


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exit_info:
        status = int(exit_info.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_cli_words(err: str, command: str) -> None:
    assert "Traceback" not in err
    for line in err.splitlines():
        if line.strip():
            assert line.startswith(f"scoutframe {command}: ") or line.startswith("scoutframe: "), (
                line
            )
    assert python_in(err) == [], err


# -- in_cli_terms on the library's own wording ---------------------------------------------


def _consent() -> str:
    from scoutframe.read.consent import consent_message

    plan = ReadPlan(
        rows=4892,
        method="export",
        credits_needed=4892,
        credits_available=None,
        search_id="srch_1",
        why="",
        total_count=4892,
    )
    return consent_message(plan, 5000)


def _masked() -> str:
    from scoutframe.read import _executor

    return _executor._MASKED


def _missing_credential() -> str:
    from scoutframe.api.client import _no_credential
    from scoutframe.api.config import load_settings

    return _no_credential(
        load_settings(config_file=Path("/nonexistent/c.toml"), environ={}, keyring_get=None)
    )


LIBRARY_MESSAGES: dict[str, Callable[[], str]] = {
    "consent": _consent,
    "masked emails": _masked,
    "missing credential": _missing_credential,
    "authentication": lambda: str(errors.AuthenticationError(401, "Invalid token.")),
    "unknown category id": lambda: str(_filter_error(category=999_999)),
    # Literal copies of messages no test can reach cheaply (each names its source).
    "budget (api/billing.check_budget)": lambda: (
        "this export would cost 11 credits, more than max_credits=5; nothing was spent. Narrow "
        "the filters, raise max_credits, or use method='pages' (free, emails masked)."
    ),
    "delta budget (endpoints/history)": lambda: (
        "the delta of history entry 3 would cost 9 credits, more than max_credits=1; nothing "
        "was spent. Raise max_credits, or check freshness() until fewer contacts are new."
    ),
    "cache delta consent (cache/refresh)": lambda: (
        "12 contacts are new or updated since this cache entry was last refreshed; bringing "
        "it up to date costs 12 credits (the delta), and no budget was given, so nothing was "
        "spent. Pass max_credits=12 (or method='export') to pay for it, or read the entry as "
        "it is with cache=True and a larger max_age"
    ),
    "cache miss (read/cached)": lambda: (
        "no cache entry for Filters(countries=('FR',), category=(8059,), email=True) from "
        "https://www.spherescout.io in /home/u/.cache/scoutframe/entries (cache='only' never "
        "reads from the network); read it once with cache=True"
    ),
    "cache accounts (read/cached)": lambda: (
        "the cache at /c has entries of 2 accounts for these filters, and cache='only' cannot "
        "ask which one this client is; read once with cache=True (it asks), then "
        "cache='only' works with that client"
    ),
    "cache key (cache/store)": lambda: (
        "no entry of the cache at /c has a key starting with 'ab'; see Cache().entries() (or "
        "`scoutframe cache list`) for the keys"
    ),
    "damaged entry (cache/entry)": lambda: (
        "the cache entry /c/ab is damaged (ArrowInvalid); remove it with "
        "scoutframe.Cache().remove(...) or `scoutframe cache clear`"
    ),
    "cache options (read/api)": lambda: (
        "max_age= and cache_dir= need cache=True (or 'refresh', 'only')"
    ),
    "cache dir (cache/keys)": lambda: (
        "the cache directory /tmp/cache_dir is a file; pass cache_dir= a directory (or set "
        "SCOUTFRAME_CACHE_DIR), or move the file away"
    ),
    "no filters (read/api)": lambda: (
        "No filters were given: this would read every contact in the database (one credit "
        "each by export). Pass filters (countries='FR', category='Plumber', ...), or all=True "
        "if you really mean all of them"
    ),
    "plan (read/plan)": lambda: (
        "auto: 4,892 rows > 500 read by export; over max_credits=1,000; needs your consent "
        "to spend: pass max_credits= or method='export' (or method='pages', free)"
    ),
    "ambiguous location (filters)": lambda: (
        "Location 'Springfield' is ambiguous at level3: Springfield (US, id 1), Springfield "
        "(US, id 2). Pass the id, or give countries= to narrow it down"
    ),
    "export timeout (jobs)": lambda: (
        "export task_1 not ready after 600.0 s; resume it later with client.export_job('task_1')"
    ),
    "resume hint (read/export)": lambda: (
        "export task_1 is paid for and its handle is saved; its file is kept at /s/d.csv; run "
        "the same read_spherescout call again to read it without paying again (or "
        "client.export_job('task_1').download(path))"
    ),
    "new export notice (read/export)": lambda: (
        "12 contacts are new or updated since export task_1 of this search, so this read buys "
        "a new export; read_spherescout(..., cache=True) keeps the result and pays only for "
        "what changed"
    ),
    "unknown export (endpoints/exports)": lambda: (
        "no export of search 'srch_x' was found: no handle is saved under client.state_dir "
        "and the export history has no full export of it; resume with the task id "
        "(client.export_job('task_...')), see client.history.list(), or start one with "
        "client.exports.start(...)"
    ),
    "charging (charging)": lambda: (
        "the export start broke off and the account's balance could not be read afterwards, "
        "so whether it was charged is unknown; check client.profile().credits and "
        "client.history.list() before trying again"
    ),
    "parse error (read/export)": lambda: (
        "the file of export task_1 could not be read (ArrowInvalid: x). It is paid for and "
        "kept at /s/d.csv: read it with scoutframe.read_export_csv(path) once the cause is "
        "fixed, or run the same call again (it will not pay again)"
    ),
    "page drift (read/pages)": lambda: (
        "The result kept changing while it was paged (a; b). Returning the 90 distinct rows "
        "seen; the latest totalCount is 91. Read again, or use method='export' for a "
        "consistent snapshot."
    ),
    "insecure http (transport)": lambda: (
        "Refusing plain http to example.com: credentials and data would travel unencrypted. "
        "Use https, or pass allow_http=True if you really mean it"
    ),
    "not the API (transport)": lambda: (
        "http://127.0.0.1:9 does not look like the SphereScout API: GET /api/user/profile "
        "answered 200 with text/html, not JSON. Check base_url (SPHERESCOUT_BASE_URL): it "
        "must be the API origin, e.g. https://www.spherescout.io"
    ),
    "malformed answer (endpoints/_frames)": lambda: (
        "200 expected a list of API keys, got dict. Check that base_url points at the "
        "SphereScout API"
    ),
    "read timeout (wire_errors)": lambda: (
        "No answer from h within the read timeout (60 s) after 5 tries for GET /x. The "
        "server may be overloaded; try again, or raise it: Client(timeout=(5, 120))"
    ),
    "jwt expired (auth)": lambda: (
        "401 the session expired. Log in again with Client(username=..., password=...), or "
        "set SPHERESCOUT_PASSWORD so scoutframe can log in by itself, or use an API key"
    ),
    "no password (auth)": lambda: (
        "401 no password known for user 'a@b'. Pass password=..., set SPHERESCOUT_PASSWORD, "
        "store it in the keyring (service 'scoutframe'), or use an API key"
    ),
    "password alone (config)": lambda: (
        "A password was given (environment) without a username; pass username= as well (or "
        "set SPHERESCOUT_USERNAME)"
    ),
    "userinfo (config)": lambda: (
        "base_url (from environment) holds a user name or password before the host; give the "
        "origin alone ('https://h') and pass credentials as api_key=, or username= and "
        "password= (or SPHERESCOUT_API_KEY, SPHERESCOUT_USERNAME/SPHERESCOUT_PASSWORD)"
    ),
    "resumable download (downloads)": lambda: (
        "export task_1: the download kept failing without progress (OSError: x); call "
        "download() again to resume from 100 bytes"
    ),
    "csv list element (formats)": lambda: (
        "to_csv: column 'email', row 3: the list element '' is empty or missing, and the CSV "
        "drops empty elements. Fix or drop that element, or write Parquet instead "
        "(df.spherescout.to_parquet), which keeps lists exactly"
    ),
    "dataset target (datasets)": lambda: (
        "write_dataset(): /tmp/out exists and is not a Parquet dataset (it holds /tmp/out/x), "
        "so it is not replaced; give another path or empty it"
    ),
}


def _filter_error(**filters: Any) -> errors.FilterError:
    import pandas as pd

    from scoutframe.api.filters import _resolve_categories

    table = pd.DataFrame({"id": [8059], "name": ["Plumber"], "gcid": ["gcid:plumber"]})
    with pytest.raises(errors.FilterError) as caught:
        _resolve_categories((filters["category"],), table)
    return caught.value


@pytest.mark.parametrize("name", list(LIBRARY_MESSAGES))
def test_library_messages_read_in_cli_words(name: str) -> None:
    message = LIBRARY_MESSAGES[name]()
    assert python_in(message), f"the test's message has no Python spelling: {message}"
    translated = in_cli_terms(message)
    assert python_in(translated) == [], translated


def test_translations_say_what_to_type() -> None:
    assert "--max-credits 4892 (or --method export)" in in_cli_terms(_consent())
    assert in_cli_terms(_consent()).endswith(
        "A default budget for every read: SCOUTFRAME_MAX_CREDITS."
    )
    assert "Use --method export (1 credit a contact)" in in_cli_terms(_masked())
    assert "emails_masked" not in in_cli_terms(_masked())
    cache_miss = in_cli_terms(LIBRARY_MESSAGES["cache miss (read/cached)"]())
    assert "no cache entry for --countries FR --category 8059 --email from" in cache_miss
    assert "read it once with --cache" in cache_miss
    resume = in_cli_terms(LIBRARY_MESSAGES["resume hint (read/export)"]())
    assert "the same scoutframe command again" in resume
    assert "`scoutframe exports resume task_1 -o FILE.csv`" in resume
    assert "`scoutframe categories NAME`" in in_cli_terms(str(_filter_error(category=999_999)))
    assert (
        in_cli_terms("Pass filters (countries='FR', category='Plumber', ...), or all=True")
        == "Pass filters (--countries FR --category Plumber ...), or --all"
    )


def test_paths_and_urls_are_left_alone() -> None:
    text = (
        "the cache at /tmp/max_credits/cache_dir/base_url.d is a file; see "
        "http://h/api/companies?countries=FR&page=2&max_credits=1"
    )
    assert in_cli_terms(text) == text


def test_notes_of_one_process_are_left_out() -> None:
    exc = KeyboardInterrupt()
    exc.add_note(
        "scoutframe: 3 pages (150 of 900 rows) were read before this failure and are "
        "kept on this client for 10 minutes: run the same read_spherescout call again "
        "with the same client to fetch only the missing pages (page 4 on)"
    )
    exc.add_note(
        "scoutframe: export task_1 is paid for and its handle is saved; run the same "
        "read_spherescout call again to read it without paying again (or "
        "client.export_job('task_1').download(path))"
    )
    notes = notes_in_cli_terms(exc)
    assert len(notes) == 1
    assert notes[0].startswith("export task_1 is paid for")
    assert python_in(notes[0]) == []


@pytest.mark.parametrize(
    ("filters", "flags"),
    [
        ({"countries": ["BE", "FR"], "category": [8059]}, "--countries BE,FR --category 8059"),
        (
            '{"email":true,"level3_locations":[1004332],"phone_number":false}',
            "--email --level3 1004332 --no-phone-number",
        ),
        (
            {"category": ["Pet store"], "main_activity_only": True},
            "--category 'Pet store' --main-activity-only",
        ),
        ({}, "--all"),
        ({"something": 1}, '{"something": 1}'),
    ],
)
def test_filters_as_flags(filters: Any, flags: str) -> None:
    assert filters_as_flags(filters) == flags


# -- over the sandbox: what a shell user meets -----------------------------------------------


def test_unknown_country_lists_every_country(
    account_env: Callable[..., dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    account_env()
    status, _, err = run_cli(capsys, "search", "--countries", "ZZ", "--dry-run")
    assert status == 1
    assert "Unknown country 'ZZ'" in err
    assert ", ZA." in err  # the last code: the list is whole, not cut at NL
    assert "...." not in err
    assert "`scoutframe countries`" in err
    assert_cli_words(err, "search")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--countries", "US"], "--max-credits "),  # consent: a budget, a method, or pages
        (
            [
                "--countries",
                "FR",
                "--category",
                "Plumber",
                "--method",
                "export",
                "--max-credits",
                "1",
            ],
            "more than --max-credits 1",
        ),  # budget
        (["--countries", "FR", "--category", "999999"], "`scoutframe categories NAME`"),
        (["--countries", "FR", "--level3", "Parris"], "Unknown level3 location 'Parris'"),
        (["--countries", "FR", "--method", "pages", "--cache-only"], "read it once with --cache"),
        (["--countries", "FR", "--max-age", "1h"], "--max-age needs --cache (or --refresh"),
        ([], "--all"),
    ],
)
def test_search_errors_speak_flags(
    account_env: Callable[..., dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    expected: str,
) -> None:
    account = account_env()
    status, out, err = run_cli(capsys, "search", "-o", str(tmp_path / "x.csv"), *argv)
    assert status in (1, 2)
    assert expected in err
    assert_cli_words(err, "search")
    assert account["api_key"] not in out + err
    assert not (tmp_path / "x.csv").exists()


def test_insufficient_credits_points_to_pages(
    account_env: Callable[..., dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    account_env(credits=3)
    status, _, err = run_cli(
        capsys,
        "search",
        "-o",
        str(tmp_path / "x.csv"),
        "--countries",
        "FR",
        "--category",
        "Plumber",
        "--method",
        "export",
    )
    assert status == 1
    assert "Nothing was charged" in err
    assert "--method pages" in err
    assert_cli_words(err, "search")


def test_masked_email_note_and_spending_notice(
    account_env: Callable[..., dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    account_env()
    status, _, err = run_cli(
        capsys,
        "search",
        "-o",
        str(tmp_path / "p.csv"),
        "--countries",
        "FR",
        "--category",
        "Plumber",
        "--method",
        "pages",
    )
    assert status == 0
    assert "scoutframe search: note: Emails from search pages are masked" in err
    assert_cli_words(err, "search")
    status, _, err = run_cli(
        capsys,
        "search",
        "-o",
        str(tmp_path / "e.csv"),
        "--countries",
        "FR",
        "--category",
        "Plumber",
        "--method",
        "export",
    )
    assert status == 0
    assert "credits charged (--method export asked" in err  # the library's notice, in flags
    assert_cli_words(err, "search")


def test_missing_credential(
    account_env: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    account_env()
    monkeypatch.delenv("SPHERESCOUT_API_KEY")
    status, out, err = run_cli(capsys, "profile")
    assert status == 1
    assert out == ""
    assert "SPHERESCOUT_API_KEY" in err
    assert "scoutframe sandbox" in err
    assert_cli_words(err, "profile")


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"SPHERESCOUT_BASE_URL": "http://example.com"}, "https:// SPHERESCOUT_BASE_URL"),
        ({"SPHERESCOUT_BASE_URL": "https://u:p@example.com"}, "SPHERESCOUT_USERNAME and"),
        (
            {"SPHERESCOUT_API_KEY": "", "SPHERESCOUT_PASSWORD": "x"},
            "set SPHERESCOUT_USERNAME as well",
        ),
    ],
)
def test_configuration_errors(
    account_env: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variables: dict[str, str],
    expected: str,
) -> None:
    account_env()
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    status, _, err = run_cli(capsys, "countries")
    assert status == 1
    assert expected in err
    assert_cli_words(err, "countries")


def test_a_server_that_is_not_the_api(
    account_env: Callable[..., dict[str, Any]],
    loopback_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    account_env()
    server = loopback_server(lambda *_: (200, {"Content-Type": "text/html"}, b"<html>hi</html>"))
    monkeypatch.setenv("SPHERESCOUT_BASE_URL", server.url)
    status, _, err = run_cli(capsys, "countries")
    assert status == 1
    assert "does not look like the SphereScout API" in err
    assert "Check SPHERESCOUT_BASE_URL" in err
    assert_cli_words(err, "countries")


def test_unknown_export_id(
    account_env: Callable[..., dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    account_env()
    status, _, err = run_cli(
        capsys, "exports", "resume", "srch_nothere", "-o", str(tmp_path / "x.csv")
    )
    assert status == 1
    assert "`scoutframe history`" in err
    assert_cli_words(err, "exports resume")
    assert not (tmp_path / "x.csv").exists()


def test_help_texts(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # argparse wraps at the terminal's width
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "--phone_number" not in out
    assert "a phone number (--phone-number) or without one (--no-phone-number)" in out
    assert "with an email (--email)" in out
    assert re.search(r"--main-activity-only\s+match --category against", out)
    assert python_in(out) == []
