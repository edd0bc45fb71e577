"""read_spherescout over HTTP against the sandbox: methods, options, credits, reconciliation."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
import requests

from scoutframe import register_pandas
from scoutframe.api import downloads, jobs
from scoutframe.api.client import Client
from scoutframe.errors import BudgetError, ConsentError, ServerError
from scoutframe.read import (
    AUTO_PAGES_MAX_ROWS,
    PageDriftWarning,
    ReadPlan,
    read_spherescout,
)
from scoutframe.sandbox import Sandbox
from scoutframe.tables import exportcsv
from scoutframe.tables.frames import table_from_pandas
from scoutframe.tables.schema import (
    CONTACT_COLUMNS,
    CONTACT_SCHEMA,
    MaskedEmailWarning,
    SchemaDriftWarning,
)

# Countries of the sandbox's 20,000-contact dataset, chosen by size at start (see _pick):
SMALL = ""  # 100-450 contacts: auto reads them by pages
TINY = "NA"  # Namibia, a few dozen contacts: also checks that "NA" stays a string
LARGE = ""  # 600-2,500 contacts: auto picks an export


def _pick(sb: Sandbox) -> None:
    """Choose SMALL and LARGE among the sandbox's countries by their contact counts."""
    global SMALL, LARGE
    headers = {"Authorization": f"Token {sb.api_key}"}
    codes = [
        c["code"]
        for c in requests.get(
            f"{sb.url}/api/locations/countries", headers=headers, timeout=30
        ).json()
    ]
    counts = {}
    for code in codes:
        answer = requests.get(
            f"{sb.url}/api/companies", params={"countries": code}, headers=headers, timeout=30
        )
        counts[code] = answer.json()["totalCount"]
    assert 0 < counts[TINY] < 100
    SMALL = min((c for c in codes if 100 <= counts[c] <= 450), key=lambda c: -counts[c])
    LARGE = min((c for c in codes if 600 <= counts[c] <= 2_500), key=lambda c: counts[c])


@pytest.fixture(scope="module", params=["docs", "live"])
def sandbox(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sandbox]:
    data = tmp_path_factory.mktemp(f"read-{request.param}")
    with Sandbox(contacts=20_000, data_dir=data, flavor=request.param, rate_limit=0) as sb:
        sb.flavor_name = request.param  # type: ignore[attr-defined]
        sb.admin.set_export_pacing(min_polls=1, delay_seconds=0)
        _pick(sb)
        yield sb


def client_for(sb: Sandbox, state_dir: Path, api_key: str | None = None) -> Client:
    return Client(
        api_key or sb.api_key,
        sb.url,
        allow_http=True,
        poll_interval=(0.02, 0.1),
        state_dir=state_dir,
    )


@pytest.fixture
def account(sandbox: Sandbox, tmp_path: Path) -> Iterator[tuple[Client, int]]:
    """A fresh account with plenty of credits, so its ledger shows only this test's spending."""
    acct = sandbox.admin.create_account(credits=1_000_000)
    with client_for(sandbox, tmp_path / "state", acct["api_key"]) as client:
        yield client, int(acct["id"])


@contextlib.contextmanager
def expected_warnings(sb: Sandbox, *, masked: bool) -> Iterator[None]:
    """The warnings a read must give: masked emails by pages; drift from the live flavour."""
    with contextlib.ExitStack() as stack:
        if masked:
            stack.enter_context(pytest.warns(MaskedEmailWarning, match="masked"))
        if sb.flavor_name == "live" and masked:  # live records carry unknown fields
            stack.enter_context(pytest.warns(SchemaDriftWarning))
        yield


def total(client: Client, **filters: Any) -> int:
    return client.search(**filters).total_count


# --------------------------------------------------------------------------------------------


def test_auto_reads_small_results_by_pages(sandbox, account, caplog):
    client, account_id = account
    caplog.set_level(logging.INFO, logger="scoutframe.read")
    with expected_warnings(sandbox, masked=True):
        df = read_spherescout(countries=SMALL, client=client, progress=False)
    assert len(df) == total(client, countries=SMALL)
    assert df["place_id"].is_unique
    assert df["place_id"].tolist() == sorted(df["place_id"])
    assert (df["country"] == SMALL).all()
    assert all(isinstance(t, pd.ArrowDtype) for t in df.dtypes)
    meta = df.attrs["scoutframe"]
    assert meta["method"] == "pages"
    assert meta["emails_masked"] is True
    assert meta["credits_spent"] == 0
    assert meta["filters"] == {"countries": [SMALL]}
    assert meta["search_id"].startswith("srch_")
    assert meta["api_origin"] == sandbox.url
    assert "<= 500" in meta["reason"]
    emails = [e for lst in df["email"] for e in lst]
    assert emails
    assert all("*" in e for e in emails)
    assert "pages" in caplog.text
    assert "<= 500" in caplog.text
    assert sandbox.admin.ledger(account_id)[1:] == []  # only the opening balance


def test_auto_over_the_free_limit_needs_consent_then_exports(sandbox, account, capsys):
    client, account_id = account
    expected = total(client, countries=LARGE)
    before = client.profile().credits
    with pytest.raises(ConsentError) as refused:
        read_spherescout(countries=LARGE, client=client, progress=False)  # no budget anywhere
    message = str(refused.value)
    assert f"{expected:,} credits (the account has {before:,})" in message
    for way in ("method='pages'", f"max_credits={expected}", "method='export'", "narrower"):
        assert way in message
    plan = refused.value.plan
    assert (plan.rows, plan.credits_needed, plan.credits_available) == (expected, expected, before)
    assert client.profile().credits == before  # nothing was spent
    assert sandbox.admin.ledger(account_id)[1:] == []
    dry = read_spherescout(countries=LARGE, client=client, dry_run=True)
    assert "needs your consent" in dry.why
    capsys.readouterr()
    df = read_spherescout(countries=LARGE, client=client, progress=False, max_credits=expected)
    notice = capsys.readouterr().err
    assert f"{expected:,} credits charged" in notice  # said where the user sees it
    assert len(df) == expected
    assert df["place_id"].is_unique
    meta = df.attrs["scoutframe"]
    assert meta["method"] == "export"
    assert meta["emails_masked"] is False
    assert meta["credits_spent"] == expected
    if sandbox.flavor_name == "docs":
        assert meta["task_id"].startswith("task_")
    emails = [e for lst in df["email"] for e in lst]
    assert emails
    assert not any("*" in e for e in emails)
    assert "> 500" in meta["reason"]
    assert client.profile().credits == before - expected
    assert sum(-e["delta"] for e in sandbox.admin.ledger(account_id) if e["delta"] < 0) == expected


def test_pages_and_export_give_the_same_rows(sandbox, account):
    client, _ = account
    with expected_warnings(sandbox, masked=True):
        pages = read_spherescout(countries=TINY, client=client, method="pages", progress=False)
    exported = read_spherescout(countries=TINY, client=client, method="export", progress=False)
    assert len(pages) == len(exported) == total(client, countries=TINY)
    assert (exported["country"] == "NA").all()
    keep = list(CONTACT_COLUMNS)
    keep.remove("email")
    pd.testing.assert_frame_equal(pages[keep], exported[keep])
    # masked addresses keep the first letter and the top-level domain of the real ones
    for masked, real in zip(pages["email"], exported["email"], strict=True):
        assert len(masked) == len(real)
        for m, r in zip(masked, real, strict=True):
            assert m[0] == r[0]
            assert m.rsplit(".", 1)[1] == r.rsplit(".", 1)[1]


def test_chunksize_pages_and_export(sandbox, account):
    client, _ = account
    with expected_warnings(sandbox, masked=True):
        full = read_spherescout(countries=SMALL, client=client, method="pages", progress=False)
        chunks = list(
            read_spherescout(
                countries=SMALL, client=client, method="pages", chunksize=40, progress=False
            )
        )
    assert [len(c) for c in chunks[:-1]] == [40] * (len(chunks) - 1)
    assert 0 < len(chunks[-1]) <= 40
    joined = pd.concat(chunks)
    assert list(joined.index) == list(range(len(full)))
    pd.testing.assert_frame_equal(joined, full)

    exported = read_spherescout(
        countries=LARGE, client=client, method="export", chunksize=500, progress=False
    )
    assert not isinstance(exported, pd.DataFrame)
    parts = list(exported)
    n = total(client, countries=LARGE)
    assert [len(p) for p in parts] == [500] * (n // 500) + ([n % 500] if n % 500 else [])
    assert all(p.attrs["scoutframe"]["method"] == "export" for p in parts)
    assert pd.concat(parts)["place_id"].is_unique


def test_nrows_and_columns(sandbox, account):
    client, _ = account
    with expected_warnings(sandbox, masked=True):
        head = read_spherescout(
            countries=SMALL,
            client=client,
            nrows=75,
            progress=False,
            columns=["zipcode", "place_id", "phone"],
        )
        full = read_spherescout(countries=SMALL, client=client, progress=False)
    assert list(head.columns) == ["zipcode", "place_id", "phone"]
    assert head["place_id"].tolist() == full["place_id"].head(75).tolist()
    assert head["zipcode"].tolist() == full["zipcode"].head(75).tolist()
    exported = read_spherescout(
        countries=LARGE,
        client=client,
        method="export",
        nrows=120,
        columns=["place_id", "email"],
        progress=False,
    )
    assert list(exported.columns) == ["place_id", "email"]
    assert len(exported) == 120
    # an export charges every matching contact, even when only some rows are read
    assert exported.attrs["scoutframe"]["credits_spent"] == total(client, countries=LARGE)
    with pytest.raises(ValueError, match="zip"):
        read_spherescout(countries=SMALL, client=client, columns=["zip"], progress=False)


@pytest.mark.parametrize("method", ["pages", "export"])
def test_numpy_nullable_backend(sandbox, account, method):
    client, _ = account
    with expected_warnings(sandbox, masked=method == "pages"):
        df = read_spherescout(
            countries=TINY,
            client=client,
            method=method,
            progress=False,
            dtype_backend="numpy_nullable",
        )
    assert str(df["review_count"].dtype) == "Int32"
    assert str(df["rating"].dtype) == "Float64"
    assert str(df["collected_at"].dtype) == "datetime64[us, UTC]"
    assert isinstance(df["zipcode"].dtype, pd.StringDtype)
    assert df["phone"].dtype == object
    assert all(isinstance(v, list) for v in df["phone"])
    back = table_from_pandas(df[list(CONTACT_COLUMNS)])
    assert back.schema.equals(CONTACT_SCHEMA)


def test_dry_run_and_max_credits_spend_nothing(sandbox, account):
    client, account_id = account
    ledger = sandbox.admin.ledger(account_id)
    credits = client.profile().credits
    n = total(client, countries=LARGE)
    plan = read_spherescout(countries=LARGE, client=client, dry_run=True)
    assert isinstance(plan, ReadPlan)
    assert (plan.method, plan.rows, plan.credits_needed) == ("export", n, n)
    assert plan.credits_available == credits
    assert plan.search_id == client.search(countries=LARGE).search_id
    assert "> 500" in plan.why
    assert str(n) in str(plan).replace(",", "")
    small = read_spherescout(countries=SMALL, client=client, dry_run=True)
    assert (small.method, small.credits_needed) == ("pages", 0)
    with pytest.raises(BudgetError, match="max_credits"):
        read_spherescout(countries=LARGE, client=client, max_credits=n - 1, progress=False)
    with pytest.raises(BudgetError):
        read_spherescout(
            countries=LARGE,
            client=client,
            method="export",
            max_credits=10,
            chunksize=100,
            progress=False,
        )
    assert sandbox.admin.ledger(account_id) == ledger
    assert client.profile().credits == credits


def test_return_types(sandbox, account):
    client, _ = account
    with expected_warnings(sandbox, masked=True):
        table = read_spherescout(countries=TINY, client=client, return_type="arrow", progress=False)
    assert isinstance(table, pa.Table)
    assert table.schema.remove_metadata().equals(
        pa.schema(
            [CONTACT_SCHEMA.field(n) for n in CONTACT_COLUMNS]
            + [table.schema.field(n) for n in table.column_names[20:]]
        )
    )
    assert b"scoutframe" in table.schema.metadata
    parts = list(
        read_spherescout(
            countries=LARGE,
            client=client,
            method="export",
            return_type="arrow",
            chunksize=400,
            progress=False,
        )
    )
    assert all(isinstance(p, pa.Table) for p in parts)
    assert [p.num_rows for p in parts[:-1]] == [400] * (len(parts) - 1)
    assert all(b"scoutframe" in p.schema.metadata for p in parts)
    assert pa.concat_tables(parts).column("place_id").to_pylist() == sorted(
        pa.concat_tables(parts).column("place_id").to_pylist()
    )
    frame = read_spherescout(
        countries=TINY, client=client, method="export", return_type="polars", progress=False
    )
    assert frame.height == table.num_rows
    assert set(frame["country"].to_list()) == {"NA"}


def test_client_from_the_environment(sandbox, monkeypatch):
    monkeypatch.setenv("SPHERESCOUT_API_KEY", sandbox.api_key)
    monkeypatch.setenv("SPHERESCOUT_BASE_URL", sandbox.url)
    with expected_warnings(sandbox, masked=True):
        df = read_spherescout(countries=TINY, progress=False)
    assert df.attrs["scoutframe"]["api_origin"] == sandbox.url
    with Client(sandbox.api_key, sandbox.url, allow_http=True) as client:
        assert len(df) == client.search(countries=TINY).total_count


def test_progress_bars_and_their_switches(sandbox, account, capsys, monkeypatch):
    client, _ = account
    with expected_warnings(sandbox, masked=True):
        read_spherescout(countries=TINY, client=client, progress=True)
    out, err = capsys.readouterr()
    assert "pages" in err
    assert out == ""  # bars go to stderr: stdout stays clean for the user's own output
    read_spherescout(countries=TINY, client=client, method="export", progress=True)
    out, err = capsys.readouterr()
    assert "export" in err
    assert "download" in err
    assert "parsing" in err
    assert out == ""
    monkeypatch.setenv("SCOUTFRAME_PROGRESS", "0")
    read_spherescout(countries=TINY, client=client, method="export")
    assert capsys.readouterr().err == ""


def test_register_pandas():
    import scoutframe

    assert pd.read_spherescout is scoutframe.read_spherescout  # import scoutframe did it
    register_pandas()  # idempotent
    assert pd.read_spherescout is read_spherescout


# -- reconciliation when the result changes under the reader --------------------------------


class _Mutating:
    """Wrap ``client.search`` to add contacts to the sandbox right after page 2 is served."""

    def __init__(self, client: Client, sb: Sandbox, *, adds: int, times: int) -> None:
        self.inner = client.search
        self.sb = sb
        self.adds = adds
        self.left = times
        self.pages: list[int | None] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        page = self.inner(*args, **kwargs)
        self.pages.append(kwargs.get("page"))
        if kwargs.get("page") == 2 and self.left > 0:
            self.left -= 1
            self.sb.admin.add_contacts(self.adds)
        return page


@pytest.fixture
def small_sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox(contacts=2_000, data_dir=tmp_path / "data", rate_limit=0) as sb:
        yield sb


def test_search_id_reads_by_export(small_sandbox, tmp_path):
    # docs flavour only: the live API starts exports from filters, never from a search id
    with client_for(small_sandbox, tmp_path / "state") as client:
        page = client.search(countries="US")
        assert page.total_count > 0
        # Never exported, so its size is unknown here (the API has no free lookup): refused.
        with pytest.raises(ConsentError, match="an unknown number of contacts"):
            read_spherescout(page.search_id, client=client, progress=False)  # no budget given
        df = read_spherescout(page.search_id, client=client, progress=False, method="export")
        assert len(df) == page.total_count
        assert (df["country"] == "US").all()
        meta = df.attrs["scoutframe"]
        assert meta["method"] == "export"
        assert meta["search_id"] == page.search_id
        assert meta["credits_spent"] == page.total_count
        with pytest.raises(ValueError, match="search id"):
            read_spherescout(page.search_id, client=client, method="pages")


def test_pages_reread_when_contacts_arrive_between_pages(
    small_sandbox, monkeypatch, caplog, tmp_path
):
    caplog.set_level(logging.INFO, logger="scoutframe.read")
    with client_for(small_sandbox, tmp_path / "state") as client:
        before = total(client)
        hook = _Mutating(client, small_sandbox, adds=120, times=1)
        monkeypatch.setattr(client, "search", hook)
        with pytest.warns(MaskedEmailWarning):
            df = read_spherescout(
                client=client, all=True, method="pages", concurrency=1, progress=False
            )
        monkeypatch.undo()
        after = total(client)
        assert after == before + 120
        assert hook.pages.count(1) >= 2  # a second pass happened
        assert "again" in caplog.text
        assert df["place_id"].is_unique
        assert len(df) == after  # nothing dropped, nothing doubled
        exported = read_spherescout(client=client, all=True, method="export", progress=False)
        assert set(df["place_id"]) == set(exported["place_id"])


def test_pages_warn_precisely_when_the_result_never_settles(small_sandbox, monkeypatch, tmp_path):
    with client_for(small_sandbox, tmp_path / "state") as client:
        before = total(client)
        hook = _Mutating(client, small_sandbox, adds=30, times=100)
        monkeypatch.setattr(client, "search", hook)
        with (
            pytest.warns(MaskedEmailWarning),
            pytest.warns(PageDriftWarning, match="totalCount") as caught,
        ):
            df = read_spherescout(
                client=client, all=True, method="pages", concurrency=2, progress=False
            )
        monkeypatch.undo()
        drift = [str(w.message) for w in caught if w.category is PageDriftWarning]
        assert len(drift) == 1
        assert "pass 3" in drift[0]
        assert df["place_id"].is_unique
        assert len(df) >= before


def test_pages_ride_out_rate_limiting(small_sandbox, tmp_path):
    with client_for(small_sandbox, tmp_path / "state") as client:
        with pytest.warns(MaskedEmailWarning):
            clean = read_spherescout(client=client, all=True, method="pages", progress=False)
        small_sandbox.admin.set_faults(p429=0.15, seed=7)
        try:
            with pytest.warns(MaskedEmailWarning):
                limited = read_spherescout(client=client, all=True, method="pages", progress=False)
        finally:
            small_sandbox.admin.set_faults(p429=0)
    pd.testing.assert_frame_equal(limited, clean)


def test_a_search_without_matches_gives_an_empty_frame_with_the_schema(sandbox, account):
    client, _ = account
    # a category id that exists, in a country where nothing matches it (checked below)
    category = int(client.categories().iloc[-1]["id"])
    filters = {
        "countries": TINY,
        "category": category,
        "email": True,
        "website": False,
        "phone_number": False,
    }
    assert total(client, **filters) == 0
    plan = read_spherescout(filters, client=client, dry_run=True)
    assert (plan.rows, plan.method, plan.credits_needed) == (0, "pages", 0)
    with pytest.warns(MaskedEmailWarning):
        df = read_spherescout(filters, client=client, progress=False)
    assert len(df) == 0
    assert list(df.columns) == list(CONTACT_COLUMNS)
    assert table_from_pandas(df).schema.equals(CONTACT_SCHEMA)


def test_few_rows_read_by_pages_and_an_export_says_it_charges_all(sandbox, account):
    client, account_id = account
    n = total(client, countries=LARGE)
    assert n > AUTO_PAGES_MAX_ROWS + 1
    plan = read_spherescout(countries=LARGE, nrows=10, client=client, dry_run=True)
    assert (plan.method, plan.rows, plan.credits_needed) == ("pages", 10, 0)
    over = read_spherescout(
        countries=LARGE, nrows=AUTO_PAGES_MAX_ROWS + 1, client=client, dry_run=True
    )
    assert (over.method, over.credits_needed) == ("export", n)
    export = read_spherescout(
        countries=LARGE, nrows=10, method="export", client=client, dry_run=True
    )
    assert (export.method, export.rows, export.credits_needed) == ("export", 10, n)
    assert f"all {n:,} matching contacts" in export.why
    assert "nrows=10" in export.why
    ledger = sandbox.admin.ledger(account_id)
    with expected_warnings(sandbox, masked=True):
        df = read_spherescout(countries=LARGE, nrows=10, client=client, progress=False)
    assert len(df) == 10
    assert df.attrs["scoutframe"]["method"] == "pages"
    assert df.attrs["scoutframe"]["credits_spent"] == 0
    assert sandbox.admin.ledger(account_id) == ledger


class _FailFromPage:
    """Wrap ``client.search`` to make the sandbox answer 500 to everything after page 2."""

    def __init__(self, client: Client, sb: Sandbox) -> None:
        self.inner = client.search
        self.sb = sb

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        page = self.inner(*args, **kwargs)
        if kwargs.get("page") == 2:
            self.sb.admin.set_faults(p500=1.0)
        return page


def test_errors_in_page_threads_are_scoutframe_errors(small_sandbox, tmp_path, monkeypatch):
    with Client(
        small_sandbox.api_key,
        small_sandbox.url,
        allow_http=True,
        max_retries=0,
        state_dir=tmp_path / "state",
    ) as client:
        monkeypatch.setattr(client, "search", _FailFromPage(client, small_sandbox))
        try:
            with pytest.warns(MaskedEmailWarning), pytest.raises(ServerError) as caught:
                read_spherescout(
                    client=client, all=True, method="pages", concurrency=4, progress=False
                )
        finally:
            small_sandbox.admin.set_faults(p500=0)
    assert type(caught.value) is ServerError  # the worker's own exception, not a wrapper
    assert caught.value.status == 500


def test_an_interrupted_export_read_keeps_its_paid_file_private_and_pays_once(
    small_sandbox, tmp_path, monkeypatch, capsys
):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    acct = small_sandbox.admin.create_account(credits=1_000_000)
    real_write, real_read = downloads.write_body, exportcsv.read_csv

    def write_then_interrupt(*args: Any, **kwargs: Any) -> int:
        real_write(*args, **kwargs)  # the part file is on disk when Ctrl-C comes
        raise KeyboardInterrupt

    def interrupt(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    state = tmp_path / "state"
    with client_for(small_sandbox, state, acct["api_key"]) as client:
        expected = client.search(countries="US").total_count
        read = {"countries": "US", "client": client, "method": "export", "progress": False}
        monkeypatch.setattr(downloads, "write_body", write_then_interrupt)
        with pytest.raises(KeyboardInterrupt) as caught:
            read_spherescout(**read)
        job_id = client.exports.list_saved()[0].job_id
        assert job_id in " ".join(caught.value.__notes__)
        assert list(scratch.iterdir()) == []  # no contact data in the system's temp directory
        monkeypatch.setattr(downloads, "write_body", real_write)
        monkeypatch.setattr(exportcsv, "read_csv", interrupt)
        with pytest.raises(KeyboardInterrupt) as caught:
            read_spherescout(**read)  # downloaded, then Ctrl-C while parsing
        paid_file = state / "downloads" / f"{job_id}.csv"
        assert f"its file is kept at {paid_file}" in " ".join(caught.value.__notes__)
        assert paid_file.stat().st_mode & 0o777 == 0o600
        assert (state / "downloads").stat().st_mode & 0o777 == 0o700
        monkeypatch.setattr(exportcsv, "read_csv", real_read)
        capsys.readouterr()
        chunks = read_spherescout(**read, chunksize=100)
        assert len(next(chunks)) == 100
        chunks.close()  # the caller stops half way: the data did not all reach it
        assert f"export {job_id} is paid for" in capsys.readouterr().err
        assert paid_file.exists()
        df = read_spherescout(**read)
        assert len(df) == expected
        assert df.attrs["scoutframe"]["credits_spent"] == 0  # paid by the first read
        assert not paid_file.exists()  # delivered: the paid file goes
        assert list(scratch.iterdir()) == []
    debits = [e["delta"] for e in small_sandbox.admin.ledger(int(acct["id"])) if e["delta"] < 0]
    assert debits == [-expected]  # four reads, paid once


@pytest.mark.parametrize("where", ["wait", "download"])
def test_a_read_interrupted_after_paying_resumes_without_paying_again(
    sandbox, account, monkeypatch, where
):
    client, account_id = account
    read = {"countries": SMALL, "client": client, "method": "export", "progress": False}
    real_wait, real_write = jobs.ExportJob.wait, downloads.write_body

    def interrupt(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    if where == "wait":
        monkeypatch.setattr(jobs.ExportJob, "wait", interrupt)
    else:
        monkeypatch.setattr(downloads, "write_body", interrupt)
    with pytest.raises(KeyboardInterrupt) as caught:
        read_spherescout(**read)
    saved = client.exports.list_saved()
    assert len(saved) == 1
    notes = " ".join(getattr(caught.value, "__notes__", []))
    assert saved[0].job_id in notes
    assert "again" in notes
    monkeypatch.setattr(jobs.ExportJob, "wait", real_wait)
    monkeypatch.setattr(downloads, "write_body", real_write)
    df = read_spherescout(**read)
    count = total(client, countries=SMALL)
    assert len(df) == count
    assert f"resumed export {saved[0].job_id}" in df.attrs["scoutframe"]["reason"]
    assert (df.attrs["scoutframe"]["task_id"] or df.attrs["scoutframe"]["search_id"]) == saved[
        0
    ].job_id
    ledger = [int(r["delta"]) for r in sandbox.admin.ledger(account_id) if int(r["delta"]) < 0]
    assert ledger == [-count]
    assert client.exports.list_saved() == []  # downloaded: a later read starts afresh


@pytest.mark.parametrize(
    ("option", "value", "error", "message"),
    [
        ("nrows", 1.5, TypeError, r"nrows must be a whole number .*1\.5"),
        ("nrows", "5", TypeError, r"write nrows=5 \(a number, not a string\)"),
        ("nrows", True, TypeError, "nrows must be a whole number"),
        ("nrows", -1, ValueError, "nrows must be >= 0"),
        ("max_credits", "10", TypeError, "write max_credits=10"),
        ("max_credits", -1, ValueError, "max_credits must be >= 0"),
        ("chunksize", 2.5, TypeError, "chunksize must be a whole number"),
        ("chunksize", 0, ValueError, "chunksize must be >= 1"),
        ("concurrency", 0, ValueError, "concurrency must be >= 1"),
    ],
)
def test_bad_options_are_refused_up_front_with_a_clear_message(option, value, error, message):
    # Refused before any client is built or request sent (no server is given here).
    with pytest.raises(error, match=message):
        read_spherescout(countries="FR", **{option: value})


def test_filters_passed_by_keyword_get_a_message_saying_how(sandbox, account):
    client, _ = account
    with pytest.raises(TypeError, match="first positional argument") as caught:
        read_spherescout(filters={"countries": "FR"}, client=client)
    assert "Did you mean" not in str(caught.value)


def test_dry_run_of_a_search_id_checks_what_it_can_for_free(small_sandbox, tmp_path):
    with client_for(small_sandbox, tmp_path / "state") as client:
        unknown = read_spherescout("srch_00000000", client=client, dry_run=True)
        assert unknown.rows is None
        assert "unchecked" in unknown.why
        assert "no free lookup" in unknown.why
        page = client.search(countries="DE")
        job = client.exports.start(page.search_id)  # now recorded: saved handle and history
        job.wait(timeout=60)
        plan = read_spherescout(page.search_id, client=client, dry_run=True)
        assert plan.rows == page.total_count
        assert plan.credits_needed == page.total_count
        assert "found in a saved export handle" in plan.why


def test_read_export_csv_gives_the_typed_frame_of_a_downloaded_export(sandbox, account, tmp_path):
    from scoutframe.read import read_export_csv

    client, _ = account
    df = read_spherescout(countries=SMALL, client=client, method="export", progress=False)
    meta = df.attrs["scoutframe"]
    job = client.export_job(meta["task_id"] or meta["search_id"])
    path = job.download(tmp_path / "again.csv")
    again = read_export_csv(path)
    assert again.attrs == {}
    df.attrs = {}
    pd.testing.assert_frame_equal(again, df)
    assert pa.types.is_list(again["categories"].dtype.pyarrow_dtype)
    assert again["zipcode"].dtype == pd.ArrowDtype(pa.string())  # leading zeros kept
    picked = read_export_csv(path, columns=["place_id", "email"], dtype_backend="numpy_nullable")
    assert list(picked.columns) == ["place_id", "email"]
    assert all(isinstance(v, list) for v in picked["email"] if v is not None)


def test_a_pages_read_that_fails_part_way_continues_where_it_stopped(
    small_sandbox, tmp_path, monkeypatch
):
    with Client(
        small_sandbox.api_key,
        small_sandbox.url,
        allow_http=True,
        max_retries=0,
        state_dir=tmp_path / "state",
    ) as client:
        real_search = client.search
        asked: list[int] = []
        broken: list[bool] = []

        def search(*args: Any, **kwargs: Any) -> Any:
            if kwargs.get("page") is not None:
                asked.append(kwargs["page"])
            if kwargs.get("page") == 9 and not broken:  # the first walk breaks at page 9
                broken.append(True)
                small_sandbox.admin.set_faults(p500=1.0)
            return real_search(*args, **kwargs)

        monkeypatch.setattr(client, "search", search)
        read = {
            "countries": "US",
            "client": client,
            "method": "pages",
            "concurrency": 1,
            "progress": False,
        }
        try:
            with pytest.warns(MaskedEmailWarning), pytest.raises(ServerError) as caught:
                read_spherescout(**read)
        finally:
            small_sandbox.admin.set_faults(p500=0)
        note = " ".join(caught.value.__notes__)
        assert "8 pages (400 of" in note
        assert "page 9 on" in note
        assert "run the same read_spherescout call again" in note
        asked.clear()
        with pytest.warns(MaskedEmailWarning):
            df = read_spherescout(**read)
        expected = real_search(countries="US").total_count
        assert len(df) == expected
        assert df["place_id"].is_unique
        assert not set(range(2, 9)) & set(asked)  # pages kept from the first walk
        assert asked[:2] == [1, 9]  # page 1 to check nothing moved, then where it stopped
