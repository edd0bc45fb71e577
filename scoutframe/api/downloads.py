"""Bytes to disk: streaming a response body into a part file, and resuming a signed download.

A :class:`RangedDownload` fetches one pre-signed URL into a part file beside its target: a
dropped connection or a short body resumes with ``Range`` (``If-Range`` on the first answer's
validator), an expired URL (403) is swapped once for a fresh one, and the byte count is checked
against ``Content-Length`` / ``Content-Range``. The part file survives failures, so the next
attempt, in this process or another, goes on from where it stopped.

The body is bounded (:mod:`scoutframe.api.bodies`): never more bytes than the rows paid for
can take, and never slower than :data:`~scoutframe.api.bodies.MIN_BYTES_PER_WINDOW` a
read-timeout window; the part file is opened without following a symbolic link planted in
its place.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import requests

from ..clock import sleep
from ..errors import (
    AnswerTooLargeError,
    APIError,
    LocalFileError,
    PermissionDeniedError,
    TransportError,
)
from ..files import write_failure
from ..models import optional_int
from . import retry
from .bodies import (
    MAX_ROW_BYTES,
    MIN_BYTES_PER_WINDOW,
    BodyTooLargeError,
    BodyTooSlowError,
    Pace,
    pieces,
)
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


#: Flags of a part file: never through a symbolic link planted in its place.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def write_body(
    response: requests.Response,
    path: Path,
    *,
    mode: Literal["wb", "ab"] = "wb",
    start: int = 0,
    chunk_size: int = 1 << 20,
    on_bytes: Callable[[int], None] | None = None,
    limit: int | None = None,
    pace: Pace | None = None,
    expected: int | None = None,
    what: str = "download",
    kept: str = "",
) -> int:
    """Stream a response body into ``path`` (a part file, created private) and fsync it.

    Returns ``start`` plus the bytes written; ``on_bytes`` gets that running figure after
    each piece. The caller moves the part file into place once it checked the count. Every
    byte that reached the file stays there (and is fsynced) whatever stops the body, so a
    ``Range`` request resumes from the file's size.

    Raises
    ------
    BodyTooLargeError
        The file would pass ``limit`` bytes; what came before it is written.
    BodyTooSlowError
        The body came more slowly than ``pace`` allows; what came is written.
    LocalFileError
        The file could not be written (:class:`~scoutframe.errors.DiskFullError` naming the
        bytes still ``expected`` for a full disk; a symbolic link in its place is refused,
        never followed). ``what`` and ``kept`` go into its message.
    """
    done = start
    flags = os.O_WRONLY | os.O_CREAT | _NOFOLLOW | (os.O_APPEND if mode == "ab" else os.O_TRUNC)

    def local(exc: OSError) -> LocalFileError:
        needed = None if expected is None else max(expected - done, 0)
        return write_failure(exc, path, what=what, needed=needed, kept=kept)

    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise local(exc) from exc
    # Unbuffered: each piece goes to the file as it comes, and a full disk fails the write
    # that hit it (a buffered file would fail again when closed, losing the error).
    with open(fd, mode, buffering=0) as sink:
        try:
            for chunk in pieces(response, chunk_size):
                if limit is not None and done + len(chunk) > limit:
                    raise BodyTooLargeError(done + len(chunk), limit)
                view = memoryview(chunk)
                try:
                    while view:  # a write may take part of a piece (the disk filling up)
                        written = sink.write(view) or 0
                        view = view[written:]
                        done += written
                except OSError as exc:
                    raise local(exc) from exc
                if on_bytes is not None:
                    on_bytes(done)
                if pace is not None:
                    pace.feed(len(chunk))
        finally:
            with contextlib.suppress(OSError):
                os.fsync(sink.fileno())
    return done


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
    max_bytes
        The most bytes the file may take (:func:`~scoutframe.api.bodies.paid_bytes` of the rows
        paid for); ``None``: not bounded.
    """

    def __init__(
        self,
        transport: Transport,
        part: Path,
        *,
        name: str,
        fresh_url: Callable[[str, bool], str],
        max_bytes: int | None = None,
    ) -> None:
        self.transport = transport
        self.part = part
        self.name = name
        self.fresh_url = fresh_url
        self.max_bytes = max_bytes
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
        AnswerTooLargeError
            The body (or its announced length) passed :attr:`max_bytes`; the part file is
            removed, so the next call starts over.
        LocalFileError
            The part file could not be written (a full disk: :class:`DiskFullError`); what
            reached it stays, and the next call resumes from there.
        """
        refreshed = False
        last: BaseException = TransportError("not tried")
        pauses = retry.DOWNLOAD_STALLS.pauses()
        for pause in pauses:
            sleep(pause)
            offset = self._size()
            try:
                done, total = self._fetch(url, offset, on_bytes, chunk_size)
            except LocalFileError:
                raise  # an OSError, but of the disk here: trying again cannot help
            except BodyTooLargeError as exc:
                self.part.unlink(missing_ok=True)
                raise self._too_large(exc) from None
            except BodyTooSlowError as exc:
                raise TransportError(
                    f"download of {self.name} came too slowly ({exc}; at least "
                    f"{MIN_BYTES_PER_WINDOW:,} bytes are expected every "
                    f"{self.transport.timeout[1]:g} s, the read timeout), so it was stopped. "
                    f"The {self._size():,} bytes received are kept: call download() again "
                    "to resume"
                ) from None
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
        try:
            return self.part.lstat().st_size  # a link planted there is refused when written
        except FileNotFoundError:
            return 0

    def _too_large(self, exc: BodyTooLargeError) -> AnswerTooLargeError:
        return AnswerTooLargeError(
            200,
            f"the storage sent (or announced) {exc.read:,} bytes for {self.name}, more than "
            f"the {exc.limit:,} its paid rows can take ({MAX_ROW_BYTES:,} bytes a row at "
            "most), so the download was stopped and its part file removed; nothing more is "
            "charged",
            limit=exc.limit,
            hint="The storage is not behaving as SphereScout's does; try again later (the "
            "export stays paid and resumable) and tell SphereScout support",
        )

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
            if total is not None and self.max_bytes is not None and total > self.max_bytes:
                raise BodyTooLargeError(total, self.max_bytes)  # refused before a byte is read
            report = on_bytes
            progress = None if report is None else (lambda n: report(n, total))
            done = write_body(
                response,
                self.part,
                mode=mode,
                start=offset,
                chunk_size=chunk_size,
                on_bytes=progress,
                limit=self.max_bytes,
                pace=Pace(self.transport.timeout[1]),
                expected=total,
                what=f"download of {self.name}",
                kept="The bytes received so far are kept beside it: call download() again "
                "to resume from there (nothing is charged again)",
            )
        return done, total
