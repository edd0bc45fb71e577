"""Export jobs without sockets: polling, handle persistence, resumable downloads, redaction."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import urllib3.exceptions

from scoutframe import clock as seam
from scoutframe.api import retry
from scoutframe.api.filters import Filters
from scoutframe.api.jobs import ExportJob
from scoutframe.api.jobstore import JobStore
from scoutframe.api.retry import RetryPolicy
from scoutframe.errors import ExportFailedError, ExportTimeoutError, NotFoundError, TransportError

SECRET_KEY = "f" * 64
SIGNED_URL = "http://127.0.0.2:9/exports/task_1.csv?expires=99&signature=deadbeefcafe"


class FakeTransport:
    """Answers status requests from a script; records the paths asked."""

    timeout = (5.0, 60.0)

    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.paths: list[str] = []

    def get_json(self, path: str, params: Any = None) -> Any:
        self.paths.append(path)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class FakeClient:
    def __init__(self, state_dir: Path, answers: list[Any]) -> None:
        self.state_dir = state_dir
        self.transport = FakeTransport(answers)
        self.retry = RetryPolicy(poll_interval=(0.5, 2.0))
        self.base_url = "http://127.0.0.1:8000"
        self.api_key = SECRET_KEY
        self.history = SimpleNamespace(entries=list)  # no history entries to match
        self.job_store = JobStore(self)  # type: ignore[arg-type]


@pytest.fixture
def sleeps(fake_clock: Any) -> list[float]:
    """The pauses the job takes, on the fake retry clock (nothing really sleeps)."""
    return fake_clock.sleeps  # type: ignore[no-any-return]


def _not_found() -> NotFoundError:
    return NotFoundError(404, "Not found.", {"detail": "Not found."}, None)


def _job(tmp_path: Path, answers: list[Any], **kwargs: Any) -> tuple[ExportJob, FakeClient]:
    client = FakeClient(tmp_path / "state", answers)
    filters = Filters.from_any({"countries": ["FR", "BE"], "email": True})
    fields: dict[str, Any] = {
        "search_id": "srch_1",
        "task_id": "task_1",
        "lead_count": 7,
        "filters": filters,
        **kwargs,
    }
    return ExportJob(client, **fields), client  # type: ignore[arg-type]


def test_handle_round_trips_through_a_private_file(tmp_path: Path) -> None:
    job, client = _job(tmp_path, [{}])
    path = job.save()
    assert path.parent == tmp_path / "state" / "jobs"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    found = client.job_store.find("srch_1")
    assert found is not None
    again = ExportJob.from_handle(client, found)  # type: ignore[arg-type]
    assert (again.task_id, again.search_id, again.lead_count) == ("task_1", "srch_1", 7)
    assert again.filters == job.filters
    assert again.created_at == job.created_at
    assert again.to_dict() == job.to_dict()


def test_handle_carries_no_credential_nor_signed_url(tmp_path: Path) -> None:
    job, _ = _job(tmp_path, [{"status": "ready", "download_url": SIGNED_URL}])
    job.refresh()
    text = job.save().read_text()
    assert SECRET_KEY not in text
    assert "signature" not in text
    assert "exports/" not in text
    assert set(json.loads(text)) == {
        "version",
        "task_id",
        "search_id",
        "lead_count",
        "filters",
        "flavor",
        "origin",
        "created_at",
        "history_id",
        "state",
        "newest_history_id",
    }
    assert "signature" not in repr(job)
    assert SECRET_KEY not in repr(job)


def test_store_lists_newest_first_and_skips_damaged_files(tmp_path: Path) -> None:
    old, client = _job(
        tmp_path, [{}], task_id="task_old", created_at=datetime.now(UTC) - timedelta(hours=1)
    )
    new, _ = _job(tmp_path, [{}], task_id="task_new")
    old.save()
    new.save()
    (tmp_path / "state" / "jobs" / "junk.json").write_text("{not json")
    handles = client.job_store.handles()
    assert [h.task_id for h in handles] == ["task_new", "task_old"]
    assert client.state_dir.exists()


def test_wait_polls_with_backoff_until_ready(tmp_path: Path, sleeps: list[float]) -> None:
    answers = [
        {"status": "pending"},
        {"status": "processing", "progress": 0.5},
        {"status": "processing"},
        {"status": "ready", "download_url": SIGNED_URL},
    ]
    job, client = _job(tmp_path, answers)
    seen: list[str] = []
    status = job.wait(timeout=60, on_status=lambda s: seen.append(s.status))
    assert status.status == "ready"
    assert status.download_url == SIGNED_URL
    assert seen == ["pending", "processing", "processing", "ready"]
    assert sleeps == [0.5, 0.75, 1.125]
    assert client.transport.paths == ["/api/download-status/task_1"] * 4


def test_live_job_polls_by_search_id_and_fetches_the_url(
    tmp_path: Path, sleeps: list[float]
) -> None:
    answers = [{"status": "processing"}, {"status": "completed"}, {"download_url": SIGNED_URL}]
    job, client = _job(tmp_path, answers, task_id=None, flavor="live")
    status = job.wait(timeout=60)
    assert status.status == "ready"
    assert status.download_url == SIGNED_URL
    assert client.transport.paths == ["/api/download-status/srch_1/"] * 2 + [
        "/api/download-completed-csv/srch_1/"
    ]
    assert len(sleeps) == 1


def test_wait_tolerates_404_right_after_creation(tmp_path: Path, sleeps: list[float]) -> None:
    job, _ = _job(tmp_path, [_not_found(), _not_found(), {"status": "ready"}])
    assert job.wait(timeout=60).status == "ready"
    assert len(sleeps) == 2


def test_wait_raises_404_for_an_old_job(tmp_path: Path, sleeps: list[float]) -> None:
    old = seam.clock().now() - timedelta(hours=2)
    job, _ = _job(tmp_path, [_not_found()], created_at=old)
    with pytest.raises(NotFoundError):
        job.wait(timeout=60)
    assert sleeps == []


def test_failed_export_raises_with_the_server_message_and_the_job(
    tmp_path: Path, sleeps: list[float]
) -> None:
    job, _ = _job(tmp_path, [{"status": "processing"}, {"status": "failed", "error": "disk full"}])
    with pytest.raises(ExportFailedError, match="disk full") as caught:
        job.wait(timeout=60)
    assert caught.value.job is job
    assert job.state == "failed"


def test_wait_times_out_with_a_resumable_job(tmp_path: Path, sleeps: list[float]) -> None:
    job, _ = _job(tmp_path, [{"status": "processing"}])
    with pytest.raises(ExportTimeoutError, match="task_1") as caught:
        job.wait(timeout=3.0)
    assert caught.value.job is job
    assert sum(sleeps) == pytest.approx(3.0)  # the last pause is cut to the deadline
    assert sleeps[:3] == [0.5, 0.75, 1.125]


class FakeBody:
    """A response body handing out ``data`` then, if ``cut``, failing like a dropped link."""

    def __init__(self, data: bytes, cut: bool) -> None:
        self.data, self.cut = data, cut

    def read1(self, amt: int, decode_content: bool = True) -> bytes:
        if not self.data:
            if self.cut:
                raise urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead")
            return b""
        piece, self.data = self.data[:amt], self.data[amt:]
        return piece


class FakeResponse:
    def __init__(self, status: int, headers: dict[str, str], body: bytes, cut: bool) -> None:
        self.status_code, self.headers = status, headers
        self.raw = FakeBody(body, cut)

    def close(self) -> None:
        pass


class FakeStorage:
    """Serves ``content`` by the rules in ``plan``: one rule per request, last one repeats."""

    def __init__(self, content: bytes, plan: list[str]) -> None:
        self.content, self.plan = content, plan
        self.ranges: list[str | None] = []
        self.if_ranges: list[str | None] = []

    def download(self, url: str, *, headers: dict[str, str] | None = None) -> FakeResponse:
        asked = (headers or {}).get("Range")
        self.ranges.append(asked)
        self.if_ranges.append((headers or {}).get("If-Range"))
        rule = self.plan.pop(0) if len(self.plan) > 1 else self.plan[0]
        size = len(self.content)
        start = int(asked[len("bytes=") : -1]) if asked else 0
        if rule == "ignore-range":
            start = 0
        if rule == "wrong-range" and asked:
            start = max(0, start - 1)
        body = self.content[start:]
        if start:
            head = {
                "Content-Range": f"bytes {start}-{size - 1}/{size}",
                "Content-Length": str(len(body)),
            }
            status = 206
        else:
            head, status = {"Content-Length": str(size)}, 200
        head["ETag"] = '"v1"'
        if rule == "cut":
            return FakeResponse(status, head, body[: len(body) // 3], cut=True)
        if rule == "short":  # closes early without an error: only the count shows it
            return FakeResponse(status, head, body[: len(body) // 2], cut=False)
        return FakeResponse(status, head, body, cut=False)


@pytest.mark.parametrize(
    "plan",
    [
        ["cut", "ok"],
        ["short", "ok"],
        ["cut", "cut", "ok"],
        ["cut", "ignore-range"],
        ["cut", "wrong-range", "ok"],
    ],
)
def test_download_resumes_and_checks_the_byte_count(
    tmp_path: Path, sleeps: list[float], plan: list[str]
) -> None:
    content = bytes(range(256)) * 40
    job, client = _job(tmp_path, [{"status": "ready", "download_url": SIGNED_URL}])
    storage = FakeStorage(content, list(plan))
    client.transport.download = storage.download  # type: ignore[attr-defined]
    target = tmp_path / "out.csv"
    seen: list[tuple[int, int | None]] = []
    got = job.download(target, on_bytes=lambda d, t: seen.append((d, t)), chunk_size=1000)
    assert got == target
    assert target.read_bytes() == content
    assert seen[-1] == (len(content), len(content))
    assert storage.ranges[0] is None
    assert any(r is not None for r in storage.ranges[1:])
    # Every resumed request names the version it continues, so a changed file comes whole.
    assert all(i == '"v1"' for r, i in zip(storage.ranges, storage.if_ranges, strict=True) if r)
    assert not job.part_path(target).exists()
    assert job.state == "done"


def test_download_gives_up_after_bounded_attempts_and_leaves_no_target(
    tmp_path: Path, sleeps: list[float]
) -> None:
    job, client = _job(tmp_path, [{"status": "ready", "download_url": SIGNED_URL}])
    storage = FakeStorage(b"x" * 3000, ["cut"])
    storage.content = b""  # every answer breaks before a single byte arrives
    client.transport.download = storage.download  # type: ignore[attr-defined]
    target = tmp_path / "out.csv"
    with pytest.raises(TransportError, match="6 times"):
        job.download(target)
    assert len(storage.ranges) == retry.DOWNLOAD_STALLS.attempts
    assert sleeps == [0.2, 0.4, 0.8, 1.6, 2.0]  # the budget's pauses between the 6 tries
    assert not target.exists()


def test_handles_of_another_server_are_not_offered(tmp_path: Path) -> None:
    here, client = _job(tmp_path, [{}], task_id="task_here")
    there, _ = _job(tmp_path, [{}], task_id="task_there")
    there.origin = "https://www.spherescout.io"
    here.save()
    there.save()
    assert [h.task_id for h in client.job_store.handles()] == ["task_here"]
    assert client.job_store.find("task_there") is None
    elsewhere = SimpleNamespace(state_dir=client.state_dir, base_url=there.origin)
    found = JobStore(elsewhere).find("task_there")  # type: ignore[arg-type]
    assert found is not None
    assert found.task_id == "task_there"


def test_a_download_whose_storage_moved_asks_for_the_url_again(
    tmp_path: Path, sleeps: list[float]
) -> None:
    """Regression: after a storage restart (a new address) the same ExportJob kept the old
    signed URL for ever; now repeated failures make it ask the server for the URL again."""
    moved = SIGNED_URL.replace("127.0.0.2:9", "127.0.0.2:10")
    ready_old = {"status": "ready", "download_url": SIGNED_URL}
    ready_new = {"status": "ready", "download_url": moved}
    job, client = _job(tmp_path, [ready_old, ready_new])
    content = b"place_id,name\np1,A\n" * 50
    asked: list[str] = []

    def download(url: str, *, headers: dict[str, str] | None = None) -> FakeResponse:
        asked.append(url)
        if url == SIGNED_URL:  # the old storage is gone: every attempt breaks at once
            return FakeResponse(200, {"Content-Length": str(len(content))}, b"", cut=True)
        return FakeResponse(200, {"Content-Length": str(len(content))}, content, cut=False)

    client.transport.download = download  # type: ignore[attr-defined]
    target = tmp_path / "out.csv"
    assert job.download(target) == target
    assert target.read_bytes() == content
    assert asked == [SIGNED_URL] * 3 + [moved]
    assert client.transport.paths.count("/api/download-status/task_1") == 2


def test_an_unknown_status_word_is_named_when_the_wait_times_out(
    tmp_path: Path, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    job, _ = _job(tmp_path, [{"status": "quarantined"}])
    with pytest.raises(ExportTimeoutError, match="kept answering 'quarantined'"):
        job.wait(timeout=5.0)
    assert [r.levelname for r in caplog.records if "quarantined" in r.getMessage()] == ["WARNING"]


def test_prune_drops_old_finished_handles_and_unclaimed_paid_files_only(tmp_path: Path) -> None:
    """Regression: saved handles were never pruned (59 after one reliability run)."""
    from scoutframe.models import JobHandle

    here = SimpleNamespace(state_dir=tmp_path, base_url="http://127.0.0.1:9")
    there = SimpleNamespace(state_dir=tmp_path, base_url="http://127.0.0.1:10")
    store, other = JobStore(here), JobStore(there)  # type: ignore[arg-type]
    now = datetime.now(UTC)
    ages = {
        "done-old": ("done", 40),
        "done-recent": ("done", 10),
        "failed-old": ("failed", 2),
        "failed-new": ("failed", 0),
        "active-old": ("active", 400),
        "provisional-old": ("provisional", 400),
    }
    for name, (state, days) in ages.items():
        store.save(
            JobHandle(
                search_id=f"srch_{name}",
                task_id=f"task_{name}",
                state=state,  # type: ignore[arg-type]
                origin=here.base_url,
                created_at=now - timedelta(days=days),
            )
        )
    other.save(
        JobHandle(
            search_id="srch_x",
            task_id="task_theirs",
            state="active",
            origin=there.base_url,
            created_at=now - timedelta(days=400),
        )
    )
    for job in ("task_done-recent", "task_active-old", "task_theirs", "task_nobody"):
        store.download_path(job).write_text("place_id\np1\n")

    assert store.prune() == 3  # two stale handles, one paid file nobody claims
    assert sorted(h.job_id for h in store.handles()) == [
        "task_active-old",
        "task_done-recent",
        "task_failed-new",
        "task_provisional-old",
    ]
    assert sorted(p.stem for p in store.downloads.glob("*.csv")) == [
        "task_active-old",
        "task_done-recent",
        "task_theirs",
    ]  # another origin's stays
    assert [h.job_id for h in other.handles()] == ["task_theirs"]
    assert store.prune() == 0
