"""Deterministic fault injection: error answers, latency, broken connections, failed exports.

A :class:`FaultInjector` draws from one ``random.Random(seed)`` behind a lock, so the same seed
and the same sequence of calls give the same faults: a failing test can be replayed. A draw is
taken only for a fault whose probability is above zero, so a quiet injector costs nothing.

:class:`FaultMiddleware` applies the injector to an ASGI app, for paths under ``/api/`` only
(never the ``/_sandbox/`` control plane):

- latency: ``latency_ms`` added before the request is handled;
- ``p500``/``p502``/``p503``/``p429``: the request is answered with that status and a JSON
  ``{"detail": ...}`` body *without* reaching the app (429 carries ``Retry-After: 1``);
- ``reset``: the app handles the request (side effects happen), the status line, headers and
  part of the body are sent, then the connection is closed, so the client sees an incomplete
  read rather than a short but apparently complete body.

``truncate`` (cut a download short) is applied by the storage app, and ``export_fail`` by the
export worker; both ask the same injector.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import random
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FaultConfig",
    "FaultInjector",
    "FaultMiddleware",
    "InjectedDisconnect",
    "parse_fault_changes",
    "parse_faults",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger(__name__)

_STATUS_FIELDS: tuple[tuple[str, int], ...] = (
    ("p500", 500),
    ("p502", 502),
    ("p503", 503),
    ("p429", 429),
)
_PROBABILITY_FIELDS = ("p500", "p502", "p503", "p429", "reset", "truncate", "export_fail")
_REASONS = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
# Names accepted by parse_faults besides the field names themselves.
_ALIASES = {"latency": "latency_ms", "500": "p500", "502": "p502", "503": "p503", "429": "p429"}


@dataclass
class FaultConfig:
    """How often each fault happens.

    Attributes
    ----------
    p500, p502, p503, p429
        Probability that an API request is answered with that status (together at most 1).
    latency_ms
        Milliseconds added to every API request.
    reset
        Probability that a response's connection is closed in the middle of its body.
    truncate
        Probability that a download sends only part of the advertised body.
    export_fail
        Probability that an export job ends ``failed`` (its credits refunded).
    seed
        Seed of the random draws.
    """

    p500: float = 0.0
    p502: float = 0.0
    p503: float = 0.0
    p429: float = 0.0
    latency_ms: float = 0.0
    reset: float = 0.0
    truncate: float = 0.0
    export_fail: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in _PROBABILITY_FIELDS:
            value = _number(name, getattr(self, name))
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"fault {name!r} is a probability in [0, 1], got {value!r}")
            setattr(self, name, value)
        latency = _number("latency_ms", self.latency_ms)
        if latency < 0:
            raise ValueError(f"fault 'latency_ms' must be >= 0 milliseconds, got {latency!r}")
        self.latency_ms = latency
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"fault 'seed' must be an integer, got {self.seed!r}")
        total = sum(getattr(self, name) for name, _ in _STATUS_FIELDS)
        if total > 1.0 + 1e-9:
            raise ValueError(f"p500 + p502 + p503 + p429 must be at most 1, got {total:g}")

    def to_dict(self) -> dict[str, float | int]:
        """Return the configuration as a JSON-ready dict."""
        return dataclasses.asdict(self)


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"fault {name!r} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"fault {name!r} must be finite, got {value!r}")
    return number


def _field_names() -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(FaultConfig))


def _parse_value(key: str, text: str) -> float | int:
    raw = text.strip().lower()
    try:
        if key == "seed":
            return int(raw)
        if key == "latency_ms":
            if raw.endswith("ms"):
                return float(raw[:-2])
            if raw.endswith("s"):
                return float(raw[:-1]) * 1000.0
            return float(raw)
        if raw.endswith("%"):
            return float(raw[:-1]) / 100.0
        return float(raw)
    except ValueError:
        raise ValueError(f"fault {key!r} has an invalid value {text!r}") from None


def parse_faults(spec: str) -> FaultConfig:
    """Parse the CLI's ``--faults`` string.

    Parameters
    ----------
    spec
        Comma-separated ``name=value`` pairs, for example
        ``"p500=0.1,p429=0.05,latency=20ms,reset=0.1,truncate=0.5,export_fail=1,seed=3"``.
        Probabilities are fractions (or percentages such as ``10%``); latency takes ``ms``,
        ``s`` or a bare number of milliseconds. An empty string means no faults.

    Returns
    -------
    FaultConfig
        The parsed configuration.

    Raises
    ------
    ValueError
        On an unknown name, a malformed pair or an out-of-range value; the message names it.
    """
    return FaultConfig(**parse_fault_changes(spec))  # type: ignore[arg-type]


def parse_fault_changes(spec: str) -> dict[str, float | int]:
    """Parse a ``--faults`` string into just the fields it names (``FaultConfig`` names).

    The same syntax as `parse_faults`; for patching a running sandbox's faults.
    """
    names = _field_names()
    values: dict[str, float | int] = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        key, sep, text = part.partition("=")
        key = key.strip().lower()
        if not sep:
            raise ValueError(f"fault {part.strip()!r} is not of the form name=value")
        key = _ALIASES.get(key, key)
        if key not in names:
            raise ValueError(f"unknown fault {key!r}; known: {', '.join(names)}, latency")
        values[key] = _parse_value(key, text)
    return values


class FaultInjector:
    """Thread-safe, seeded source of faults.

    Parameters
    ----------
    config
        Initial configuration (default: no faults).
    """

    def __init__(self, config: FaultConfig | None = None) -> None:
        self.config = config if config is not None else FaultConfig()
        self._lock = threading.Lock()
        self._rng = random.Random(self.config.seed)

    def __repr__(self) -> str:
        return f"FaultInjector({self.config!r})"

    def update(self, **changes: Any) -> FaultConfig:
        """Change some settings at runtime; a new ``seed`` also restarts the random draws.

        Raises
        ------
        ValueError
            On an unknown name or an invalid value; nothing is changed then.
        """
        names = _field_names()
        unknown = sorted(set(changes) - set(names))
        if unknown:
            raise ValueError(
                f"unknown fault setting(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(names)}"
            )
        with self._lock:
            config = dataclasses.replace(self.config, **changes)
            self.config = config
            if "seed" in changes:
                self._rng = random.Random(config.seed)
        return config

    def reset_rng(self) -> None:
        """Restart the random draws from the configured seed."""
        with self._lock:
            self._rng = random.Random(self.config.seed)

    def _chance(self, probability: float) -> bool:
        if probability <= 0.0:
            return False
        with self._lock:
            return self._rng.random() < probability

    def http_status(self) -> int | None:
        """Return an injected status for this request (500/502/503/429), or None."""
        config = self.config
        total = config.p500 + config.p502 + config.p503 + config.p429
        if total <= 0.0:
            return None
        with self._lock:
            draw = self._rng.random()
        threshold = 0.0
        for name, status in _STATUS_FIELDS:
            threshold += getattr(config, name)
            if draw < threshold:
                return status
        return None

    def latency(self) -> float:
        """Return the latency to add to this request, in seconds."""
        return self.config.latency_ms / 1000.0

    def should_reset(self) -> bool:
        """Return whether this response's connection is to be closed mid-body."""
        return self._chance(self.config.reset)

    def should_truncate(self) -> bool:
        """Return whether this download is to be cut short."""
        return self._chance(self.config.truncate)

    def export_should_fail(self) -> bool:
        """Return whether this export job is to end ``failed``."""
        return self._chance(self.config.export_fail)


class InjectedDisconnect(Exception):  # noqa: N818 (it is an event, not an error of ours)
    """Raised to make the ASGI server drop a connection whose response has started.

    uvicorn answers an exception raised after ``http.response.start`` by closing the
    connection; :func:`quiet_injected_disconnects` keeps it from logging a traceback each time.
    """


class _DropInjectedDisconnects(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, InjectedDisconnect)


_quiet_lock = threading.Lock()


def quiet_injected_disconnects() -> None:
    """Keep uvicorn from logging a traceback for each injected disconnect (idempotent)."""
    server_logger = logging.getLogger("uvicorn.error")
    with _quiet_lock:
        if not any(isinstance(f, _DropInjectedDisconnects) for f in server_logger.filters):
            server_logger.addFilter(_DropInjectedDisconnects())


def error_response_parts(status: int, detail: str) -> tuple[Message, Message]:
    """Build the ASGI start and body messages of a JSON error answer."""
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if status == 429:
        headers.append((b"retry-after", b"1"))
    start: Message = {"type": "http.response.start", "status": status, "headers": headers}
    return start, {"type": "http.response.body", "body": body, "more_body": False}


class _CutOffSend:
    """An ASGI ``send`` that passes the start and half of the first body chunk, then stops."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.cut = False

    async def __call__(self, message: Message) -> None:
        if self.cut:
            return  # the rest of the response is swallowed
        if message["type"] == "http.response.body":
            body: bytes = message.get("body", b"")
            if not body and message.get("more_body", False):
                return
            if body:
                part = body[: len(body) // 2]
                await self._send({"type": "http.response.body", "body": part, "more_body": True})
                self.cut = True
                return
        await self._send(message)


class FaultMiddleware:
    """Pure ASGI middleware injecting the faults of a :class:`FaultInjector` under ``/api/``.

    Parameters
    ----------
    app
        The API application.
    injector
        Where the faults come from (shared with the storage app and the export worker).
    """

    def __init__(self, app: ASGIApp, injector: FaultInjector) -> None:
        self.app = app
        self.injector = injector
        quiet_injected_disconnects()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        injector = self.injector
        delay = injector.latency()
        if delay > 0:
            await asyncio.sleep(delay)
        status = injector.http_status()
        if status is not None:
            detail = f"Injected fault: {status} {_REASONS[status]} (sandbox)."
            start, body = error_response_parts(status, detail)
            await send(start)
            await send(body)
            return
        if not injector.should_reset():
            await self.app(scope, receive, send)
            return
        cut_send = _CutOffSend(send)
        await self.app(scope, receive, cut_send)
        if cut_send.cut:
            logger.info("Injected fault: connection reset mid-body on %s", scope["path"])
            raise InjectedDisconnect("connection reset mid-body (injected fault)")
