"""Hostile or broken servers: every answer no honest SphereScout gives, met through the public API.

Each case scripts one lie (an HTML 403 from an edge, broken or empty JSON, missing fields, an
unknown export status, a broken export file, a plain-http or cross-origin download, a redirect
away from the API, a huge ``Retry-After``, a body longer or shorter than announced, a server
that stalls) on a :class:`~scripted.ScriptedServers` pair (API and storage origins), calls the
public API, and checks:

* the specific error type, and a message that says what to do (a key phrase);
* exact request counts, and never more than one export start per read (nothing paid twice);
* nothing written to the cache directory (no ``data.parquet``) when the read failed;
* no request to any origin but the API's carried ``Authorization``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from scene import (
    EXPORT_ROWS,
    FILTERS,
    PAGE_SIZE,
    PROFILE,
    SEARCH_ID,
    SIGNATURE,
    TASK_ID,
    InstantClock,
    Scene,
    alias_host,
    companies,
    contact_row,
    export_csv,
    page_of,
    raises_quickly,
    status_answer,
)
from scripted import Answer, ScriptedOrigin, ScriptedServers, Seen, json_answer, text_answer

from scoutframe import clock as seam
from scoutframe.api import retry
from scoutframe.errors import (
    APIError,
    ConfigurationError,
    EdgeBlockedError,
    ExportParseError,
    ExportTimeoutError,
    InsufficientCreditsError,
    RateLimitError,
    TransportError,
)
from scoutframe.tables.schema import CONTACT_COLUMNS, MaskedEmailWarning, SchemaDriftWarning

HUGE_RETRY_AFTER = 999_999
EDGE_PAGE = (
    "<!DOCTYPE html><html><head><title>Access denied</title></head><body><h1>403 "
    "Forbidden</h1><p>Request blocked by the edge.</p></body></html>"
)


@pytest.fixture
def scene(tmp_path: Path, figures: Any) -> Iterator[Scene]:
    with ScriptedServers() as servers:
        made = Scene(servers, tmp_path)
        try:
            yield made
        finally:
            made.close()
    figures.add("hostile answers tried", 1)


# -- answers that are not the API's ---------------------------------------------------------------


def test_html_403_from_an_edge_is_edge_blocked(scene: Scene) -> None:
    scene.api.script("GET", "/api/user/profile", text_answer(EDGE_PAGE, 403))
    client = scene.client()
    error = raises_quickly(EdgeBlockedError, client.profile)
    assert "User-Agent" in str(error)
    assert "another network" in str(error)
    assert "<html" not in str(error).lower()  # the page itself is not dumped in the message
    assert scene.count("GET", "/api/user/profile") == 1  # a 403 is not retried
    scene.check()


def test_html_403_on_the_export_start_charges_nothing(scene: Scene) -> None:
    scene.api.script("GET", "/api/download-csv", text_answer(EDGE_PAGE, 403))
    client = scene.client()
    error = raises_quickly(EdgeBlockedError, lambda: scene.read(client))
    assert "User-Agent" in str(error)
    scene.check(starts=1)
    assert client.exports.list_saved() == []  # no handle of a start that was refused


def test_html_200_page_means_base_url_is_not_the_api(scene: Scene) -> None:
    scene.api.script(
        "GET",
        "/api/user/profile",
        text_answer("<html><body>Welcome to the hotel Wi-Fi</body></html>"),
    )
    client = scene.client()
    error = raises_quickly(ConfigurationError, client.profile)
    assert "does not look like the SphereScout API" in str(error)
    assert "SPHERESCOUT_BASE_URL" in str(error)
    assert scene.count("GET", "/api/user/profile") == 1
    scene.check()


def test_malformed_json(scene: Scene) -> None:
    scene.api.script(
        "GET",
        "/api/user/profile",
        Answer(headers={"Content-Type": "application/json"}, body=b'{"id": 7, "credits": 10'),
    )
    client = scene.client()
    error = raises_quickly(APIError, client.profile)
    assert "malformed JSON" in str(error)
    assert "try again" in str(error)
    scene.check()


def test_empty_200(scene: Scene) -> None:
    scene.api.script(
        "GET", "/api/user/profile", Answer(headers={"Content-Type": "application/json"}, body=b"")
    )
    client = scene.client()
    error = raises_quickly(APIError, client.profile)
    assert "empty body" in str(error)
    assert "try again" in str(error)
    scene.check()


def test_empty_200_on_a_search_is_an_error_not_an_empty_frame(scene: Scene) -> None:
    scene.api.script(
        "GET", "/api/companies", Answer(headers={"Content-Type": "application/json"}, body=b"")
    )
    client = scene.client()
    error = raises_quickly(APIError, lambda: scene.read(client, method="pages"))
    assert "empty body" in str(error)
    scene.check()


# -- answers missing fields -----------------------------------------------------------------------


def test_profile_without_credits_is_an_error(scene: Scene) -> None:
    """A balance that is not there must not be read as 0 (nor as anything else)."""
    scene.api.script(
        "GET",
        "/api/user/profile",
        json_answer({k: v for k, v in PROFILE.items() if k != "credits"}),
    )
    client = scene.client()
    error = raises_quickly(APIError, client.profile)
    assert "credits" in str(error)
    assert "base_url" in str(error) or "try again" in str(error).lower()
    # An export start cannot check the balance either: refused as the same broken answer,
    # not as "insufficient credits", and not sent.
    start_error = raises_quickly(APIError, lambda: client.exports.start(FILTERS))
    assert not isinstance(start_error, InsufficientCreditsError)
    scene.check(starts=0)


def test_search_without_total_count_is_an_error_not_an_empty_frame(scene: Scene) -> None:
    broken = json_answer({"search_id": SEARCH_ID, "preview": []})
    scene.api.script("GET", "/api/companies", broken)
    client = scene.client()
    error = raises_quickly(APIError, lambda: client.search(FILTERS))
    assert "malformed" in str(error)
    assert "totalCount" in str(error)
    assert "try again" in str(error)
    for method in ("pages", "auto"):
        error = raises_quickly(APIError, lambda m=method: scene.read(client, method=m))  # type: ignore[misc]
        assert "totalCount" in str(error)
    scene.check()


def test_unknown_export_status_word_times_out_naming_it(scene: Scene) -> None:
    scene.api.script("GET", "/api/download-status/", status_answer("thinking"))
    client = scene.client()
    job = client.exports.start(FILTERS)
    started = time.monotonic()
    with pytest.raises(ExportTimeoutError) as caught:
        job.wait(timeout=0.4)
    assert time.monotonic() - started < 3.0
    message = str(caught.value)
    assert "'thinking'" in message
    assert f"client.export_job({TASK_ID!r})" in message  # how to go on: resume it later
    assert caught.value.job is job
    assert scene.count("GET", "/api/download-status/") >= 2
    assert scene.storage.requests == []
    scene.check(starts=1)


# -- broken export files --------------------------------------------------------------------------

_MISSING = [c for c in CONTACT_COLUMNS if c != "email"]
_ROWS = export_csv(EXPORT_ROWS).decode().splitlines(keepends=True)
#: Rows of a file whose last rows lie well past the first 64 KiB.
MANY = 400
#: case -> (the file, the rows paid for, a phrase of the message)
BROKEN_FILES: dict[str, tuple[bytes, int, str]] = {
    "missing column": (export_csv(columns=_MISSING), EXPORT_ROWS, "'email'"),
    "invalid UTF-8 in the first rows": (
        export_csv().replace(b"Plomberie 1", b"Plomberie \xff\xfe1"),
        EXPORT_ROWS,
        "could not be read",
    ),
    "invalid UTF-8 in the last row": (
        export_csv(MANY).replace(b"Plomberie 399", b"Plomberie \xff\xfe399"),
        MANY,
        "could not be read",
    ),
    "invalid UTF-8 in the header": (
        export_csv().replace(b"instagram", b"insta\xffgram"),
        EXPORT_ROWS,
        "could not be read",
    ),
    "truncated last line": (
        "".join(_ROWS[:-1]).encode() + _ROWS[-1].encode()[:25],
        EXPORT_ROWS,
        "could not be read",
    ),
    "fewer rows than lead_count": ("".join(_ROWS[:-1]).encode(), EXPORT_ROWS, "were paid for"),
}


@pytest.mark.parametrize("case", list(BROKEN_FILES))
def test_broken_export_file_is_kept_and_never_paid_twice(scene: Scene, case: str) -> None:
    body, scene.rows, phrase = BROKEN_FILES[case]
    scene.csv = body
    client = scene.client()
    for attempt in (1, 2):  # the same read again: the kept file, no second start
        with pytest.raises(ExportParseError) as caught:
            scene.read(client)
        error = caught.value
        assert phrase in str(error), (attempt, str(error))
        assert TASK_ID in str(error)
        assert "will not pay again" in str(error)
        assert error.path.is_file()
        assert error.path.read_bytes() == body
        assert str(error.path) in str(error)
    assert scene.storage.count("GET", "/exports/") == 1
    scene.check(starts=1)


def test_duplicated_row_is_refused(scene: Scene) -> None:
    scene.csv = export_csv(EXPORT_ROWS - 1, duplicate=0)  # as many lines as were paid for
    client = scene.client()
    with pytest.raises(ExportParseError) as caught:
        scene.read(client)
    assert "repeat the place_id" in str(caught.value)
    assert TASK_ID in str(caught.value)
    assert caught.value.path.read_bytes() == scene.csv
    scene.check(starts=1)


def test_extra_column_warns_and_keeps_the_data(scene: Scene) -> None:
    scene.csv = export_csv(extra={"loyalty_tier": "gold"})
    client = scene.client()
    with pytest.warns(SchemaDriftWarning, match="loyalty_tier"):
        df = scene.read(client)
    assert isinstance(df, pd.DataFrame)
    assert len(df) == EXPORT_ROWS
    assert list(df["loyalty_tier"]) == ["gold"] * EXPORT_ROWS
    assert list(df["place_id"]) == [contact_row(i)["place_id"] for i in range(EXPORT_ROWS)]
    assert list(df["zipcode"]) == ["01000"] * EXPORT_ROWS
    scene.check(starts=1, cache_written=True)


# -- downloads and redirects that leave where they should stay ------------------------------------


@pytest.mark.parametrize("allow_http", [True, False])
def test_download_url_on_a_plain_http_host_is_refused(
    scene: Scene, servers_elsewhere: ScriptedOrigin | None, allow_http: bool
) -> None:
    name, _ = alias_host()
    port = servers_elsewhere.port if servers_elsewhere is not None else 80
    url = f"http://{name}:{port}/exports/{TASK_ID}.csv?expires=4070908800&signature={SIGNATURE}"
    scene.api.script("GET", "/api/download-status/", status_answer("ready", url))
    client = scene.client(allow_http=allow_http)
    job = client.exports.start(FILTERS)
    job.wait(timeout=5)
    target = scene.tmp / "out.csv"
    error = raises_quickly(ConfigurationError, lambda: job.download(target))
    assert "plain http" in str(error)
    assert "https" in str(error)
    assert SIGNATURE not in str(error)
    assert not target.exists()
    if servers_elsewhere is not None:
        assert servers_elsewhere.requests == []
    assert scene.storage.requests == []
    scene.check(starts=1)


@pytest.mark.parametrize("call", ["profile", "export start"])
def test_api_redirect_to_another_origin_is_not_followed(scene: Scene, call: str) -> None:
    other = scene.storage  # another origin (another port)
    redirect = Answer(status=302, headers={"Location": other.url_for("/elsewhere/api")})
    if call == "profile":
        scene.api.script("GET", "/api/user/profile", redirect)
    else:
        scene.api.script("GET", "/api/download-csv", redirect)
    client = scene.client(timeout=(2.0, 2.0))
    run = client.profile if call == "profile" else (lambda: scene.read(client))
    error = raises_quickly(ConfigurationError, run)
    assert "does not follow redirects" in str(error)
    assert "SPHERESCOUT_BASE_URL" in str(error)
    assert other.requests == []  # the other origin received nothing at all
    scene.check(starts=0 if call == "profile" else 1)
    # The same call again: refused at once as well. The redirect was an answer, not a job, so
    # nothing is left to settle (no watching the history for a start that made nothing).
    error = raises_quickly(ConfigurationError, run)
    assert "does not follow redirects" in str(error)
    assert other.requests == []
    scene.check(starts=0 if call == "profile" else 2)


@pytest.mark.parametrize("allow_http", [True, False])
def test_download_redirect_to_a_plain_http_host_is_refused(
    scene: Scene, servers_elsewhere: ScriptedOrigin | None, allow_http: bool
) -> None:
    name, _ = alias_host()
    port = servers_elsewhere.port if servers_elsewhere is not None else 80
    scene.storage.script(
        "GET",
        "/exports/",
        Answer(status=302, headers={"Location": f"http://{name}:{port}/moved/{TASK_ID}.csv"}),
    )
    client = scene.client(allow_http=allow_http)
    job = client.exports.start(FILTERS)
    target = scene.tmp / "out.csv"
    error = raises_quickly(ConfigurationError, lambda: job.download(target))
    assert "plain http" in str(error)
    assert not target.exists()
    if servers_elsewhere is not None:
        assert servers_elsewhere.requests == []
    assert scene.storage.count("GET", "/exports/") == 1
    scene.check(starts=1)


@pytest.fixture
def servers_elsewhere() -> Iterator[ScriptedOrigin | None]:
    """A scripted origin on this machine's own host name (not a loopback literal), if any."""
    _name, address = alias_host()
    if not address:
        yield None
        return
    with ScriptedServers() as servers:
        elsewhere = servers.add("elsewhere", host=address)
        elsewhere.script(None, "/", Answer(headers={"Content-Type": "text/csv"}, body=export_csv()))
        yield elsewhere


# -- Retry-After far above the cap ----------------------------------------------------------------

TOO_MANY = json_answer(
    {"detail": "Request was throttled."}, 429, headers={"Retry-After": str(HUGE_RETRY_AFTER)}
)


def _check_rate_limit(error: BaseException) -> None:
    assert isinstance(error, RateLimitError)
    assert error.retry_after == HUGE_RETRY_AFTER
    assert f"try again in {HUGE_RETRY_AFTER}" in str(error)


def test_huge_retry_after_on_a_free_call(scene: Scene) -> None:
    scene.api.script("GET", "/api/user/profile", TOO_MANY)
    client = scene.client()
    _check_rate_limit(raises_quickly(RateLimitError, client.profile))
    assert scene.count("GET", "/api/user/profile") == 1
    scene.check()


def test_huge_retry_after_on_a_search_page_of_a_pages_read(scene: Scene) -> None:
    total = PAGE_SIZE + 10  # two pages
    pages = companies(total)
    scene.api.script("GET", "/api/companies", pages)
    scene.api.script("GET", "/api/companies", TOO_MANY, when=lambda s: page_of(s) == 2)
    client = scene.client()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MaskedEmailWarning)
        error = raises_quickly(
            RateLimitError, lambda: scene.read(client, method="pages", concurrency=1)
        )
        _check_rate_limit(error)
        error = raises_quickly(
            RateLimitError,
            lambda: scene.read(client, method="pages", concurrency=1, cache=False, cache_dir=None),
        )
        _check_rate_limit(error)
    numbers = [page_of(s) for s in scene.api.requests if page_of(s) is not None]
    # Each read asks page 1 once (the plan keeps it) and page 2 once; no page 3 exists.
    assert numbers.count(2) == 2
    assert 3 not in numbers
    assert numbers.count(1) <= 2
    scene.check()


def test_huge_retry_after_on_an_export_start(scene: Scene) -> None:
    scene.api.script("GET", "/api/download-csv", TOO_MANY)
    client = scene.client()
    _check_rate_limit(raises_quickly(RateLimitError, lambda: scene.read(client)))
    assert scene.storage.requests == []
    scene.check(starts=1)
    _check_rate_limit(raises_quickly(RateLimitError, lambda: client.exports.start(FILTERS)))
    scene.check(starts=2)  # one per call: never sent again on its own


# -- bodies longer or shorter than announced, and a server that stalls ----------------------------


def test_json_body_longer_than_announced(scene: Scene) -> None:
    body = b'{"id": 7, "credits": 1000, "padding": "' + b"x" * 50_000 + b'"}'
    scene.api.script(
        "GET",
        "/api/user/profile",
        Answer(headers={"Content-Type": "application/json"}, body=body, content_length=20),
    )
    client = scene.client()
    error = raises_quickly(APIError, client.profile)
    assert "malformed JSON" in str(error)
    assert "try again" in str(error)
    scene.check()


def test_json_body_cut_shorter_than_announced(scene: Scene) -> None:
    body = json_answer(PROFILE).body
    scene.api.script(
        "GET",
        "/api/user/profile",
        Answer(headers={"Content-Type": "application/json"}, body=body, drop_after=len(body) // 2),
    )
    client = scene.client()
    error = raises_quickly(TransportError, client.profile)
    assert "broke" in str(error)
    assert "Try again" in str(error)
    assert scene.count("GET", "/api/user/profile") == 2  # max_retries=1: sent once more
    scene.check()


def test_export_body_longer_than_announced(scene: Scene) -> None:
    scene.csv = export_csv(EXPORT_ROWS + 40)
    cut = len(export_csv(EXPORT_ROWS)) - 7  # inside the last paid row
    scene.storage.script(
        "GET",
        "/exports/",
        lambda _: Answer(headers={"Content-Type": "text/csv"}, body=scene.csv, content_length=cut),
    )
    client = scene.client()
    with pytest.raises(ExportParseError) as caught:
        scene.read(client)
    assert TASK_ID in str(caught.value)
    assert "will not pay again" in str(caught.value)
    assert caught.value.path.read_bytes() == scene.csv[:cut]
    scene.check(starts=1)


def test_export_body_without_a_length_cut_at_a_row_is_refused(scene: Scene) -> None:
    """Regression: a body sent without Content-Length was accepted at whatever length arrived
    (202 of 403 paid rows became a frame); the rows paid for are the check now."""
    half = "".join(_ROWS[: 1 + EXPORT_ROWS // 2]).encode()  # the header and half the rows
    scene.storage.script(
        "GET",
        "/exports/",
        lambda _: Answer(headers={"Content-Type": "text/csv"}, body=half, announce_length=False),
    )
    client = scene.client()
    with pytest.raises(ExportParseError) as caught:
        scene.read(client)
    assert f"where {EXPORT_ROWS:,} were paid for" in str(caught.value)
    assert "will not pay again" in str(caught.value)
    assert caught.value.path.read_bytes() == half
    scene.check(starts=1)


def test_export_body_cut_short_once_is_resumed(scene: Scene) -> None:
    full = export_csv()
    half = len(full) // 2

    def ranged(seen: Seen) -> Answer:
        wanted = seen.header("Range")
        if wanted is None:
            return Answer(
                headers={"Content-Type": "text/csv", "ETag": '"v1"'}, body=full, drop_after=half
            )
        start = int(wanted.split("=")[1].split("-")[0])
        return Answer(
            status=206,
            body=full[start:],
            headers={
                "Content-Type": "text/csv",
                "ETag": '"v1"',
                "Content-Range": f"bytes {start}-{len(full) - 1}/{len(full)}",
            },
        )

    scene.storage.script("GET", "/exports/", ranged)
    client = scene.client()
    df = scene.read(client)
    assert list(df["place_id"]) == [contact_row(i)["place_id"] for i in range(EXPORT_ROWS)]
    sent = scene.storage.requests
    assert len(sent) == 2
    assert sent[1].header("Range") == f"bytes={half}-"
    scene.check(starts=1, cache_written=True)


def test_export_body_always_cut_short_gives_up_and_keeps_the_part(scene: Scene) -> None:
    full = export_csv()
    scene.storage.script(
        "GET",
        "/exports/",
        Answer(headers={"Content-Type": "text/csv"}, body=full, drop_after=len(full) // 2),
    )
    client = scene.client()
    job = client.exports.start(FILTERS)
    job.wait(timeout=5)
    target = scene.tmp / "out.csv"
    with seam.use_clock(InstantClock()):
        error = raises_quickly(TransportError, lambda: job.download(target))
    assert "download() again to resume" in str(error)
    assert not target.exists()
    assert job.part_path(target).read_bytes() == full[: len(full) // 2]
    assert scene.storage.count("GET", "/exports/") == retry.DOWNLOAD_STALLS.attempts
    assert SIGNATURE not in str(error)
    scene.check(starts=1)


def test_server_that_stalls_times_out(scene: Scene) -> None:
    scene.api.script("GET", "/api/user/profile", json_answer(PROFILE, stall=5.0))
    client = scene.client(timeout=(2.0, 0.3))
    error = raises_quickly(TransportError, client.profile)
    assert "read timeout" in str(error)
    assert "Client(timeout=" in str(error)
    assert scene.count("GET", "/api/user/profile") == 2  # max_retries=1
    scene.check()
