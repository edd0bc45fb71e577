"""Fault injection: configuration, determinism, rates, and the ASGI middleware over HTTP."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from scoutframe.sandbox.faults import FaultConfig, FaultInjector, FaultMiddleware, parse_faults

# -- configuration ------------------------------------------------------------------------


def test_parse_full_spec() -> None:
    config = parse_faults(
        "p500=0.1,p429=0.05,latency=20ms,reset=0.1,truncate=0.5,export_fail=1,seed=3"
    )
    assert config == FaultConfig(
        p500=0.1, p429=0.05, latency_ms=20, reset=0.1, truncate=0.5, export_fail=1, seed=3
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", FaultConfig()),
        (" p503 = 0.2 , ", FaultConfig(p503=0.2)),
        ("latency=0.5s", FaultConfig(latency_ms=500)),
        ("latency_ms=7", FaultConfig(latency_ms=7)),
        ("p502=10%", FaultConfig(p502=0.1)),
        ("503=0.3,429=0.1", FaultConfig(p503=0.3, p429=0.1)),
        ("P500=0.5", FaultConfig(p500=0.5)),
    ],
)
def test_parse_variants(spec: str, expected: FaultConfig) -> None:
    assert parse_faults(spec) == expected


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("p501=0.1", "p501"),
        ("p500=abc", "p500"),
        ("p500", "p500"),
        ("reset=1.5", "reset"),
        ("truncate=-0.1", "truncate"),
        ("latency=-3ms", "latency_ms"),
        ("seed=1.5", "seed"),
        ("p500=nan", "p500"),
    ],
)
def test_parse_errors_name_the_bad_key(spec: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        parse_faults(spec)


def test_status_probabilities_may_not_exceed_one() -> None:
    with pytest.raises(ValueError, match="at most 1"):
        parse_faults("p500=0.6,p503=0.6")


def test_update_validates_and_keeps_old_config_on_error() -> None:
    injector = FaultInjector(FaultConfig(p500=0.1))
    with pytest.raises(ValueError, match="p501"):
        injector.update(p501=0.2)
    with pytest.raises(ValueError, match="p503"):
        injector.update(p503=2)
    with pytest.raises(ValueError, match="latency_ms"):
        injector.update(latency_ms="fast")
    assert injector.config == FaultConfig(p500=0.1)
    new = injector.update(p503=0.2, latency_ms=5)
    assert new == injector.config == FaultConfig(p500=0.1, p503=0.2, latency_ms=5)
    assert injector.latency() == pytest.approx(0.005)
    assert new.to_dict()["p503"] == 0.2


def test_quiet_injector_injects_nothing() -> None:
    injector = FaultInjector()
    assert all(injector.http_status() is None for _ in range(1000))
    assert not any(injector.should_reset() for _ in range(1000))
    assert not any(injector.should_truncate() for _ in range(1000))
    assert not any(injector.export_should_fail() for _ in range(1000))
    assert injector.latency() == 0


def draw_sequence(injector: FaultInjector, n: int = 300) -> list[tuple[Any, ...]]:
    return [
        (
            injector.http_status(),
            injector.should_reset(),
            injector.should_truncate(),
            injector.export_should_fail(),
        )
        for _ in range(n)
    ]


def test_same_seed_same_faults() -> None:
    config = parse_faults("p500=0.1,p502=0.1,p503=0.1,p429=0.1,reset=0.3,truncate=0.5,seed=42")
    first = draw_sequence(FaultInjector(config))
    second = draw_sequence(FaultInjector(parse_faults(str_of(config))))
    assert first == second
    other = draw_sequence(FaultInjector(FaultConfig(**{**config.to_dict(), "seed": 43})))
    assert other != first


def str_of(config: FaultConfig) -> str:
    return ",".join(f"{k}={v}" for k, v in config.to_dict().items())


def test_reset_rng_and_new_seed_replay() -> None:
    injector = FaultInjector(FaultConfig(p503=0.5, reset=0.5, seed=7))
    first = draw_sequence(injector, 100)
    injector.reset_rng()
    assert draw_sequence(injector, 100) == first
    injector.update(seed=8)
    eight = draw_sequence(injector, 100)
    injector.update(seed=8)
    assert draw_sequence(injector, 100) == eight


def test_rates_roughly_as_configured() -> None:
    injector = FaultInjector(
        FaultConfig(p500=0.1, p502=0.05, p503=0.15, p429=0.2, reset=0.3, seed=1)
    )
    n = 20_000
    statuses = collections.Counter(injector.http_status() for _ in range(n))
    for status, p in ((500, 0.1), (502, 0.05), (503, 0.15), (429, 0.2), (None, 0.5)):
        assert statuses[status] / n == pytest.approx(p, abs=0.015), status
    resets = sum(injector.should_reset() for _ in range(n))
    assert resets / n == pytest.approx(0.3, abs=0.015)
    assert all(FaultInjector(FaultConfig(export_fail=1)).export_should_fail() for _ in range(50))


def test_thread_safe_draws_stay_deterministic_in_total() -> None:
    config = FaultConfig(p500=0.3, seed=5)
    reference = FaultInjector(config)
    expected = sum(reference.http_status() is not None for _ in range(4000))
    injector = FaultInjector(config)
    counts: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        hits = sum(injector.http_status() is not None for _ in range(1000))
        with lock:
            counts.append(hits)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == expected  # same 4000 draws, whatever the interleaving


# -- the middleware over HTTP -------------------------------------------------------------


ITEMS = [{"id": i, "name": f"item {i}"} for i in range(200)]


class MiniApi:
    """A small Starlette app standing in for the API; counts the requests it handled."""

    def __init__(self) -> None:
        self.handled = 0
        self.injector = FaultInjector()
        routes = [
            Route("/api/items", self.items),
            Route("/api/stream", self.stream),
            Route("/api/empty", self.empty, methods=["DELETE"]),
            Route("/_sandbox/faults", self.control),
            Route("/health", self.control),
        ]
        self.app = FaultMiddleware(Starlette(routes=routes), self.injector)

    async def items(self, request: Request) -> Response:
        self.handled += 1
        return JSONResponse({"count": len(ITEMS), "results": ITEMS})

    async def stream(self, request: Request) -> Response:
        self.handled += 1

        async def body() -> AsyncIterator[bytes]:
            for i in range(50):
                yield f"line {i}\n".encode() * 100

        return StreamingResponse(body(), media_type="text/plain")

    async def empty(self, request: Request) -> Response:
        self.handled += 1
        return Response(status_code=204)

    async def control(self, request: Request) -> Response:
        return JSONResponse(self.injector.config.to_dict())


@pytest.fixture(scope="module")
def mini_server(serve: Any) -> Iterator[tuple[MiniApi, str]]:
    api = MiniApi()
    with serve(api.app) as origin:
        yield api, origin


@pytest.fixture
def mini(mini_server: tuple[MiniApi, str]) -> Iterator[tuple[MiniApi, str]]:
    api, _ = mini_server
    quiet = FaultConfig().to_dict()
    api.injector.update(**quiet)
    api.handled = 0
    yield mini_server
    api.injector.update(**quiet)


def test_no_faults_passes_through(mini: tuple[MiniApi, str]) -> None:
    api, origin = mini
    response = requests.get(f"{origin}/api/items", timeout=10)
    assert response.status_code == 200
    assert response.json()["count"] == 200
    assert api.handled == 1


@pytest.mark.parametrize(
    ("field", "status", "reason"),
    [
        ("p500", 500, "Internal Server Error"),
        ("p502", 502, "Bad Gateway"),
        ("p503", 503, "Service Unavailable"),
        ("p429", 429, "Too Many Requests"),
    ],
)
def test_injected_status(mini: tuple[MiniApi, str], field: str, status: int, reason: str) -> None:
    api, origin = mini
    api.injector.update(**{field: 1.0})
    response = requests.get(f"{origin}/api/items", timeout=10)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": f"Injected fault: {status} {reason} (sandbox)."}
    assert (response.headers.get("retry-after") == "1") is (status == 429)
    assert api.handled == 0  # answered before the app


def test_control_plane_and_other_paths_are_never_faulted(mini: tuple[MiniApi, str]) -> None:
    api, origin = mini
    api.injector.update(p503=1.0, latency_ms=300)
    started = time.perf_counter()
    for path in ("/_sandbox/faults", "/health"):
        response = requests.get(f"{origin}{path}", timeout=10)
        assert response.status_code == 200, path
    assert time.perf_counter() - started < 0.3
    assert response.json()["p503"] == 1.0


def test_injected_status_rates_and_replay_over_http(mini: tuple[MiniApi, str]) -> None:
    api, origin = mini
    session = requests.Session()

    def statuses() -> list[int]:
        return [session.get(f"{origin}/api/items", timeout=10).status_code for _ in range(200)]

    api.injector.update(p500=0.1, p429=0.2, seed=99)
    first = statuses()
    api.injector.update(seed=99)
    assert statuses() == first
    counts = collections.Counter(first)
    assert 8 <= counts[500] <= 35
    assert 20 <= counts[429] <= 60
    assert counts[200] == 200 - counts[500] - counts[429]
    assert set(counts) <= {200, 429, 500}


def test_latency_is_added(mini: tuple[MiniApi, str]) -> None:
    api, origin = mini
    session = requests.Session()
    session.get(f"{origin}/api/items", timeout=10)  # connection warm
    started = time.perf_counter()
    session.get(f"{origin}/api/items", timeout=10)
    base = time.perf_counter() - started
    api.injector.update(latency_ms=250)
    started = time.perf_counter()
    response = session.get(f"{origin}/api/items", timeout=10)
    slow = time.perf_counter() - started
    assert response.status_code == 200
    assert slow >= 0.25
    assert slow - base < 1.0


def test_reset_mid_body_is_a_client_error_after_the_app_ran(mini: tuple[MiniApi, str]) -> None:
    api, origin = mini
    api.injector.update(reset=1.0)
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        requests.get(f"{origin}/api/items", timeout=10)
    assert api.handled == 1  # the side effects happened; only the answer was lost


def test_reset_of_a_streamed_response(mini: tuple[MiniApi, str]) -> None:
    api, origin = mini
    api.injector.update(reset=1.0)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(f"{origin}/api/stream", timeout=10)


def test_server_keeps_serving_after_resets(mini: tuple[MiniApi, str]) -> None:
    api, origin = mini
    session = requests.Session()
    api.injector.update(reset=0.5, seed=3)
    outcomes = []
    for _ in range(40):
        try:
            session.get(f"{origin}/api/items", timeout=10).raise_for_status()
            outcomes.append("ok")
        except requests.exceptions.ChunkedEncodingError:
            outcomes.append("reset")
    assert 8 <= outcomes.count("reset") <= 32
    api.injector.update(reset=0.0)
    assert session.get(f"{origin}/api/items", timeout=10).json()["count"] == 200


def test_empty_response_cannot_be_cut(mini: tuple[MiniApi, str]) -> None:
    api, origin = mini
    api.injector.update(reset=1.0)
    response = requests.delete(f"{origin}/api/empty", timeout=10)
    assert response.status_code == 204


# -- every fault through the full Sandbox, driven by its /_sandbox/faults control ----------


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from scoutframe.sandbox import Sandbox

    data_dir = tmp_path_factory.mktemp("sandbox-faults")
    with Sandbox(contacts=2_000, data_dir=data_dir, rate_limit=0) as sb:
        yield sb


@pytest.fixture
def sb(sandbox: Any) -> Iterator[Any]:
    sandbox.admin.set_faults(**FaultConfig().to_dict())
    yield sandbox
    sandbox.admin.set_faults(**FaultConfig().to_dict())


def api(sb: Any) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {sb.api_key}"
    return session


def search_id(sb: Any, session: requests.Session) -> str:
    response = session.get(f"{sb.url}/api/companies", params={"countries": "FR"}, timeout=10)
    response.raise_for_status()
    return str(response.json()["search_id"])


def wait_export(sb: Any, session: requests.Session, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status: dict[str, Any] = session.get(
            f"{sb.url}/api/download-status/{task_id}", timeout=10
        ).json()
        if status["status"] in ("ready", "failed"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"export {task_id} did not finish")


def credits(sb: Any, session: requests.Session) -> int:
    return int(session.get(f"{sb.url}/api/user/profile", timeout=10).json()["credits"])


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_sandbox_injected_status(sb: Any, status: int) -> None:
    session = api(sb)
    assert sb.admin.set_faults(**{f"p{status}": 1.0})[f"p{status}"] == 1.0
    response = session.get(f"{sb.url}/api/companies", params={"countries": "FR"}, timeout=10)
    assert response.status_code == status
    assert response.json()["detail"].startswith(f"Injected fault: {status} ")
    assert (response.headers.get("retry-after") == "1") is (status == 429)
    # The control plane is never faulted, so faults can always be switched off again.
    assert sb.admin.faults()[f"p{status}"] == 1.0
    sb.admin.set_faults(**{f"p{status}": 0.0})
    assert session.get(f"{sb.url}/api/companies", timeout=10).status_code == 200


def test_sandbox_same_seed_same_statuses(sb: Any) -> None:
    session = api(sb)

    def run() -> list[int]:
        sb.admin.set_faults(p500=0.2, p503=0.1, p429=0.1, seed=21)
        return [session.get(f"{sb.url}/api/categories", timeout=10).status_code for _ in range(60)]

    first = run()
    assert run() == first
    assert 6 <= sum(s != 200 for s in first) <= 42


def test_sandbox_latency(sb: Any) -> None:
    session = api(sb)
    session.get(f"{sb.url}/api/user/profile", timeout=10)
    sb.admin.set_faults(latency_ms=300)
    started = time.perf_counter()
    assert session.get(f"{sb.url}/api/user/profile", timeout=10).status_code == 200
    assert time.perf_counter() - started >= 0.3


def test_sandbox_reset_mid_body(sb: Any) -> None:
    session = api(sb)
    sb.admin.set_faults(reset=1.0)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        session.get(f"{sb.url}/api/companies", params={"countries": "FR"}, timeout=10)


def test_sandbox_export_fails_and_refunds(sb: Any) -> None:
    session = api(sb)
    sid = search_id(sb, session)
    before = credits(sb, session)
    sb.admin.set_faults(export_fail=1.0)
    started = session.get(f"{sb.url}/api/download-csv", params={"search_id": sid}, timeout=10)
    assert started.status_code == 202
    status = wait_export(sb, session, started.json()["task_id"])
    assert status["status"] == "failed"
    assert status["error"]
    assert "download_url" not in status
    assert credits(sb, session) == before


def test_sandbox_truncated_download_then_resume(sb: Any) -> None:
    session = api(sb)
    sid = search_id(sb, session)
    started = session.get(f"{sb.url}/api/download-csv", params={"search_id": sid}, timeout=10)
    status = wait_export(sb, session, started.json()["task_id"])
    assert status["status"] == "ready"
    url = status["download_url"]
    whole = requests.get(url, timeout=10).content
    assert whole.startswith(b"place_id,name,")
    sb.admin.set_faults(truncate=1.0)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(url, timeout=10)
    sb.admin.set_faults(truncate=0.0, reset=1.0)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(url, headers={"Range": "bytes=10-"}, timeout=10)
    sb.admin.set_faults(reset=0.0)
    rest = requests.get(url, headers={"Range": "bytes=10-"}, timeout=10)
    assert rest.status_code == 206
    assert whole[:10] + rest.content == whole
