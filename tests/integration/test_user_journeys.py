"""End-to-end journeys of a pandas user, each across several parts of the library.

Every journey runs on a fresh sandbox account, so the credit ledger it checks holds only its
own charges. They complement the per-feature tests: here the point is that the pieces agree
with each other (reference data and filters, pages and exports, provenance and the ledger,
a saved job handle and a second client, the CLI and its files).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

import scoutframe
from scoutframe import cli
from scoutframe.api.client import Client
from scoutframe.errors import AuthenticationError, InsufficientCreditsError
from scoutframe.sandbox import Sandbox
from scoutframe.tables.schema import MaskedEmailWarning, SchemaDriftWarning

MASKED = re.compile(r"^[^@*]\**@[^.*@]\**\.[^*@]+$")


def charges(sb: Sandbox, account_id: int) -> list[int]:
    """The account's ledger deltas after its opening balance."""
    return [
        row["delta"] for row in sb.admin.ledger(account_id) if row["reason"] != "opening balance"
    ]


@pytest.fixture
def paced(sandbox_docs: Sandbox) -> Iterator[Sandbox]:
    """The docs sandbox with exports held back for a few polls; pacing restored afterwards."""
    before = sandbox_docs.admin.set_export_pacing()
    sandbox_docs.admin.set_export_pacing(min_polls=4, delay_seconds=0)
    yield sandbox_docs
    sandbox_docs.admin.set_export_pacing(**before)


def test_analyst_names_to_pages_to_export_agree(
    sandbox: Sandbox, client_for: Callable[..., Client], fresh_account: Callable[..., Any]
) -> None:
    """Reference data, name filters, a free read by pages and a paid export tell one story."""
    account = fresh_account(sandbox, credits=5_000)
    client = client_for(sandbox, account["api_key"])
    categories = client.categories("plumb", limit=3)
    plumber_id = int(categories.loc[categories["name"] == "Plumber", "id"].iloc[0])
    paris = client.locations.search("Paris", country="FR")
    paris_id = int(
        paris.loc[(paris["name"] == "Paris") & (paris["type"] == "level3"), "id"].iloc[0]
    )
    assert client.resolve(countries="France", category="plumber", city="Paris").to_dict() == {
        "countries": ["FR"],
        "category": [plumber_id],
        "level3_locations": [paris_id],
    }

    search: dict[str, Any] = {"countries": "FR", "category": "Plumber"}
    preview = client.search(**search)
    assert preview.total_count == client.search(countries="fr", category=plumber_id).total_count
    live = sandbox.flavor_name == "live"  # type: ignore[attr-defined]
    with contextlib.ExitStack() as stack:
        stack.enter_context(pytest.warns(MaskedEmailWarning))
        if live:  # live search answers carry fields the contract does not name
            stack.enter_context(pytest.warns(SchemaDriftWarning, match="is_claimed"))
        pages = pd.read_spherescout(  # type: ignore[attr-defined]
            **search, client=client, method="pages", progress=False
        )
    assert charges(sandbox, account["id"]) == []  # pages are free
    assert len(pages) == preview.total_count > 0
    masked = [e for emails in pages["email"] for e in emails]
    assert masked
    assert all(MASKED.match(e) for e in masked)
    assert pages.spherescout.emails_masked

    with warnings.catch_warnings():
        warnings.simplefilter("error", MaskedEmailWarning)  # an export must not warn
        export = scoutframe.read_spherescout(
            **search, client=client, method="export", progress=False
        )
    meta = export.spherescout.provenance
    assert meta is not None
    assert meta.method == "export"
    assert not meta.emails_masked
    assert meta.credits_spent == meta.total_count == len(export) == preview.total_count
    assert meta.search_id == preview.search_id
    assert charges(sandbox, account["id"]) == [-len(export)]
    assert client.profile().credits == 5_000 - len(export)

    # Same rows, same values, same dtypes; only the emails differ (masked vs full).
    extra = [c for c in pages.columns if c not in export.columns]
    assert extra == (["is_claimed"] if live else [])
    pages = pages[list(export.columns)]
    assert (pages.dtypes == export.dtypes).all()
    rest = [c for c in export.columns if c != "email"]
    pd.testing.assert_frame_equal(pages[rest], export[rest])
    full = [e for emails in export["email"] for e in emails]
    assert len(full) == len(masked)
    assert not any("*" in e for e in full)
    for shown, real in zip(masked, full, strict=True):
        assert shown[0] == real[0]
        assert shown.split(".")[-1] == real.split(".")[-1]

    exploded = export.spherescout.explode_emails()
    assert len(exploded) == len(full)
    assert set(exploded["email"]) == set(full)
    primary = export.spherescout.with_primary_phone()["primary_phone"]
    first = [None if pd.isna(v) else v for v in primary]  # a null for no phone at all
    assert first == [phones[0] if len(phones) else None for phones in export["phone"]]
    assert export.spherescout.to_polars().shape == export.shape


def test_ctrl_c_during_an_export_then_resume_in_a_new_kernel_pays_once(
    paced: Sandbox,
    client_for: Callable[..., Client],
    fresh_account: Callable[..., Any],
    tmp_path: Path,
) -> None:
    """KeyboardInterrupt from an on_status callback; a new client finds, finishes and
    downloads the job from its saved handle without a second charge."""
    sb = paced
    account = fresh_account(sb, credits=10_000)
    state = tmp_path / "kernel-state"
    first = client_for(sb, account["api_key"], state_dir=state)
    job = first.exports.start({"countries": "BE"})
    assert job.lead_count is not None
    seen: list[str] = []

    def interrupt(status: Any) -> None:
        seen.append(status.status)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        job.wait(on_status=interrupt)
    assert seen
    assert seen[0] != "ready"
    first.close()
    assert charges(sb, account["id"]) == [-job.lead_count]

    second = client_for(sb, account["api_key"], state_dir=state)
    [saved] = second.exports.list_saved()
    assert (saved.task_id, saved.search_id, saved.lead_count) == (
        job.task_id,
        job.search_id,
        job.lead_count,
    )
    resumed = second.export_job(saved.job_id)
    assert resumed.wait(timeout=60).status == "ready"
    path = resumed.download(tmp_path / "be.csv")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert len(frame) == job.lead_count > 0
    assert set(frame["country"]) == {"BE"}
    assert second.exports.list_saved() == []  # done: no longer offered for resuming
    second.export_job(saved.job_id).download(tmp_path / "again.csv")  # a re-download is free
    assert (tmp_path / "again.csv").read_bytes() == path.read_bytes()
    assert charges(sb, account["id"]) == [-job.lead_count]
    handle = (state / "jobs" / f"{job.job_id}.json").read_text()
    assert account["api_key"] not in handle
    assert "signature=" not in handle


def test_poor_account_is_refused_everywhere_before_any_charge(
    sandbox_docs: Sandbox,
    client_for: Callable[..., Client],
    fresh_account: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A dry run says the balance is short; the read, the job API and the CLI all refuse with
    the counts; pages stay free."""
    sb = sandbox_docs
    account = fresh_account(sb, credits=5)
    client = client_for(sb, account["api_key"])
    search: dict[str, Any] = {"countries": "FR", "category": "Plumber"}
    total = client.search(**search).total_count
    assert total > 5

    plan = scoutframe.read_spherescout(**search, client=client, method="export", dry_run=True)
    assert (plan.method, plan.credits_needed, plan.credits_available) == ("export", total, 5)
    assert "only 5 credits" in plan.why
    with pytest.raises(InsufficientCreditsError) as caught:
        scoutframe.read_spherescout(**search, client=client, method="export", progress=False)
    assert (caught.value.required_credits, caught.value.available_credits) == (total, 5)
    with pytest.raises(InsufficientCreditsError):
        client.exports.start(search)
    assert client.exports.list_saved(include_done=True) == []

    for name, value in (sb.env | {"SPHERESCOUT_API_KEY": account["api_key"]}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SPHERESCOUT_USERNAME", raising=False)
    monkeypatch.delenv("SPHERESCOUT_PASSWORD", raising=False)
    monkeypatch.setenv("SCOUTFRAME_PROGRESS", "0")
    out = tmp_path / "plumbers.parquet"
    status = cli.main(
        [
            "search",
            "-o",
            str(out),
            "--countries",
            "FR",
            "--category",
            "Plumber",
            "--method",
            "export",
        ]
    )
    assert status == 1
    assert not out.exists()
    assert f"{total}" in capsys.readouterr().err

    with pytest.warns(MaskedEmailWarning):
        free = scoutframe.read_spherescout(**search, client=client, method="pages", progress=False)
    assert len(free) == total
    assert charges(sb, account["id"]) == []
    assert client.profile().credits == 5


def test_history_from_a_read_to_a_delta(
    sandbox: Sandbox,
    client_for: Callable[..., Client],
    fresh_account: Callable[..., Any],
    tmp_path: Path,
) -> None:
    """The history id in a read's provenance drives freshness and a delta of exactly the
    contacts collected since, charged once."""
    sb = sandbox
    account = fresh_account(sb, credits=50_000)
    client = client_for(sb, account["api_key"])
    base = scoutframe.read_spherescout(
        countries="US", email=True, client=client, method="export", progress=False
    )
    meta = base.spherescout.provenance
    assert meta is not None
    assert meta.history_id is not None
    entry = {e.id: e for e in client.history.entries()}[meta.history_id]
    assert (entry.kind, entry.row_count, entry.search_id) == ("full", len(base), meta.search_id)
    assert client.history.freshness(meta.history_id).is_fresh

    sb.admin.add_contacts(400)
    sb.admin.recollect(300)
    fresh = client.history.freshness(meta.history_id)
    assert not fresh.is_fresh
    assert fresh.new_count > 0
    before = client.profile().credits
    delta = client.history.download_delta(meta.history_id, tmp_path / "delta.csv")
    rows = pd.read_csv(delta.path, dtype=str, keep_default_na=False)
    assert delta.row_count == len(rows) == fresh.new_count == delta.credits_spent
    assert set(rows["country"]) == {"US"}
    assert (rows["email"] != "").all()
    collected = pd.to_datetime(rows["collected_at"], utc=True)
    assert entry.created_at is not None
    assert (collected >= pd.Timestamp(entry.created_at)).all()  # second resolution
    known = set(base["place_id"])
    assert rows["place_id"].is_unique
    assert 0 < rows["place_id"].isin(known).sum() < len(rows)  # re-collected and new ones
    assert client.profile().credits == before - delta.row_count
    assert charges(sb, account["id"]) == [-len(base), -delta.row_count]
    assert delta.history_id is not None
    assert client.history.freshness(delta.history_id).is_fresh


def test_jwt_user_through_expiry_and_cli_leaves_no_secret_behind(
    sandbox_docs: Sandbox,
    client_for: Callable[..., Client],
    fresh_account: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Log in with a password, read by export across an access-token expiry, write with the
    CLI, revoke a key: no key, password, JWT or URL signature in any log line (DEBUG),
    repr, error, job handle or output file; the storage download carried no Authorization
    (the sandbox would answer 400)."""
    caplog.set_level(logging.DEBUG)
    sb = sandbox_docs
    account = fresh_account(sb, credits=10_000)
    state = tmp_path / "state"
    client = client_for(
        sb, username=account["email"], password=account["password"], state_dir=state
    )
    client.profile()
    auth = client.transport.auth
    tokens = [auth._access, auth._refresh]  # type: ignore[union-attr]
    sb.admin.advance_clock(20 * 60)  # the access token has expired
    frame = scoutframe.read_spherescout(
        countries="FR", category="Plumber", client=client, method="export", progress=False
    )
    tokens.append(auth._access)  # type: ignore[union-attr]
    assert len(set(tokens)) == 3
    assert all(tokens)
    assert frame.attrs["scoutframe"]["credits_spent"] == len(frame) > 0

    spare = client.api_keys.create(name="journey")
    spare_client = client_for(sb, spare.key)
    assert spare_client.profile().email == account["email"]
    client.api_keys.revoke(spare)
    with pytest.raises(AuthenticationError) as revoked:
        spare_client.search(countries="FR")

    for name, value in sb.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SPHERESCOUT_API_KEY", raising=False)
    monkeypatch.setenv("SPHERESCOUT_USERNAME", account["email"])
    monkeypatch.setenv("SPHERESCOUT_PASSWORD", account["password"])
    monkeypatch.setenv("SCOUTFRAME_PROGRESS", "0")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    out = tmp_path / "out" / "plumbers.parquet"
    out.parent.mkdir()
    assert (
        cli.main(
            [
                "search",
                "-o",
                str(out),
                "--countries",
                "FR",
                "--category",
                "Plumber",
                "--method",
                "export",
                "--verbose",
            ]
        )
        == 0
    )
    written = pq.read_table(out)
    assert written.num_rows == len(frame)
    provenance = json.loads(written.schema.metadata[b"scoutframe"])
    assert provenance["method"] == "export"
    assert provenance["credits_spent"] == len(frame)

    files = [
        p for d in (state, tmp_path / "xdg-state", out.parent) for p in d.rglob("*") if p.is_file()
    ]
    assert any(p.suffix == ".json" for p in files)  # the job handles are there to be checked
    texts = [p.read_bytes().decode("utf-8", "replace") for p in files]
    texts += [
        caplog.text,
        repr(client),
        repr(auth),
        repr(sb),
        repr(spare),
        str(revoked.value),
        repr(revoked.value),
        json.dumps(frame.attrs["scoutframe"]),
    ]
    assert "/exports/" in caplog.text  # the storage download is in the DEBUG log
    secrets = [account["api_key"], account["password"], spare.key, *tokens]
    for text in texts:
        for secret in secrets:
            assert secret not in text
        assert not re.search(r"signature=(?!\*\*\*)[^&\s\"']+", text)
        assert not re.search(r"eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}", text)
    assert provenance["library_version"] == scoutframe.__version__
