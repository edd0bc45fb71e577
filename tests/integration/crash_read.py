"""A read by export in its own process, killed on purpose at a chosen phase (a test helper).

Run as a script by the crash tests: it reads the contacts of ``--filters`` from the sandbox at
``--url`` and, when ``--phase`` is not ``none``, kills itself there with ``--signal`` (``KILL``:
SIGKILL, nothing runs afterwards; ``INT``: SIGINT, Python raises KeyboardInterrupt; ``RAISE``:
the consumer's own exception in a chunk loop). Phases:

``start``     the export start was answered (the server charged), before the client used it
``wait``      the ``--at``-th status poll
``download``  after the ``--at``-th piece of the body reached the part file
``parse``     when the downloaded file is parsed
``chunk``     after the consumer received ``--at`` chunks

On success it prints one JSON line: rows, credits spent by this run, the provenance's reason.
A KeyboardInterrupt is printed with its notes (what Python prints for Ctrl-C) and exits 130.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from scoutframe import Client, read_spherescout
from scoutframe.api import downloads, jobs, transport
from scoutframe.tables import exportcsv


def _crash(how: str) -> None:
    if how == "KILL":
        os.kill(os.getpid(), signal.SIGKILL)
    if how == "INT":
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # the handler raises KeyboardInterrupt between bytecodes
            pass
        raise KeyboardInterrupt  # pragma: no cover - the signal came first
    raise RuntimeError("the consumer's own code failed")


def _counting(at: int, how: str, inner: Callable[..., Any]) -> Callable[..., Any]:
    calls = [0]

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        result = inner(*args, **kwargs)
        if calls[0] >= at:
            _crash(how)
        return result

    return wrapped


def install(phase: str, how: str, at: int) -> None:
    """Arrange for this process to crash at ``phase``."""
    if phase == "start":
        real_request = transport.Transport.request

        def request(self: Any, method: str, path: str, **kwargs: Any) -> Any:
            response = real_request(self, method, path, **kwargs)
            if path.startswith("/api/download-csv"):
                _crash(how)  # charged on the server; the answer never reaches the client
            return response

        transport.Transport.request = request  # type: ignore[method-assign]
    elif phase == "wait":
        jobs.ExportJob.refresh = _counting(at, how, jobs.ExportJob.refresh)  # type: ignore[method-assign]
    elif phase == "download":
        real_pieces = downloads.pieces

        def pieces(response: Any, chunk_size: int) -> Iterator[bytes]:
            for n, piece in enumerate(real_pieces(response, min(chunk_size, 4096)), start=1):
                yield piece
                if n >= at:
                    _crash(how)

        downloads.pieces = pieces  # type: ignore[assignment]
    elif phase == "parse":
        exportcsv.read_csv = _counting(1, how, exportcsv.read_csv)  # type: ignore[assignment]
        exportcsv.iter_csv = _counting(1, how, exportcsv.iter_csv)  # type: ignore[assignment]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--filters", required=True, help="JSON object of filters")
    parser.add_argument("--phase", default="none")
    parser.add_argument("--signal", default="KILL", choices=("KILL", "INT", "RAISE"))
    parser.add_argument("--at", type=int, default=1)
    parser.add_argument("--chunksize", type=int, default=0)
    options = parser.parse_args()
    install(options.phase, options.signal, options.at)
    client = Client(
        options.key,
        options.url,
        allow_http=True,
        state_dir=options.state,
        poll_interval=(0.05, 0.2),
        backoff_factor=0.01,
    )
    read = {**json.loads(options.filters), "client": client, "method": "export", "progress": False}
    try:
        if options.chunksize:
            rows, meta = 0, {}
            for n, chunk in enumerate(read_spherescout(**read, chunksize=options.chunksize), 1):
                rows += len(chunk)
                meta = chunk.attrs["scoutframe"]
                if options.phase == "chunk" and n >= options.at:
                    _crash(options.signal)
        else:
            frame = read_spherescout(**read)
            rows, meta = len(frame), frame.attrs["scoutframe"]
    except KeyboardInterrupt as exc:
        traceback.print_exception(exc)
        return 130
    print(
        json.dumps(
            {"rows": rows, "credits_spent": meta.get("credits_spent"), "reason": meta.get("reason")}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
