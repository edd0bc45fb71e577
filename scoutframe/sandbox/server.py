"""Run the sandbox: the `Sandbox` context manager (``scoutframe sandbox`` is in `cli`).

Two uvicorn servers: the API origin (``/api/`` and the ``/_sandbox/`` control plane) and the
"storage" origin serving pre-signed export downloads, on another loopback address
(127.0.0.2 when the system allows it) so it is a different host, as an object store would be.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from scoutframe.sandbox.atomic import atomic_write
from scoutframe.sandbox.constants import DEMO_EMAIL

if TYPE_CHECKING:
    from scoutframe.sandbox.control import AdminControl
    from scoutframe.sandbox.faults import FaultConfig
    from scoutframe.sandbox.runtime import Runtime

__all__ = ["Sandbox"]

_log = logging.getLogger(__name__)
_READY_TIMEOUT = 120.0


@dataclass(frozen=True)
class _Options:
    contacts: int
    flavor: str
    data_dir: Path
    credits: int
    rate_limit: float
    faults: FaultConfig
    seed: int
    access_lifetime: float
    refresh_lifetime: float


def default_data_dir() -> Path:
    """``<user cache dir>/scoutframe/sandbox``."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("scoutframe")) / "sandbox"


def _load_secret(data_dir: Path) -> bytes:
    """Return the per-data-dir secret (created 0600): keys, passwords, tokens derive from it."""
    path = data_dir / "secret.key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    secret = os.urandom(32)
    try:
        # Never overwrites: of concurrent first starts exactly one wins, the others read it.
        with atomic_write(path, mode=0o600, exclusive=True) as tmp:
            tmp.write_bytes(secret)
    except FileExistsError:
        secret = path.read_bytes()
    return secret


def _derive(secret: bytes, label: str) -> str:
    return hmac.new(secret, label.encode(), hashlib.sha256).hexdigest()


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _storage_socket(api_host: str) -> socket.socket:
    if api_host in ("127.0.0.1", "localhost"):
        try:
            return _bind("127.0.0.2", 0)
        except OSError:
            pass
    return _bind(api_host, 0)


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


@dataclass
class _Core:
    """The in-process sandbox: runtime, apps and their uvicorn servers."""

    runtime: Runtime
    servers: list[Any]
    threads: list[threading.Thread]
    url: str
    storage_url: str
    api_key: str
    password: str
    admin_token: str

    def stop(self) -> None:
        for server in self.servers:
            server.should_exit = True
        for thread in self.threads:
            thread.join(timeout=10)
        self.runtime.exports.shutdown()
        self.runtime.state.close()


def _open(opts: _Options, host: str, port: int) -> _Core:
    """Load data and state, bind sockets, start both servers; returns once they serve."""
    import numpy as np
    import pyarrow as pa
    import uvicorn

    from scoutframe.sandbox.app import create_app
    from scoutframe.sandbox.dataset import generate_new_contacts, load_or_generate
    from scoutframe.sandbox.exports import ExportManager
    from scoutframe.sandbox.faults import FaultInjector, quiet_injected_disconnects
    from scoutframe.sandbox.ratelimit import RateLimiter
    from scoutframe.sandbox.requestlog import StorageRequestLog
    from scoutframe.sandbox.runtime import Runtime
    from scoutframe.sandbox.state import SandboxClock, State, hash_api_key
    from scoutframe.sandbox.storage import UrlSigner, create_storage_app
    from scoutframe.sandbox.store import Catalog, ContactStore

    data_dir = opts.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = _load_secret(data_dir)
    dataset = load_or_generate(data_dir, contacts=opts.contacts, seed=opts.seed)
    store = ContactStore(
        dataset.contacts,
        Catalog.from_dataset(dataset),
        data_dir / f"overlay-{opts.contacts}-s{opts.seed}.parquet",
    )
    clock = SandboxClock()
    state = State(data_dir / "state.sqlite3", clock)
    clock.offset = float(state.get_meta("clock_offset") or 0.0)

    api_key = _derive(secret, "demo-api-key")
    password = _derive(secret, "demo-password")[:20]
    account = state.account_by_email(DEMO_EMAIL)
    if account is None:
        account = state.create_account(
            DEMO_EMAIL, password, opts.credits, first_name="Demo", last_name="Sandbox"
        )
    if not state.has_api_key(api_key):
        state.add_api_key(account.id, api_key, "demo", None)
    elif state.api_key_lookup(hash_api_key(api_key)) is None:
        # [DESIGN] a revocation is final, even of the demo key: say so rather than surprise.
        _log.warning(
            "the demo account's API key was revoked in %s and stays revoked: log in "
            "with the username and password, or start with a new --data-dir",
            data_dir,
        )

    api_sock = _bind(host, port)
    storage_sock = _storage_socket(host)
    injector = FaultInjector(opts.faults)
    signer = UrlSigner(_derive(secret, "storage").encode(), _url(storage_sock), clock)
    exports = ExportManager(state, store, data_dir / "exports", injector.export_should_fail)
    exports.recover()
    exports.sweep()
    rate = opts.rate_limit

    def new_contacts(n: int, collected_at: float) -> Any:
        current = dataclasses.replace(dataset, contacts=store.table)
        table = generate_new_contacts(
            current,
            n,
            seed=int(
                np.random.SeedSequence([opts.seed, n, int(collected_at * 1e6)]).generate_state(1)[0]
            ),
            collected_at=datetime.fromtimestamp(collected_at, UTC),
        )
        # The generator keeps whole seconds; freshness compares to the microsecond.
        column = table.schema.get_field_index("collected_at")
        stamps = pa.array(np.full(n, int(collected_at * 1e6), dtype=np.int64))
        return table.set_column(
            column, "collected_at", stamps.cast(table.schema.field(column).type)
        )

    runtime = Runtime(
        flavor=opts.flavor,
        state=state,
        store=store,
        exports=exports,
        clock=clock,
        secret=secret,
        signer=signer,
        faults=injector,
        limiter=RateLimiter(rate, max(1, int(2 * rate))) if rate > 0 else None,
        public_limiter=RateLimiter(10 / 60, 10) if rate > 0 else None,
        access_lifetime=opts.access_lifetime,
        refresh_lifetime=opts.refresh_lifetime,
        admin_token=_derive(secret, "admin-token")[:32],
        new_contacts=new_contacts,
        seed=opts.seed,
        storage_log=StorageRequestLog(clock),
    )
    quiet_injected_disconnects()
    apps = [
        (create_app(runtime), api_sock),
        (
            create_storage_app(data_dir / "exports", signer, injector, runtime.storage_log),
            storage_sock,
        ),
    ]
    servers, threads = [], []
    for app, sock in apps:
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="sandbox-uvicorn", daemon=True
        )
        thread.start()
        servers.append(server)
        threads.append(thread)
    deadline = time.monotonic() + _READY_TIMEOUT
    while not all(s.started for s in servers):
        if time.monotonic() > deadline or not all(t.is_alive() for t in threads):
            raise RuntimeError("the sandbox servers did not start")
        time.sleep(0.01)
    return _Core(
        runtime,
        servers,
        threads,
        _url(api_sock),
        _url(storage_sock),
        api_key,
        password,
        runtime.admin_token,
    )


class Sandbox:
    """A local SphereScout API on loopback, for notebooks, tests and demos.

    Parameters
    ----------
    contacts
        Size of the synthetic dataset (generated once per ``(contacts, seed)``, then reused).
    flavor
        ``"docs"`` follows the vendor documentation, ``"live"`` the observed production API.
    data_dir
        Where data and state live (default: the user cache dir); state survives restarts.
    credits
        Opening balance of the demo account (when it is first created).
    rate_limit
        Requests per second per credential (burst twice that); 0 turns rate limiting off.
    faults
        A `FaultConfig` or a spec string such as ``"p500=0.1,export_fail=1"``.
    seed
        Dataset seed.
    host, port
        Where the API listens (port 0: a free port).
    mode
        ``"thread"``: servers in this process; ``"process"``: a child process (own core).
    access_token_lifetime, refresh_token_lifetime
        JWT lifetimes in seconds.

    Examples
    --------
    >>> from scoutframe.sandbox import Sandbox
    >>> with Sandbox(contacts=2_000) as sb:  # doctest: +SKIP
    ...     sorted(sb.env)
    ['SPHERESCOUT_API_KEY', 'SPHERESCOUT_BASE_URL', 'SPHERESCOUT_PASSWORD', 'SPHERESCOUT_USERNAME']
    """

    def __init__(
        self,
        contacts: int = 200_000,
        *,
        flavor: Literal["docs", "live"] = "docs",
        data_dir: str | Path | None = None,
        credits: int = 100_000,
        rate_limit: float = 20.0,
        faults: FaultConfig | str | None = None,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        mode: Literal["thread", "process"] = "thread",
        access_token_lifetime: float = 900.0,
        refresh_token_lifetime: float = 7 * 86400.0,
    ) -> None:
        from scoutframe.sandbox.faults import FaultConfig, parse_faults

        if flavor not in ("docs", "live"):
            raise ValueError(f"flavor must be 'docs' or 'live', got {flavor!r}")
        if mode not in ("thread", "process"):
            raise ValueError(f"mode must be 'thread' or 'process', got {mode!r}")
        if isinstance(faults, str):
            faults = parse_faults(faults)
        self._opts = _Options(
            contacts=int(contacts),
            flavor=flavor,
            data_dir=Path(data_dir) if data_dir is not None else default_data_dir(),
            credits=int(credits),
            rate_limit=float(rate_limit),
            faults=faults if faults is not None else FaultConfig(),
            seed=int(seed),
            access_lifetime=float(access_token_lifetime),
            refresh_lifetime=float(refresh_token_lifetime),
        )
        self.host = host
        self.port = port
        self.mode = mode
        self._core: _Core | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._info: dict[str, str] = {}
        self._admin: AdminControl | None = None

    def __repr__(self) -> str:
        where = self._info.get("SPHERESCOUT_BASE_URL", "not started")
        return f"Sandbox(flavor={self._opts.flavor!r}, contacts={self._opts.contacts}, url={where})"

    # -- life cycle
    def start(self) -> Sandbox:
        """Start serving (idempotent); returns self."""
        if self._info:
            return self
        if self.mode == "thread":
            core = _open(self._opts, self.host, self.port)
            self._core = core
            self._info = {
                "SPHERESCOUT_BASE_URL": core.url,
                "SPHERESCOUT_API_KEY": core.api_key,
                "SPHERESCOUT_USERNAME": DEMO_EMAIL,
                "SPHERESCOUT_PASSWORD": core.password,
                "SCOUTFRAME_SANDBOX_ADMIN_TOKEN": core.admin_token,
                "SCOUTFRAME_SANDBOX_STORAGE_URL": core.storage_url,
            }
        else:
            self._start_process()
        return self

    def _start_process(self) -> None:
        o = self._opts
        spec = ",".join(f"{k}={v}" for k, v in o.faults.to_dict().items())
        argv = [
            sys.executable,
            "-m",
            "scoutframe.sandbox",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--contacts",
            str(o.contacts),
            "--credits",
            str(o.credits),
            "--rate-limit",
            str(o.rate_limit),
            "--flavor",
            o.flavor,
            "--data-dir",
            str(o.data_dir),
            "--seed",
            str(o.seed),
            "--faults",
            spec,
            "--access-token-lifetime",
            str(o.access_lifetime),
            "--refresh-token-lifetime",
            str(o.refresh_lifetime),
        ]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)  # noqa: S603
        self._proc = proc
        assert proc.stdout is not None
        info: dict[str, str] = {}
        for line in proc.stdout:
            name, sep, value = line.strip().partition("=")
            if sep and name.startswith(("SPHERESCOUT_", "SCOUTFRAME_")):
                info[name] = value
            if name == "SCOUTFRAME_SANDBOX_STORAGE_URL":
                break
        if "SCOUTFRAME_SANDBOX_STORAGE_URL" not in info:
            proc.wait(timeout=10)
            raise RuntimeError(f"the sandbox process exited (status {proc.returncode})")
        self._info = info

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._core is not None:
            self._core.stop()
            self._core = None
        if self._proc is not None:
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        self._info = {}

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what clients need
    def _get(self, name: str) -> str:
        if not self._info:
            raise RuntimeError("the sandbox is not running; call start() or use `with`")
        return self._info[name]

    @property
    def url(self) -> str:
        """The API origin, e.g. ``http://127.0.0.1:8123``."""
        return self._get("SPHERESCOUT_BASE_URL")

    @property
    def storage_url(self) -> str:
        """The storage origin serving export downloads."""
        return self._get("SCOUTFRAME_SANDBOX_STORAGE_URL")

    @property
    def api_key(self) -> str:
        """The demo account's API key."""
        return self._get("SPHERESCOUT_API_KEY")

    @property
    def username(self) -> str:
        """The demo account's login (its e-mail)."""
        return self._get("SPHERESCOUT_USERNAME")

    @property
    def password(self) -> str:
        """The demo account's password."""
        return self._get("SPHERESCOUT_PASSWORD")

    @property
    def admin_token(self) -> str:
        """The control plane's token (header ``X-Sandbox-Admin-Token``)."""
        return self._get("SCOUTFRAME_SANDBOX_ADMIN_TOKEN")

    @property
    def env(self) -> dict[str, str]:
        """The four ``SPHERESCOUT_*`` variables a client reads."""
        self._get("SPHERESCOUT_BASE_URL")
        return {k: v for k, v in self._info.items() if k.startswith("SPHERESCOUT_")}

    @property
    def admin(self) -> AdminControl:
        """An `AdminControl` for this sandbox's ``/_sandbox/`` control plane."""
        if self._admin is None:
            from scoutframe.sandbox.control import AdminControl

            self._admin = AdminControl(self.url, self.admin_token)
        return self._admin

    @property
    def pid(self) -> int | None:
        """The server's process id in process mode while running (None in thread mode)."""
        return None if self._proc is None else self._proc.pid

    @property
    def runtime(self) -> Runtime:
        """The in-process runtime (thread mode only; for tests and benchmarks)."""
        if self._core is None:
            raise RuntimeError("the runtime is only reachable in thread mode while running")
        return self._core.runtime
