"""Bytes to disk: streaming a response body into a part file, and resuming a signed download.

A :class:`RangedDownload` fetches one pre-signed URL into a part file beside its target: a
dropped connection or a short body resumes with ``Range`` (``If-Range`` on the first answer's
validator), an expired URL (403) is swapped once for a fresh one, and the byte count is checked
against ``Content-Length`` / ``Content-Range``. The part file survives failures, so the next
attempt, in this process or another, goes on from where it stopped.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import requests

from ..clock import sleep
from ..errors import APIError, PermissionDeniedError, TransportError
from ..models import optional_int
from . import retry
from .wire_errors import WIRE_EXCEPTIONS

if TYPE_CHECKING:
    from .transport import Transport

__all__ = ["STREAM_ERRORS", "RangedDownload", "write_body"]

#: What a broken body stream raises (requests, urllib3 underneath, or the transport's own).
STREAM_ERRORS: tuple[type[BaseException], ...] = (*WIRE_EXCEPTIONS, TransportError)

OnBytes = Callable[[int, int | None], None]
#: Failed attempts in a row after which the download URL is asked for again.
RECHECK_AFTER = 3


class _RangeMismatchError(Exception):
    """The storage answered a different byte range than the one asked for."""


#: Failures after which the download tries again (from where the part file ends).
_RETRIED: tuple[type[BaseException], ...] = (_RangeMismatchError, *STREAM_ERRORS, APIError)


def write_body(
    response: requests.Response,
    path: Path,
    *,
    mode: Literal["wb", "ab"] = "wb",
    start: int = 0,
    chunk_size: int = 1 << 20,
    on_bytes: Callable[[int], None] | None = None,
) -> int:
    """Stream a response body into ``path`` (a part file, created private) and fsync it.

    Returns ``start`` plus the bytes written; ``on_bytes`` gets that running figure after
    each piece. The caller moves the part file into place once it checked the count.
    """
    done = start
    fd = os.open(
        path, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "ab" else os.O_TRUNC), 0o600
    )
    with open(fd, mode, buffering=chunk_size) as sink:
        for chunk in _body_pieces(response, chunk_size):
            sink.write(chunk)
            done += len(chunk)
            if on_bytes is not None:
                on_bytes(done)
        sink.flush()
        os.fsync(sink.fileno())
    return done


def _body_pieces(response: requests.Response, chunk_size: int) -> Iterator[bytes]:
    """Yield the body as it arrives, at most ``chunk_size`` bytes at a time.

    ``read1`` hands over whatever has arrived, so the bytes received before a connection
    drops reach the part file (``iter_content`` would lose a partly filled chunk).
    """
    raw = response.raw
    read1 = getattr(raw, "read1", None)  # urllib3's response; absent on other adapters
    if read1 is None:
        yield from (c for c in response.iter_content(chunk_size=chunk_size) if c)
        return
    while True:
        piece = read1(chunk_size, decode_content=True)
        if not piece:
            return
        yield piece


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """Parse ``bytes START-END/TOTAL`` into (start, total)."""
    match = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*", value or "")
    if match is None:
        return None, None
    total = None if match.group(2) == "*" else int(match.group(2))
    return int(match.group(1)), total


class RangedDownload:
    """One signed URL downloaded into a part file, resumable across attempts and processes.

    Parameters
    ----------
    transport
        Its download session (no auth) fetches the URL.
    part
        The part file (beside the target; its name starts with a dot).
    name
        What is downloaded, for messages (``"export task_1"``).
    fresh_url
        Asks the server for the download URL again. Called as ``fresh_url(url, True)`` after
        the storage answered 403 (a new URL, or :class:`~scoutframe.errors.DownloadExpiredError`)
        and as ``fresh_url(url, False)`` after :data:`RECHECK_AFTER` failed attempts in a row
        (the storage may have moved: the URL the server gives now, maybe the same one).
    """

    def __init__(
        self,
        transport: Transport,
        part: Path,
        *,
        name: str,
        fresh_url: Callable[[str, bool], str],
    ) -> None:
        self.transport = transport
        self.part = part
        self.name = name
        self.fresh_url = fresh_url
        self.validator: str | None = None  # ETag/Last-Modified of the file (If-Range)

    def run(self, url: str, *, on_bytes: OnBytes | None = None, chunk_size: int = 1 << 20) -> str:
        """Fill the part file with the whole body; return the URL that finished it.

        Raises
        ------
        DownloadExpiredError
            The URL expired and no fresh one could be had (from ``fresh_url``).
        TransportError
            :data:`~scoutframe.api.retry.DOWNLOAD_STALLS` attempts in a row added no byte; the
            part file is kept for the next call.
        APIError
            The storage refused the request (4xx other than 403 and 416).
        """
        refreshed = False
        last: BaseException = TransportError("not tried")
        pauses = retry.DOWNLOAD_STALLS.pauses()
        for pause in pauses:
            sleep(pause)
            offset = self._size()
            try:
                done, total = self._fetch(url, offset, on_bytes, chunk_size)
            except PermissionDeniedError:
                if refreshed:
                    raise
                url, refreshed = self.fresh_url(url, True), True
                pauses.restart()  # a new link is a new start
                continue
            except _RETRIED as exc:
                if isinstance(exc, APIError):
                    if exc.status == 416:
                        self.part.unlink(missing_ok=True)  # our part does not fit: start over
                    elif exc.status < 500:
                        raise
                if self._size() > offset:
                    pauses.restart()  # progress: the count starts again
                elif pauses.tries % RECHECK_AFTER == 0:
                    # Failing again and again: the storage may have moved (a restart on another
                    # port); the server hands out the URL that works now.
                    url = self.fresh_url(url, False)
                last = exc
                continue
            if total is None or done == total:
                return url
            if done > total:  # a stale, longer part file: start over
                self.part.unlink(missing_ok=True)
            elif done > offset:
                pauses.restart()
            last = TransportError(f"stopped at {done} of {total} bytes")
        raise TransportError(
            f"download of {self.name} failed {retry.DOWNLOAD_STALLS.attempts} times in a row "
            f"without progress ({type(last).__name__}: {last}); call download() again to "
            f"resume from {self._size()} bytes"
        ) from last

    def _size(self) -> int:
        return self.part.stat().st_size if self.part.exists() else 0

    def _fetch(
        self, url: str, offset: int, on_bytes: OnBytes | None, chunk_size: int
    ) -> tuple[int, int | None]:
        """One GET of the signed URL from ``offset``; return (bytes in the part, total)."""
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        if offset and self.validator:
            # If the object changed since our first part, the storage sends all of it (200).
            headers["If-Range"] = self.validator
        response = self.transport.download(url, headers=headers)
        with contextlib.closing(response):
            validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
            if validator and (response.status_code == 200 or not self.validator):
                self.validator = validator
            total: int | None
            mode: Literal["wb", "ab"]
            if response.status_code == 206:
                start, total = _content_range(response.headers.get("Content-Range"))
                if start != offset:
                    self.part.unlink(missing_ok=True)  # not the range we asked for: start over
                    raise _RangeMismatchError(f"asked for byte {offset}, got {start}")
                mode = "ab"
            else:
                offset, mode = 0, "wb"  # the server ignored Range: whole body
                total = optional_int(response.headers.get("Content-Length"))
            report = on_bytes
            progress = None if report is None else (lambda n: report(n, total))
            done = write_body(
                response,
                self.part,
                mode=mode,
                start=offset,
                chunk_size=chunk_size,
                on_bytes=progress,
            )
        return done, total
