"""The "storage" origin: pre-signed export downloads, like an object store's signed URLs.

A download URL is ``{base_url}/exports/{object_name}?expires=<unix seconds>&signature=<hex>``,
the signature being HMAC-SHA256 over the object name and the expiry. As with S3 pre-signed
URLs, the request must not carry an ``Authorization`` header (400), a wrong signature gives
403 and so does a URL used after its expiry (judged by the sandbox clock, which the admin can
move). Single byte ranges are supported (206) so that interrupted downloads can be resumed.

The app is raw ASGI: it streams the file in chunks from an open descriptor (never the whole
file in memory) and can break a download on purpose (faults ``truncate`` and ``reset``).
Every HTTP request it receives is noted in a `StorageRequestLog` when one is given (never a
header's value, nor the signature).
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import hmac
import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, quote

from scoutframe.sandbox.faults import (
    ASGIApp,
    FaultInjector,
    InjectedDisconnect,
    Message,
    Receive,
    Scope,
    Send,
    quiet_injected_disconnects,
)
from scoutframe.sandbox.requestlog import StorageRequestLog

__all__ = [
    "ExpiredError",
    "PresignedUrlError",
    "SignatureError",
    "UrlSigner",
    "create_storage_app",
    "parse_range",
]


CHUNK_SIZE = 256 * 1024
# Object names are flat file names: no separators, no leading dot, nothing to escape.
_OBJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_PREFIX = "/exports/"
AUTHORIZATION_REJECTED = (
    "Only one auth mechanism allowed: this is a pre-signed URL, its query string carries the "
    "signature. Send the request without an Authorization header."
)


class PresignedUrlError(Exception):
    """A pre-signed URL was refused."""


class SignatureError(PresignedUrlError):
    """The signature is missing, malformed or does not match."""


class ExpiredError(PresignedUrlError):
    """The URL's expiry time has passed."""


class UrlSigner:
    """Sign and check pre-signed download URLs.

    Parameters
    ----------
    secret
        HMAC key (kept private to the sandbox).
    base_url
        Origin of the storage app, e.g. ``http://127.0.0.2:8123``.
    clock
        Current time in Unix seconds (the sandbox clock).
    """

    def __init__(self, secret: bytes, base_url: str, clock: Callable[[], float]) -> None:
        if not secret:
            raise ValueError("the URL signing secret must not be empty")
        self._secret = secret
        self.base_url = base_url.rstrip("/")
        self.clock = clock

    def __repr__(self) -> str:
        return f"UrlSigner(base_url={self.base_url!r})"

    def _signature(self, object_name: str, expires: int) -> str:
        message = f"{object_name}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def sign(self, object_name: str, expires_at: float) -> str:
        """Return the absolute pre-signed URL of ``object_name``, valid until ``expires_at``.

        Parameters
        ----------
        object_name
            File name of the export in the storage directory.
        expires_at
            Unix time after which the URL answers 403 (rounded down to whole seconds).

        Returns
        -------
        str
            ``{base_url}/exports/{object_name}?expires=<int>&signature=<hex>``.
        """
        if not _OBJECT_NAME.fullmatch(object_name):
            raise ValueError(f"invalid object name {object_name!r}")
        expires = math.floor(expires_at)
        signature = self._signature(object_name, expires)
        path = quote(object_name, safe="")
        return f"{self.base_url}{_PREFIX}{path}?expires={expires}&signature={signature}"

    def check(self, object_name: str, expires: str, signature: str) -> None:
        """Check a URL's signature, then its expiry.

        Raises
        ------
        SignatureError
            The signature is missing, malformed or wrong.
        ExpiredError
            The signature is right but the clock is past ``expires``.
        """
        if not expires or not signature or not expires.isascii() or not expires.isdigit():
            raise SignatureError("The pre-signed URL lacks a valid 'expires' or 'signature'.")
        expected = self._signature(object_name, int(expires))
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            raise SignatureError("The request signature we calculated does not match.")
        if self.clock() > int(expires):
            raise ExpiredError("Request has expired.")


def parse_range(header: str | None, size: int) -> tuple[int, int] | bool | None:
    """Interpret a ``Range`` header for a representation of ``size`` bytes.

    Returns
    -------
    tuple[int, int] or None or bool
        ``(first, last)`` inclusive for a satisfiable single byte range; ``None`` when the
        header is absent, malformed, not in bytes or asks for several ranges (the whole file
        is sent, as RFC 9110 allows); ``False`` when the range cannot be satisfied (416).
    """
    if not header:
        return None
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    first_text, last_text = first_text.strip(), last_text.strip()
    if not dash or not (first_text.isdigit() or last_text.isdigit()):
        return None
    if (first_text and not first_text.isdigit()) or (last_text and not last_text.isdigit()):
        return None
    if not first_text:  # bytes=-K: the last K bytes
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            return False
        return max(0, size - suffix), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None  # invalid spec: ignore the header
    if first >= size:
        return False
    last = min(int(last_text), size - 1) if last_text else size - 1
    return first, last


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


async def _json_answer(
    send: Send, status: int, detail: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class _StorageApp:
    """The ASGI callable returned by :func:`create_storage_app`."""

    def __init__(
        self,
        export_dir: Path,
        signer: UrlSigner,
        faults: FaultInjector | None,
        log: StorageRequestLog | None,
    ) -> None:
        self.export_dir = Path(export_dir)
        self.signer = signer
        self.faults = faults
        self.log = log
        if faults is not None:
            quiet_injected_disconnects()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if self.log is not None:
            send = _noting_status(send, self.log.record(scope))
        path: str = scope["path"]
        name = path[len(_PREFIX) :] if path.startswith(_PREFIX) else ""
        if not _OBJECT_NAME.fullmatch(name):
            await _json_answer(send, 404, "Not found.")
            return
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await _json_answer(
                send, 405, f'Method "{method}" not allowed.', [(b"allow", b"GET, HEAD")]
            )
            return
        if _header(scope, b"authorization") is not None:
            await _json_answer(send, 400, AUTHORIZATION_REJECTED)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        try:
            self.signer.check(name, query.get("expires", [""])[0], query.get("signature", [""])[0])
        except PresignedUrlError as exc:
            await _json_answer(send, 403, str(exc))
            return
        try:
            handle = open(self.export_dir / name, "rb")  # noqa: SIM115 (closed below)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            await _json_answer(send, 404, "The export file does not exist.")
            return
        with handle:
            await self._serve(scope, receive, send, handle, name, head=method == "HEAD")

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, handle: BinaryIO, name: str, *, head: bool
    ) -> None:
        stat = os.fstat(handle.fileno())
        size = stat.st_size
        etag = f'"{stat.st_mtime_ns:x}-{size:x}"'
        modified = email.utils.formatdate(stat.st_mtime, usegmt=True)
        byte_range = parse_range(_header(scope, b"range"), size)
        if_range = _header(scope, b"if-range")
        if byte_range is not None and if_range is not None and if_range not in (etag, modified):
            byte_range = None  # the file changed since the client's first part: send it all
        common = [
            (b"accept-ranges", b"bytes"),
            (b"etag", etag.encode()),
            (b"last-modified", modified.encode()),
        ]
        if byte_range is False:
            await _json_answer(
                send,
                416,
                f"The requested range is not satisfiable (the object has {size} bytes).",
                [*common, (b"content-range", f"bytes */{size}".encode())],
            )
            return
        status, first, last = 200, 0, size - 1
        headers = [
            (b"content-type", b"text/csv; charset=utf-8"),
            (b"content-disposition", f'attachment; filename="{name}"'.encode()),
            *common,
        ]
        if isinstance(byte_range, tuple):
            status, (first, last) = 206, byte_range
            headers.append((b"content-range", f"bytes {first}-{last}/{size}".encode()))
        length = last - first + 1
        headers.append((b"content-length", str(length).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if head or length == 0:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        # Decide breakage up front, so the RNG sequence does not depend on chunk timing.
        stop_after = length
        if self.faults is not None:
            if self.faults.should_reset():
                stop_after = min(length // 4, CHUNK_SIZE)
            elif self.faults.should_truncate():
                stop_after = length // 2
        handle.seek(first)
        disconnected = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, disconnected))
        sent = 0
        try:
            while sent < stop_after and not disconnected.is_set():
                chunk = handle.read(min(CHUNK_SIZE, stop_after - sent))
                if not chunk:
                    break  # the file shrank under us; the connection is broken below
                sent += len(chunk)
                more = sent < length
                await send({"type": "http.response.body", "body": chunk, "more_body": more})
                # Yield once per chunk: lets the watcher see a disconnect, and other
                # downloads on this loop make progress.
                await asyncio.sleep(0)
        finally:
            watcher.cancel()
        if disconnected.is_set():
            return  # the client went away: stop reading the file
        if sent < length:
            # Content-Length promised more: closing the connection is what the client sees.
            raise InjectedDisconnect(f"download of {name} cut after {sent} of {length} bytes")


def _noting_status(send: Send, entry: dict[str, Any]) -> Send:
    """Wrap ``send`` so the status answered lands in the log ``entry``."""

    async def noting(message: Message) -> None:
        if message["type"] == "http.response.start":
            entry["status"] = int(message["status"])
        await send(message)

    return noting


async def _watch_disconnect(receive: Receive, disconnected: asyncio.Event) -> None:
    """Set ``disconnected`` when the client closes the connection mid-download."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            disconnected.set()
            return


def create_storage_app(
    export_dir: Path,
    signer: UrlSigner,
    faults: FaultInjector | None = None,
    log: StorageRequestLog | None = None,
) -> ASGIApp:
    """Build the storage origin's ASGI app.

    Parameters
    ----------
    export_dir
        Directory holding the export files (flat; names as given to :meth:`UrlSigner.sign`).
    signer
        Checks the URLs' signatures and expiry.
    faults
        Optional injector: ``truncate`` sends half the body, ``reset`` a first part only, both
        then close the connection while the advertised ``Content-Length`` is not reached.
    log
        Optional: where each request received is noted (method, path, credential headers
        present or not, status).

    Returns
    -------
    ASGIApp
        Serves ``GET``/``HEAD /exports/{object_name}``.
    """
    return _StorageApp(export_dir, signer, faults, log)
