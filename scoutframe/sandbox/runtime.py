"""`Runtime`: the parts of a running sandbox that the routes share; built by the server."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa

from scoutframe.sandbox.exports import ExportManager
from scoutframe.sandbox.faults import FaultInjector
from scoutframe.sandbox.ratelimit import RateLimiter
from scoutframe.sandbox.requestlog import StorageRequestLog
from scoutframe.sandbox.state import SandboxClock, State
from scoutframe.sandbox.storage import UrlSigner
from scoutframe.sandbox.store import ContactStore

__all__ = ["Runtime"]


@dataclass
class Runtime:
    """Everything the routes need; built by `scoutframe.sandbox.server`."""

    flavor: str
    state: State
    store: ContactStore
    exports: ExportManager
    clock: SandboxClock
    secret: bytes = field(repr=False)
    signer: UrlSigner
    faults: FaultInjector
    limiter: RateLimiter | None
    public_limiter: RateLimiter | None
    access_lifetime: float
    refresh_lifetime: float
    admin_token: str = field(repr=False)
    new_contacts: Callable[[int, float], pa.Table]
    seed: int = 0
    auth_cache: dict[str, tuple[int, int, float | None]] = field(default_factory=dict, repr=False)
    known_searches: set[tuple[int, str]] = field(default_factory=set, repr=False)
    storage_log: StorageRequestLog = field(default_factory=StorageRequestLog, repr=False)

    @property
    def live(self) -> bool:
        """Whether the live flavour (contract section 9) is emulated."""
        return self.flavor == "live"
