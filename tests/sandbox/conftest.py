"""Sandboxes on loopback for the emulator's tests, driven with plain ``requests``.

The synthetic dataset is generated once per session; every sandbox gets its own data dir
holding hard links to those files, so each starts in well under a second with fresh state.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn

from scoutframe.sandbox import Sandbox

CONTACTS = 20_000


class Api:
    """A requests session bound to a sandbox origin and one credential."""

    def __init__(self, url: str, auth: str | None) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.trust_env = False
        if auth:
            self.session.headers["Authorization"] = auth

    def __call__(self, method: str, path: str, **kw: Any) -> requests.Response:
        return self.session.request(method, self.url + path, timeout=30, **kw)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self("POST", path, **kw)

    def close(self) -> None:
        self.session.close()


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from scoutframe.sandbox.dataset import load_or_generate

    path = tmp_path_factory.mktemp("dataset")
    load_or_generate(path, contacts=CONTACTS, seed=0)
    return path


def _data_dir(tmp_path_factory: pytest.TempPathFactory, dataset_dir: Path) -> Path:
    path = tmp_path_factory.mktemp("sandbox")
    for src in dataset_dir.glob("*.parquet"):
        os.link(src, path / src.name)
    return path


SandboxFactory = Callable[..., Sandbox]


@pytest.fixture(scope="session")
def sandbox_factory(
    tmp_path_factory: pytest.TempPathFactory, dataset_dir: Path
) -> Iterator[SandboxFactory]:
    """Start sandboxes with fresh state (``data_dir`` may be given to reuse one)."""
    started: list[Sandbox] = []

    def make(**kw: Any) -> Sandbox:
        kw.setdefault("data_dir", _data_dir(tmp_path_factory, dataset_dir))
        kw.setdefault("rate_limit", 0)
        sb = Sandbox(CONTACTS, **kw).start()
        started.append(sb)
        return sb

    yield make
    for sb in started:
        sb.stop()


@pytest.fixture
def make_sandbox(sandbox_factory: SandboxFactory) -> Iterator[SandboxFactory]:
    """Like ``sandbox_factory`` but stops what it started at the end of the test."""
    mine: list[Sandbox] = []

    def make(**kw: Any) -> Sandbox:
        sb = sandbox_factory(**kw)
        mine.append(sb)
        return sb

    yield make
    for sb in mine:
        sb.stop()


@pytest.fixture(scope="session")
def sandbox(sandbox_factory: SandboxFactory) -> Sandbox:
    """The shared docs-flavour sandbox (rate limiting off)."""
    return sandbox_factory(flavor="docs")


@pytest.fixture(scope="session")
def live_sandbox(sandbox_factory: SandboxFactory) -> Sandbox:
    """The shared live-flavour sandbox (rate limiting off)."""
    return sandbox_factory(flavor="live")


@pytest.fixture
def api(sandbox: Sandbox) -> Iterator[Api]:
    """The demo account on the shared sandbox, API key as Bearer."""
    client = Api(sandbox.url, f"Bearer {sandbox.api_key}")
    yield client
    client.close()


@pytest.fixture
def account(sandbox: Sandbox) -> Iterator[tuple[dict[str, Any], Api]]:
    """A fresh account (10,000 credits) on the shared sandbox and an Api for it."""
    info = sandbox.admin.create_account(credits=10_000)
    client = Api(sandbox.url, f"Bearer {info['api_key']}")
    yield info, client
    client.close()


@pytest.fixture
def api_for() -> Iterator[Callable[[str, str | None], Api]]:
    """Build `Api` clients for any origin and credential; closed after the test."""
    made: list[Api] = []

    def make(url: str, auth: str | None = None) -> Api:
        client = Api(url, auth)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def wait_export() -> Callable[..., dict[str, Any]]:
    """Poll a docs-flavour export until it is ready or failed."""

    def wait(api: Api, task_id: str, *, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            body: dict[str, Any] = api.get(f"/api/download-status/{task_id}").json()
            if body["status"] in ("ready", "failed") or time.monotonic() > deadline:
                return body
            time.sleep(0.05)

    return wait


@contextmanager
def _serve(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """Run ``app`` under uvicorn on a free loopback port in a thread; yield its origin."""
    config = uvicorn.Config(app, host=host, port=0, log_level="warning", lifespan="on", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="session")
def serve() -> Callable[..., AbstractContextManager[str]]:
    """``with serve(asgi_app) as origin:`` runs the app under uvicorn on a free loopback port."""
    return _serve
