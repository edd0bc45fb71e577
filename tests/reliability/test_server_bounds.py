"""Bounds on what a hostile server can make the client hold, write or wait for.

A scripted SphereScout (:mod:`scene`) streams answers no honest server gives: a 500 MB search
page, an export CSV that never ends, gzip bodies of 1000:1 (JSON and CSV), a body that
announces 10 GB, bodies trickling a byte at a time. Each case checks the specific error, the
bytes the server managed to send before the client stopped, the memory the read took
(``tracemalloc``: every Python allocation, the server's own included), the time, and that a
paid export stays resumable (nothing paid twice, no file left half-written). The bounds
checked are those :mod:`scoutframe.api.bodies` states:

* an API answer: at most ``MAX_ANSWER_BYTES`` (16 MiB) decoded, whole within the read timeout
  after its headers; memory ~ that bound;
* an export or delta body: at most ``MAX_ROW_BYTES`` (16 KiB) a paid row, on disk, and at
  least ``MIN_BYTES_PER_WINDOW`` (64 KiB) every read-timeout window.
"""

from __future__ import annotations

import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from scene import EXPORT_ROWS, FILTERS, PROFILE, Scene, export_csv, status_answer
from scripted import Answer, ScriptedServers, Seen, json_answer

from scoutframe.api import bodies
from scoutframe.errors import AnswerTooLargeError, TransportError

MIB = 1 << 20
#: Memory a bounded read may take beyond its bound (buffers, the server thread, the parser).
SLACK = 12 * MIB


@pytest.fixture
def scene(tmp_path: Path, figures: Any) -> Iterator[Scene]:
    with ScriptedServers() as servers:
        made = Scene(servers, tmp_path)
        try:
            yield made
        finally:
            made.close()
    figures.add("server bounds: hostile bodies tried", 1)


class Measured:
    """Time and peak Python memory of a block (``tracemalloc``)."""

    def __enter__(self) -> Measured:
        tracemalloc.start()
        self._started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.monotonic() - self._started
        self.peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def endless(first: bytes, piece: bytes, total: int | None = None) -> Callable[[], Iterator[bytes]]:
    """A body: ``first``, then ``piece`` again and again (up to ``total`` bytes, or for ever)."""

    def make() -> Iterator[bytes]:
        yield first
        sent = len(first)
        while total is None or sent < total:
            yield piece
            sent += len(piece)

    return make


def gzipped(first: bytes, filler: bytes, decoded: int) -> Callable[[], Iterator[bytes]]:
    """A gzip body of about 1000:1: ``first``, then ``filler`` up to ``decoded`` bytes."""

    def make() -> Iterator[bytes]:
        squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)
        yield squeeze.compress(first)
        block = filler * (MIB // len(filler))
        for _ in range(decoded // len(block)):
            out = squeeze.compress(block)
            if out:
                yield out
        yield squeeze.flush()

    return make


def trickled(body: bytes) -> Callable[[], Iterator[bytes]]:
    def make() -> Iterator[bytes]:
        for i in range(len(body)):
            yield body[i : i + 1]

    return make


def _page_start() -> bytes:
    return b'{"totalCount": 3, "search_id": "srch_hostile", "page": 1, "num_pages": 1, "preview": ['


_CONTACT = (
    b'{"place_id": "ChIJhuge", "name": "Plomberie", "email": [], "phone": ["+33 1 00"], '
    b'"website": "", "instagram": "", "facebook": "", "address": "1 rue", "city": "Paris", '
    b'"zipcode": "01000", "country": "FR", "categories": ["Plumber"], "rating": 4.5}, '
)


def test_a_500_mb_search_page_is_refused_at_16_mib(scene: Scene, figures: Any) -> None:
    scene.api.script(
        "GET",
        "/api/companies",
        Answer(
            headers={"Content-Type": "application/json"},
            stream=endless(_page_start(), _CONTACT * 200, total=500 * MIB),
        ),
    )
    client = scene.client()
    with Measured() as used, pytest.raises(AnswerTooLargeError) as caught:
        scene.read(client, method="pages", cache=False, cache_dir=None)
    assert caught.value.limit == bodies.MAX_ANSWER_BYTES
    assert "more than 16,777,216 bytes" in str(caught.value)
    assert "SPHERESCOUT_BASE_URL" in str(caught.value)
    assert scene.api.count("GET", "/api/companies") == 1  # not asked again
    assert scene.api.streamed < 64 * MIB  # the client hung up: the rest was never sent
    assert used.peak < bodies.MAX_ANSWER_BYTES + SLACK
    assert used.seconds < 10
    scene.check()
    figures.add("server bounds: 500 MB page, MiB the server got sent", scene.api.streamed // MIB)
    figures.add("server bounds: 500 MB page, peak memory of the read (MiB)", used.peak // MIB)


def test_a_gzip_bomb_json_answer_stops_at_the_bound(scene: Scene, figures: Any) -> None:
    scene.api.script(
        "GET",
        "/api/user/profile",
        Answer(
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
            stream=gzipped(b'{"credits": 5, "pad": "', b" ", decoded=1000 * MIB),
        ),
    )
    client = scene.client()
    with Measured() as used, pytest.raises(AnswerTooLargeError):
        client.profile()
    assert scene.api.streamed < 2 * MIB  # ~16 KiB of gzip made the 16 MiB
    assert used.peak < bodies.MAX_ANSWER_BYTES + SLACK
    assert used.seconds < 10
    scene.check()
    figures.add("server bounds: gzip bomb, KiB sent for the 16 MiB read", scene.api.streamed >> 10)


def test_a_trickling_answer_ends_within_the_read_timeout(scene: Scene) -> None:
    body = json_answer(PROFILE).body
    scene.api.script(
        "GET",
        "/api/user/profile",
        Answer(headers={"Content-Type": "application/json"}, stream=trickled(body), trickle=0.25),
    )
    client = scene.client(timeout=(2.0, 1.0))
    started = time.monotonic()
    with pytest.raises(TransportError) as caught:
        client.profile()
    elapsed = time.monotonic() - started
    assert "too slowly" in str(caught.value)
    assert "Client(timeout=" in str(caught.value)
    assert scene.count("GET", "/api/user/profile") == 2  # max_retries=1: once more, then stop
    # Each try: the read timeout for the body, plus one trickle step.
    assert elapsed < 2 * (1.0 + 0.25) + 1.5
    scene.check()


# -- export bodies: bounded by the rows paid for --------------------------------------------------


def _paid_job(scene: Scene, **client_options: Any) -> Any:
    client = scene.client(**client_options)
    job = client.exports.start(FILTERS)
    job.wait(timeout=5)
    return client, job


def _resumes_for_free(scene: Scene, client: Any, job: Any, target: Path) -> None:
    """Honest storage again: the same job downloads its file, and nothing starts twice."""
    scene.storage.script(
        "GET", "/exports/", lambda _: Answer(headers={"Content-Type": "text/csv"}, body=scene.csv)
    )
    again = client.export_job(job.job_id)
    assert again.download(target) == target
    assert target.read_bytes() == scene.csv
    scene.check(starts=1)


def test_an_export_body_that_never_ends_stops_at_what_was_paid(scene: Scene, figures: Any) -> None:
    header = export_csv(0)
    scene.storage.script(
        "GET",
        "/exports/",
        Answer(
            headers={"Content-Type": "text/csv"},
            stream=endless(header, export_csv(1)[len(header) :]),
        ),
    )
    client, job = _paid_job(scene)
    target = scene.tmp / "out.csv"
    limit = bodies.paid_bytes(EXPORT_ROWS)
    assert limit == bodies.MAX_ROW_BYTES * (EXPORT_ROWS + 1)
    with Measured() as used, pytest.raises(AnswerTooLargeError) as caught:
        job.download(target)
    assert caught.value.limit == limit
    assert "nothing more is charged" in str(caught.value)
    assert not target.exists()
    assert not job.part_path(target).exists()  # what came past the bound is not kept
    assert scene.storage.streamed < limit + 8 * MIB
    assert used.seconds < 10
    assert job.state == "active"  # still paid for, still resumable
    _resumes_for_free(scene, client, job, target)
    figures.add("server bounds: endless bodies stopped", 1)


def test_an_announced_length_past_the_bound_is_refused_before_reading(scene: Scene) -> None:
    scene.storage.script(
        "GET",
        "/exports/",
        Answer(
            headers={"Content-Type": "text/csv"},
            content_length=10_000_000_000,
            stream=endless(b"", b"x" * 65_536),
        ),
    )
    client, job = _paid_job(scene)
    target = scene.tmp / "out.csv"
    with pytest.raises(AnswerTooLargeError) as caught:
        job.download(target)
    assert "10,000,000,000 bytes" in str(caught.value)
    assert not job.part_path(target).exists()
    _resumes_for_free(scene, client, job, target)


def test_a_gzip_bomb_export_stops_at_what_was_paid(scene: Scene) -> None:
    scene.storage.script(
        "GET",
        "/exports/",
        Answer(
            headers={"Content-Type": "text/csv", "Content-Encoding": "gzip"},
            stream=gzipped(export_csv(1), b"0", decoded=1000 * MIB),
        ),
    )
    client, job = _paid_job(scene)
    target = scene.tmp / "out.csv"
    with Measured() as used, pytest.raises(AnswerTooLargeError):
        job.download(target)
    assert scene.storage.streamed < MIB
    assert used.peak < SLACK
    _resumes_for_free(scene, client, job, target)


def test_a_trickling_export_stops_and_resumes_from_what_came(scene: Scene, figures: Any) -> None:
    scene.storage.script(
        "GET",
        "/exports/",
        Answer(headers={"Content-Type": "text/csv"}, stream=trickled(scene.csv), trickle=0.2),
    )
    client, job = _paid_job(scene, timeout=(2.0, 1.0))
    target = scene.tmp / "out.csv"
    started = time.monotonic()
    with pytest.raises(TransportError) as caught:
        job.download(target)
    elapsed = time.monotonic() - started
    assert "too slowly" in str(caught.value)
    assert "call download() again to resume" in str(caught.value)
    kept = job.part_path(target).read_bytes()
    assert kept
    assert scene.csv.startswith(kept)
    assert elapsed < 1.0 + 0.2 + 1.5  # one window, one trickle step, and slack
    full = scene.csv

    def ranged(seen: Seen) -> Answer:
        start = int((seen.header("Range") or "bytes=0-").split("=")[1].split("-")[0])
        return Answer(
            status=206,
            body=full[start:],
            headers={"Content-Range": f"bytes {start}-{len(full) - 1}/{len(full)}"},
        )

    scene.storage.script("GET", "/exports/", ranged)
    assert client.export_job(job.job_id).download(target) == target
    assert target.read_bytes() == full
    assert scene.storage.requests[-1].header("Range") == f"bytes={len(kept)}-"
    scene.check(starts=1)
    figures.add("server bounds: trickling bodies stopped", 1)


def test_the_status_answer_is_the_same_bound(scene: Scene) -> None:
    """The bound holds for every JSON answer, a charging one included (read once, not again)."""
    scene.api.script(
        "GET",
        "/api/download-status/",
        Answer(
            headers={"Content-Type": "application/json"},
            stream=endless(b'{"status": "ready", "pad": "', b"x" * 65_536),
        ),
    )
    client = scene.client()
    job = client.exports.start(FILTERS)
    with pytest.raises(AnswerTooLargeError):
        job.wait(timeout=5)
    assert scene.count("GET", "/api/download-status/") == 1
    scene.api.script("GET", "/api/download-status/", status_answer("ready", scene.download_url))
    assert job.download(scene.tmp / "out.csv").read_bytes() == scene.csv
    scene.check(starts=1)
