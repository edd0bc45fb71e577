"""The storage origin over real HTTP: signatures, expiry, Range, HEAD, broken downloads."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from scoutframe.sandbox.faults import FaultConfig, FaultInjector
from scoutframe.sandbox.storage import (
    CHUNK_SIZE,
    ExpiredError,
    SignatureError,
    UrlSigner,
    create_storage_app,
    parse_range,
)

SECRET = b"test-secret-not-a-real-one"
CONTENT = "".join(f'row {i:06d},é,"q"\n' for i in range(40_000)).encode()  # ~720 kB


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Storage:
    def __init__(self, origin: str, signer: UrlSigner, clock: FakeClock, faults: FaultInjector):
        self.origin = origin
        self.signer = signer
        self.clock = clock
        self.faults = faults

    def url(self, name: str = "export.csv", ttl: float = 3600) -> str:
        return self.signer.sign(name, self.clock.now + ttl)


@pytest.fixture(scope="module")
def storage_server(tmp_path_factory: pytest.TempPathFactory, serve: Any) -> Iterator[Storage]:
    export_dir = tmp_path_factory.mktemp("exports")
    (export_dir / "export.csv").write_bytes(CONTENT)
    (export_dir / "empty.csv").write_bytes(b"")
    (export_dir / "tiny.csv").write_bytes(b"a,b\n")
    (export_dir / "outside.csv").write_bytes(b"secret")
    clock = FakeClock()
    faults = FaultInjector()
    # The signer's base URL is the server's, known once it runs (port 0).
    signer = UrlSigner(SECRET, "http://placeholder", clock)
    app = create_storage_app(export_dir, signer, faults)
    with serve(app) as origin:
        signer.base_url = origin
        yield Storage(origin, signer, clock, faults)


@pytest.fixture
def storage(storage_server: Storage) -> Iterator[Storage]:
    storage_server.faults.update(reset=0.0, truncate=0.0, seed=0)
    start = storage_server.clock.now
    yield storage_server
    storage_server.clock.now = start
    storage_server.faults.update(reset=0.0, truncate=0.0, seed=0)


# -- signing, without HTTP ----------------------------------------------------------------


def test_signed_url_shape() -> None:
    signer = UrlSigner(SECRET, "http://127.0.0.2:9000/", lambda: 0.0)
    url = signer.sign("task_abc.csv", 1_900_000_000.7)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == "http://127.0.0.2:9000"
    assert parts.path == "/exports/task_abc.csv"
    query = parse_qs(parts.query)
    assert query["expires"] == ["1900000000"]
    assert len(query["signature"][0]) == 64
    assert SECRET.decode() not in url
    assert SECRET.decode() not in repr(signer)


def test_check_rejects_tampering_and_expiry() -> None:
    clock = FakeClock()
    signer = UrlSigner(SECRET, "http://x", clock)
    query = parse_qs(urlsplit(signer.sign("a.csv", clock.now + 10)).query)
    expires, signature = query["expires"][0], query["signature"][0]
    signer.check("a.csv", expires, signature)
    with pytest.raises(SignatureError):
        signer.check("b.csv", expires, signature)
    with pytest.raises(SignatureError):
        signer.check("a.csv", str(int(expires) + 1), signature)
    with pytest.raises(SignatureError):
        signer.check("a.csv", expires, "")
    with pytest.raises(SignatureError):
        signer.check("a.csv", "-5", signature)
    other = UrlSigner(b"another secret", "http://x", clock)
    with pytest.raises(SignatureError):
        other.check("a.csv", expires, signature)
    clock.now += 11
    with pytest.raises(ExpiredError, match="Request has expired"):
        signer.check("a.csv", expires, signature)


def test_sign_refuses_unsafe_object_names() -> None:
    signer = UrlSigner(SECRET, "http://x", lambda: 0.0)
    for name in ("../etc/passwd", "a/b.csv", ".hidden", ""):
        with pytest.raises(ValueError, match="object name"):
            signer.sign(name, 10)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-", (0, 99)),
        ("bytes=10-19", (10, 19)),
        ("bytes=90-1000", (90, 99)),
        ("bytes=99-99", (99, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-1000", (0, 99)),
        ("bytes=100-", False),
        ("bytes=100-200", False),
        ("bytes=-0", False),
        ("bytes=5-2", None),  # invalid spec: header ignored
        ("bytes=0-1,5-6", None),  # several ranges: whole file
        ("items=0-5", None),
        ("bytes=abc", None),
        ("bytes=-", None),
        ("bytes=1-x", None),
    ],
)
def test_parse_range(header: str | None, expected: object) -> None:
    assert parse_range(header, 100) == expected


def test_parse_range_of_empty_object() -> None:
    assert parse_range("bytes=0-", 0) is False
    assert parse_range("bytes=-5", 0) is False
    assert parse_range(None, 0) is None


# -- over HTTP ----------------------------------------------------------------------------


def test_full_download(storage: Storage) -> None:
    response = requests.get(storage.url(), timeout=10)
    assert response.status_code == 200
    assert response.content == CONTENT
    assert response.headers["content-length"] == str(len(CONTENT))
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-type"].startswith("text/csv")
    assert "etag" in response.headers


def test_head_has_headers_and_no_body(storage: Storage) -> None:
    response = requests.head(storage.url(), timeout=10)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(CONTENT))
    assert response.content == b""
    ranged = requests.head(storage.url(), headers={"Range": "bytes=-10"}, timeout=10)
    assert ranged.status_code == 206
    assert ranged.headers["content-length"] == "10"


@pytest.mark.parametrize(
    ("spec", "first", "last"),
    [
        ("bytes=1000-", 1000, len(CONTENT) - 1),
        ("bytes=0-0", 0, 0),
        ("bytes=500-1499", 500, 1499),
        ("bytes=-7", len(CONTENT) - 7, len(CONTENT) - 1),
        ("bytes=-99999999", 0, len(CONTENT) - 1),
        (f"bytes={len(CONTENT) - 1}-{len(CONTENT) + 50}", len(CONTENT) - 1, len(CONTENT) - 1),
    ],
)
def test_range_requests(storage: Storage, spec: str, first: int, last: int) -> None:
    response = requests.get(storage.url(), headers={"Range": spec}, timeout=10)
    assert response.status_code == 206
    assert response.content == CONTENT[first : last + 1]
    assert response.headers["content-range"] == f"bytes {first}-{last}/{len(CONTENT)}"
    assert response.headers["content-length"] == str(last - first + 1)


@pytest.mark.parametrize(
    ("name", "spec"),
    [
        ("export.csv", f"bytes={len(CONTENT)}-"),
        ("export.csv", "bytes=-0"),
        ("empty.csv", "bytes=0-"),
    ],
)
def test_unsatisfiable_range_is_416(storage: Storage, name: str, spec: str) -> None:
    size = len(CONTENT) if name == "export.csv" else 0
    response = requests.get(storage.url(name), headers={"Range": spec}, timeout=10)
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{size}"
    assert "not satisfiable" in response.json()["detail"]


def test_ignored_ranges_send_everything(storage: Storage) -> None:
    for spec in ("bytes=0-1,5-6", "bytes=9-3", "lines=1-2"):
        response = requests.get(storage.url(), headers={"Range": spec}, timeout=10)
        assert response.status_code == 200, spec
        assert response.content == CONTENT


def test_if_range_mismatch_sends_everything(storage: Storage) -> None:
    etag = requests.head(storage.url(), timeout=10).headers["etag"]
    same = requests.get(storage.url(), headers={"Range": "bytes=0-9", "If-Range": etag}, timeout=10)
    assert same.status_code == 206
    changed = requests.get(
        storage.url(), headers={"Range": "bytes=0-9", "If-Range": '"other"'}, timeout=10
    )
    assert changed.status_code == 200
    assert changed.content == CONTENT


def test_empty_file(storage: Storage) -> None:
    response = requests.get(storage.url("empty.csv"), timeout=10)
    assert response.status_code == 200
    assert response.content == b""


def test_authorization_header_is_rejected(storage: Storage) -> None:
    for value in ("Bearer abc", "Token 0123", "Basic eDp5"):
        response = requests.get(storage.url(), headers={"Authorization": value}, timeout=10)
        assert response.status_code == 400
        detail = response.json()["detail"]
        assert "Only one auth mechanism allowed" in detail
        assert "Authorization" in detail
        assert value not in detail


def test_bad_or_missing_signature_is_403(storage: Storage) -> None:
    good = storage.url()
    base, _, query = good.partition("?")
    params = parse_qs(query)
    expires, signature = params["expires"][0], params["signature"][0]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    for url in (
        f"{base}?expires={expires}&signature={flipped}",
        f"{base}?expires={int(expires) + 3600}&signature={signature}",
        f"{base}?expires={expires}",
        base,
        f"{storage.origin}/exports/tiny.csv?expires={expires}&signature={signature}",
    ):
        response = requests.get(url, timeout=10)
        assert response.status_code == 403, url
        assert response.json()["detail"]


def test_expiry_follows_the_injected_clock(storage: Storage) -> None:
    url = storage.url(ttl=30 * 86400)
    assert requests.get(url, timeout=10).status_code == 200
    storage.clock.now += 30 * 86400 - 5
    assert requests.get(url, timeout=10).status_code == 200
    storage.clock.now += 10
    response = requests.get(url, timeout=10)
    assert response.status_code == 403
    assert response.json() == {"detail": "Request has expired."}
    assert requests.head(url, timeout=10).status_code == 403


def test_unknown_object_and_bad_paths(storage: Storage) -> None:
    assert requests.get(storage.url("missing.csv"), timeout=10).status_code == 404
    for path in ("/exports/", "/exports/../outside.csv", "/exports/a/b.csv", "/", "/other"):
        response = requests.get(storage.origin + path, timeout=10)
        assert response.status_code == 404, path
    response = requests.post(storage.url(), timeout=10)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


def drain(response: requests.Response, sink: bytearray) -> None:
    for chunk in response.iter_content(65536):
        sink.extend(chunk)


def test_truncated_download_is_an_error_and_resumable(storage: Storage) -> None:
    storage.faults.update(truncate=1.0)
    url = storage.url()
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(url, timeout=10)
    # Streaming shows what arrived: half the body, then the broken connection.
    received = bytearray()
    with requests.get(url, stream=True, timeout=10) as response:
        assert response.headers["content-length"] == str(len(CONTENT))
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            drain(response, received)
    # requests drops the bytes of the read that failed, so it has at most the half sent.
    assert 0 < len(received) <= len(CONTENT) // 2
    assert received == CONTENT[: len(received)]
    # Resume from where it broke.
    storage.faults.update(truncate=0.0)
    rest = requests.get(url, headers={"Range": f"bytes={len(received)}-"}, timeout=10)
    assert rest.status_code == 206
    assert bytes(received) + rest.content == CONTENT


def test_reset_mid_body_is_an_error(storage: Storage) -> None:
    storage.faults.update(reset=1.0)
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        requests.get(storage.url(), timeout=10)
    ranged = storage.url()
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(ranged, headers={"Range": "bytes=100-"}, timeout=10)
    # The server keeps serving after a broken connection.
    storage.faults.update(reset=0.0)
    assert requests.get(storage.url("tiny.csv"), timeout=10).content == b"a,b\n"


def test_fault_rate_and_replay(storage: Storage) -> None:
    def outcomes() -> list[bool]:
        results = []
        for _ in range(30):
            try:
                requests.get(storage.url("tiny.csv"), timeout=10)
                results.append(True)
            except requests.exceptions.ChunkedEncodingError:
                results.append(False)
        return results

    storage.faults.update(truncate=0.5, seed=11)
    first = outcomes()
    storage.faults.update(seed=11)
    second = outcomes()
    assert first == second
    assert 5 <= first.count(False) <= 25


def test_config_from_fault_config() -> None:
    injector = FaultInjector(FaultConfig(truncate=1.0))
    assert injector.should_truncate()


def test_download_stops_reading_when_the_client_leaves(tmp_path: Path) -> None:
    # Driven through the ASGI interface: count the body chunks sent after a disconnect.
    (tmp_path / "big.csv").write_bytes(b"x" * (40 * CHUNK_SIZE))
    clock = FakeClock()
    signer = UrlSigner(SECRET, "http://storage", clock)
    app = create_storage_app(tmp_path, signer)
    query = urlsplit(signer.sign("big.csv", clock.now + 60)).query
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/exports/big.csv",
        "query_string": query.encode(),
        "headers": [],
    }
    gone = asyncio.Event()
    bodies: list[int] = []

    async def receive() -> dict[str, Any]:
        if not bodies:
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            bodies.append(len(message["body"]))
            if len(bodies) == 3:
                gone.set()

    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    assert 3 <= len(bodies) <= 5
    assert sum(bodies) < 40 * CHUNK_SIZE
