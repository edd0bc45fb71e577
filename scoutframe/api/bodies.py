"""Reading a response body within bounds: what a hostile server can make the client hold or wait.

* An API answer (JSON) is read into memory up to :data:`MAX_ANSWER_BYTES`, decompressed
  bytes counted (a gzip body of 1000:1 stops there too), and must arrive whole within the
  read timeout after its headers (a body trickling one byte every few seconds never trips
  the socket's own timeout). An error answer is read up to :data:`MAX_ERROR_BYTES`.
* A download (export or delta CSV) goes to disk, bounded by what was paid for
  (:func:`paid_bytes`: :data:`MAX_ROW_BYTES` a row), and must bring at least
  :data:`MIN_BYTES_PER_WINDOW` every window of the read timeout (:class:`Pace`).

Bytes are taken as they arrive (``read1``), at most :data:`PIECE_BYTES` at a time, so the
memory a read needs is the bound itself plus one piece.
"""

from __future__ import annotations

from collections.abc import Iterator

import requests

from ..clock import clock

__all__ = [
    "MAX_ANSWER_BYTES",
    "MAX_ERROR_BYTES",
    "MAX_ROW_BYTES",
    "MIN_BYTES_PER_WINDOW",
    "BodyTooLargeError",
    "BodyTooSlowError",
    "Pace",
    "paid_bytes",
    "pieces",
    "read_answer",
]

#: The largest API answer read into memory. The largest honest ones (the category list, a
#: country's locations, a search page of 50 contacts) are well under 1 MiB.
MAX_ANSWER_BYTES = 16 << 20
#: Of an error answer only this much is read (it only feeds a message).
MAX_ERROR_BYTES = 64 << 10
#: The most bytes a paid row of an export or delta CSV may take (an honest row takes 300 to
#: 1,000): a body beyond ``rows * MAX_ROW_BYTES`` (plus the header) is refused.
MAX_ROW_BYTES = 16 << 10
#: Bytes a download must bring every read-timeout window (60 s by default: ~1 KiB/s).
MIN_BYTES_PER_WINDOW = 64 << 10
#: Bytes taken from the socket at a time.
PIECE_BYTES = 64 << 10


class BodyTooLargeError(Exception):
    """A body went past its bound; ``read`` bytes were taken, ``limit`` allowed."""

    def __init__(self, read: int, limit: int) -> None:
        super().__init__(f"more than {limit:,} bytes")
        self.read = read
        self.limit = limit


class BodyTooSlowError(Exception):
    """A body came more slowly than its floor; ``read`` bytes in ``seconds``."""

    def __init__(self, read: int, seconds: float) -> None:
        super().__init__(f"{read:,} bytes in {seconds:.1f} s")
        self.read = read
        self.seconds = seconds


def paid_bytes(rows: int | None) -> int | None:
    """Return the most bytes a CSV of ``rows`` paid rows may take (``None``: not known)."""
    return None if rows is None else MAX_ROW_BYTES * (max(rows, 0) + 1)


def pieces(response: requests.Response, chunk_size: int = PIECE_BYTES) -> Iterator[bytes]:
    """Yield the (decoded) body as it arrives, at most ``chunk_size`` bytes at a time.

    ``read1`` hands over whatever has arrived, so the bytes received before a connection
    drops are not lost (``iter_content`` would lose a partly filled chunk), and a trickling
    body returns after each byte instead of blocking until a chunk fills.
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


class Pace:
    """The floor of a download's speed: ``floor`` bytes in every ``window`` seconds.

    Parameters
    ----------
    window
        Seconds of a window (the read timeout).
    floor
        Bytes each full window must bring.
    """

    def __init__(self, window: float, floor: int = MIN_BYTES_PER_WINDOW) -> None:
        self.window = window
        self.floor = floor
        self._start = clock().monotonic()
        self._bytes = 0
        self.total = 0

    def feed(self, count: int) -> None:
        """Count ``count`` bytes just received; raise :class:`BodyTooSlowError` below the floor."""
        self._bytes += count
        self.total += count
        elapsed = clock().monotonic() - self._start
        if elapsed < self.window:
            return
        if self._bytes < self.floor:
            raise BodyTooSlowError(self._bytes, elapsed)
        self._start, self._bytes = clock().monotonic(), 0


def read_answer(response: requests.Response, *, limit: int, seconds: float) -> bytes:
    """Read a whole body into memory: at most ``limit`` bytes, within ``seconds``.

    Raises
    ------
    BodyTooLargeError
        More than ``limit`` bytes (decompressed) came; the connection is closed.
    BodyTooSlowError
        The body was not whole ``seconds`` after the first read; the connection is closed.
    """
    started = clock().monotonic()
    parts: list[bytes] = []
    size = 0
    try:
        for piece in pieces(response, min(PIECE_BYTES, limit + 1)):
            size += len(piece)
            if size > limit:
                raise BodyTooLargeError(size, limit)
            parts.append(piece)
            elapsed = clock().monotonic() - started
            if elapsed > seconds:
                raise BodyTooSlowError(size, elapsed)
    except (BodyTooLargeError, BodyTooSlowError):
        response.close()
        raise
    return b"".join(parts)
