"""Rich displays: each record says what it is, its state, its cost and what to do next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from scoutframe.api.jobs import ExportJob
from scoutframe.api.jobstore import JobStore
from scoutframe.cache.entry import Manifest
from scoutframe.models import ExportStatus, Profile, Provenance, ReadPlan

SIGNED = "http://127.0.0.2:9/exports/task_1.csv?expires=99&signature=deadbeefcafe"
KEY = "f" * 64


def test_read_plan_shows_rows_cost_and_the_way_on() -> None:
    plan = ReadPlan(
        rows=4_335,
        method="export",
        credits_needed=4_335,
        credits_available=10,
        search_id="srch_1",
        why="auto: 4,335 rows > 500 read by export",
        total_count=4_335,
    )
    page = plan._repr_html_()
    assert "4,335 rows by export" in page
    assert "credits needed" in page
    assert "The balance does not cover it" in page
    consent = ReadPlan(
        rows=600,
        method="export",
        credits_needed=600,
        credits_available=10**6,
        search_id="s",
        why="...; needs your consent to spend: ...",
    )
    assert "needs your consent" in consent._repr_html_()
    free = ReadPlan(
        rows=40, method="pages", credits_needed=0, credits_available=None, search_id="s", why="auto"
    )
    assert "Free" in free._repr_html_()
    assert "ReadPlan: 40 rows by pages" in str(free)


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ("pending", "job.wait()"),
        ("processing", "job.wait()"),
        ("ready", "job.download(path)"),
        ("failed", "refunded"),
    ],
)
def test_export_status_says_what_to_do(status: Any, words: str) -> None:
    later = datetime.now(UTC) + timedelta(days=1)
    shown = ExportStatus(
        status=status, lead_count=12, download_url=SIGNED, expires_at=later, progress=0.5
    )._repr_html_()
    assert words in shown
    assert "signature" not in shown
    assert "deadbeefcafe" not in shown


def test_export_job_display_has_no_signed_url_nor_key(tmp_path: Path) -> None:
    client = SimpleNamespace(
        state_dir=tmp_path,
        base_url="http://127.0.0.1:9",
        api_key=KEY,
        history=SimpleNamespace(entries=list),
    )
    client.job_store = JobStore(client)  # type: ignore[arg-type]
    job = ExportJob(client, search_id="srch_1", task_id="task_1", lead_count=7)  # type: ignore[arg-type]
    job.last_status = ExportStatus(status="ready", download_url=SIGNED)
    shown = job._repr_html_()
    assert "Export task_1" in shown
    assert "client.export_job(&#x27;task_1&#x27;)" in shown
    assert "signature" not in shown
    assert KEY not in shown + repr(job)


def test_provenance_profile_and_cache_entry_displays() -> None:
    provenance = Provenance(
        filters={"countries": ["FR"]},
        method="export",
        total_count=10,
        credits_spent=10,
        history_ids=(3, 9),
        cache_entry="/c/abc",
        cache_age_seconds=12.0,
        api_origin="http://127.0.0.1:9",
    )
    shown = provenance._repr_html_()
    assert "3 → 9" in shown
    assert "refresh()" in shown
    assert "10 contacts by export" in str(provenance)
    masked = Provenance(method="pages", emails_masked=True)._repr_html_()
    assert "Emails are masked" in masked
    profile = Profile(id=1, email="a@b.fr", username="a", credits=1_234)._repr_html_()
    assert "1,234" in profile
    manifest = Manifest(
        key="abcdef0123456789",
        origin="o",
        account="1",
        filters={"countries": ["FR"]},
        method="export",
        schema_version=1,
        rows=10,
        history_ids=(3, 9),
    )
    assert "Cache entry abcdef012345 (export)" in manifest._repr_html_()
    assert "rows=10" in repr(manifest)


def test_displays_escape_what_they_show() -> None:
    plan = ReadPlan(
        rows=1,
        method="pages",
        credits_needed=0,
        credits_available=None,
        search_id="<script>alert(1)</script>",
        why="x",
    )
    assert "<script>" not in plan._repr_html_()
