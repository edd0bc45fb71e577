"""What the storage origin received: one entry per request, credentials seen but never kept.

Pre-signed download URLs must be fetched without credentials; the log lets a test check that
a client never sent its API key (or a proxy credential, or cookies) to the storage host. An
entry records the method, the path without the query string (the signature stays out), the
names of the query parameters, the sandbox time, whether each credential header was present,
and the status answered. Only the last `MAX_ENTRIES` entries are kept.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["CREDENTIAL_HEADERS", "MAX_ENTRIES", "StorageRequestLog"]

#: Entries kept (older ones are dropped first).
MAX_ENTRIES = 10_000
#: Header name → entry key of its presence flag. Values are never recorded.
CREDENTIAL_HEADERS = {
    b"authorization": "authorization",
    b"proxy-authorization": "proxy_authorization",
    b"cookie": "cookie",
}
_MAX_PATH = 1024  # characters of the path kept: an entry stays small whatever is sent


def _stamp(ts: float) -> str:
    """Epoch seconds → ISO-8601 UTC with milliseconds and a ``Z``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class StorageRequestLog:
    """A bounded, thread-safe log of the requests an origin received.

    Parameters
    ----------
    clock
        Current time in epoch seconds (the sandbox clock).
    max_entries
        How many of the latest entries to keep.
    """

    def __init__(
        self, clock: Callable[[], float] = time.time, max_entries: int = MAX_ENTRIES
    ) -> None:
        self._clock = clock
        self._entries: deque[dict[str, Any]] = deque(maxlen=max_entries)
        self._lock = threading.Lock()
        self._seq = 0

    def __len__(self) -> int:
        """Return the number of entries held."""
        return len(self._entries)

    def record(self, scope: Mapping[str, Any]) -> dict[str, Any]:
        """Log an ASGI HTTP request; returns its entry (the caller sets ``status``).

        Parameters
        ----------
        scope
            The request's ASGI scope.

        Returns
        -------
        dict
            ``{"seq", "at", "method", "path", "query_keys", "authorization",
            "proxy_authorization", "cookie", "status"}``; ``status`` is None until answered.
        """
        names = {bytes(k).lower() for k, _ in scope.get("headers", [])}
        raw_query = bytes(scope.get("query_string", b"")).decode("latin-1")
        keys = sorted({part.partition("=")[0] for part in raw_query.split("&") if part})
        entry: dict[str, Any] = {
            "at": _stamp(self._clock()),
            "method": str(scope.get("method", "")),
            "path": str(scope.get("path", ""))[:_MAX_PATH],
            "query_keys": [k[:64] for k in keys[:16]],
            **{flag: header in names for header, flag in CREDENTIAL_HEADERS.items()},
            "status": None,
        }
        with self._lock:
            self._seq += 1
            entry["seq"] = self._seq
            self._entries.append(entry)
        return entry

    def entries(self, *, clear: bool = False) -> list[dict[str, Any]]:
        """Return copies of the entries, oldest first; ``clear`` empties the log atomically."""
        with self._lock:
            out = [dict(e) for e in self._entries]
            if clear:
                self._entries.clear()
        return out

    def clear(self) -> int:
        """Empty the log; returns how many entries were dropped."""
        with self._lock:
            n = len(self._entries)
            self._entries.clear()
        return n
