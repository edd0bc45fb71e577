"""Sandboxes shared by the integration tests: one per API flavour, started once per session.

Fixtures
--------
sandbox_docs, sandbox_live
    ``Sandbox(contacts=20_000, flavor=..., rate_limit=0)`` on loopback; ``.flavor_name`` says
    which.
sandbox
    Parametrised over both flavours.
client_for
    Factory ``client_for(sb, api_key=None, **kwargs) -> Client`` for a sandbox (http allowed
    on loopback, a private ``state_dir``, no config file, fast backoff); closed at teardown.
fresh_account
    Factory ``fresh_account(sb, credits=...) -> dict`` (api_key, email, password, id).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scoutframe.api.client import Client
from scoutframe.sandbox import Sandbox

FLAVORS = ("docs", "live")
#: Where a cache can be: a local directory, or a prefix of a real S3 API on loopback (moto).
STORES = ("local", "s3")


class Store:
    """One place to keep a cache, as a test uses it (``store`` fixture).

    ``cache`` is the ``cache_dir`` to pass, ``options`` the ``storage_options``, ``env`` what
    a child process needs in its environment to reach it (credentials, endpoint, a short lock
    lease so that a killed holder's lock is taken over quickly), ``format`` the entries' table
    format.
    """

    def __init__(
        self,
        name: str,
        cache: str,
        options: dict[str, str] | None,
        env: dict[str, str],
        table_format: str = "parquet",
    ) -> None:
        self.name = name
        self.cache = cache
        self.options = options
        self.env = env
        self.format = table_format

    def __repr__(self) -> str:
        return f"Store({self.name!r})"

    @property
    def remote(self) -> bool:
        return self.cache.startswith("s3://")

    def kwargs(self) -> dict[str, Any]:
        """The read's arguments that put the cache here."""
        found: dict[str, Any] = {"cache_dir": self.cache}
        if self.options is not None:
            found["storage_options"] = self.options
        if self.format != "parquet":
            found["cache_format"] = self.format
        return found

    def open(self) -> Any:
        from scoutframe.cache import Cache

        return Cache(self.cache, storage_options=self.options, cache_format=self.format)


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """Where the test's cache is: ``local`` by default; parametrise with ``indirect=True``."""
    import uuid

    kind = getattr(request, "param", "local")
    table_format = "delta" if kind.endswith("delta") else "parquet"
    # Paid deltas wait in the user cache directory between their download and their upload.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    if kind.startswith("s3"):
        server = request.getfixturevalue("s3_server")
        env = {**server.env(), "SCOUTFRAME_CACHE_LEASE": "2"}
        env["XDG_CACHE_HOME"] = str(tmp_path / "user-cache")
        monkeypatch.setenv("SCOUTFRAME_CACHE_LEASE", "2")
        prefix = f"cache-{uuid.uuid4().hex[:12]}"
        return Store(kind, server.uri(prefix), server.storage_options, env, table_format)
    env = {"XDG_CACHE_HOME": str(tmp_path / "user-cache")}
    return Store(kind, str(tmp_path / "cache"), None, env, table_format)


def _start(flavor: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    data_dir = tmp_path_factory.mktemp(f"sandbox-{flavor}")
    with Sandbox(contacts=20_000, data_dir=data_dir, flavor=flavor, rate_limit=0) as sb:  # type: ignore[arg-type]
        sb.flavor_name = flavor  # type: ignore[attr-defined]
        yield sb


@pytest.fixture(scope="session")
def sandbox_docs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    yield from _start("docs", tmp_path_factory)


@pytest.fixture(scope="session")
def sandbox_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    yield from _start("live", tmp_path_factory)


@pytest.fixture(params=FLAVORS)
def sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """Each flavour in turn; faults are switched off again after the test."""
    sb: Sandbox = request.getfixturevalue(f"sandbox_{request.param}")
    yield sb
    sb.admin.set_faults(
        p500=0, p502=0, p503=0, p429=0, reset=0, truncate=0, export_fail=0, latency_ms=0
    )


@pytest.fixture
def client_for(tmp_path: Path) -> Iterator[Callable[..., Client]]:
    clients: list[Client] = []

    def make(sb: Sandbox, api_key: str | None = None, **kwargs: Any) -> Client:
        kwargs.setdefault("allow_http", True)
        kwargs.setdefault("state_dir", tmp_path / "state")
        kwargs.setdefault("config_file", tmp_path / "no-config.toml")
        kwargs.setdefault("backoff_factor", 0.01)
        kwargs.setdefault("poll_interval", (0.01, 0.05))
        if api_key is None and "username" not in kwargs:
            api_key = sb.api_key
        client = Client(api_key, kwargs.pop("base_url", sb.url), **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def shell_account(
    sandbox_docs: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., dict[str, Any]]:
    """Make a fresh sandbox account configured as a shell user would: environment variables.

    No config file, no keyring, no progress bars; state and cache under ``tmp_path``.
    """

    def make(credits: int = 5_000) -> dict[str, Any]:
        account = sandbox_docs.admin.create_account(credits=credits)
        monkeypatch.setenv("SPHERESCOUT_API_KEY", account["api_key"])
        monkeypatch.setenv("SPHERESCOUT_BASE_URL", sandbox_docs.url)
        monkeypatch.setenv("SPHERESCOUT_CONFIG", str(tmp_path / "absent.toml"))
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
        monkeypatch.setenv("SCOUTFRAME_PROGRESS", "0")
        monkeypatch.setenv("SCOUTFRAME_CACHE_DIR", str(tmp_path / "cache"))
        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
        return account

    return make


@pytest.fixture
def fresh_account() -> Callable[..., dict[str, Any]]:
    def make(sb: Sandbox, credits: int = 1_000) -> dict[str, Any]:
        return sb.admin.create_account(credits=credits)

    return make


class LoopbackServer:
    """A tiny HTTP server on 127.0.0.1 for cases the sandbox cannot produce (an HTML 403 from
    an "edge", redirects to another origin); records every request it gets."""

    def __init__(
        self, respond: Callable[[str, str, dict[str, str]], tuple[int, dict[str, str], bytes]]
    ) -> None:
        import http.server
        import threading

        self.requests: list[tuple[str, str, dict[str, str]]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                headers = {k: v for k, v in self.headers.items()}
                server.requests.append((self.command, self.path, headers))
                status, out_headers, body = respond(self.command, self.path, headers)
                self.send_response(status)
                for key, value in out_headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _any  # noqa: N815 - http.server names

            def log_message(self, *args: Any) -> None:
                return

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


@pytest.fixture
def loopback_server() -> Iterator[Callable[..., LoopbackServer]]:
    """Factory ``loopback_server(respond) -> LoopbackServer``; shut down after the test."""
    servers: list[LoopbackServer] = []

    def make(
        respond: Callable[[str, str, dict[str, str]], tuple[int, dict[str, str], bytes]],
    ) -> LoopbackServer:
        server = LoopbackServer(respond)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()
