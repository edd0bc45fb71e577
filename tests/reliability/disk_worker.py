"""One read in a process whose files cannot grow past a limit: a disk that fills up.

Run as a script by ``test_disk_full.py``. It ignores SIGXFSZ and sets ``RLIMIT_FSIZE`` to
``--limit`` bytes, so every write that would make a file larger than that fails with
``EFBIG`` (the errno a full disk gives is ``ENOSPC``; scoutframe treats both as no room).
With ``--when commit`` the limit is set only when the cache entry's table is committed (the
disk fills up between the download and the commit).
Then it runs one ``read_spherescout`` and prints one JSON line: the error's class, message,
path, ``needed`` and ``free`` (or the rows read when it succeeds).
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import sys
from pathlib import Path
from typing import Any

from scoutframe import Client, read_spherescout
from scoutframe.cache.entry import CacheEntry
from scoutframe.errors import DiskFullError, LocalFileError


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--cache", default="")
    parser.add_argument("--filters", required=True)
    parser.add_argument("--refresh", action="store_true")
    parser.add_argument("--limit", type=int, required=True)
    parser.add_argument("--when", choices=("start", "commit"), default="start")
    args = parser.parse_args()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)

    def fill_up() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (args.limit, hard))

    if args.when == "start":
        fill_up()
    else:  # the disk fills up after the download, while the cache entry is written
        commit = CacheEntry.commit_slices

        def commit_on_a_full_disk(self: CacheEntry, *a: Any, **k: Any) -> Any:
            fill_up()
            return commit(self, *a, **k)

        CacheEntry.commit_slices = commit_on_a_full_disk  # type: ignore[method-assign]
    client = Client(
        args.key,
        base_url=args.url,
        allow_http=True,
        state_dir=Path(args.state),
        config_file=Path(args.state).parent / "none.toml",
        max_retries=1,
        backoff_factor=0.01,
        poll_interval=(0.01, 0.05),
    )
    options: dict[str, Any] = {}
    if args.cache:
        options = {"cache": "refresh" if args.refresh else True, "cache_dir": args.cache}
    result: dict[str, Any]
    try:
        frame = read_spherescout(
            **json.loads(args.filters),
            method="export",
            client=client,
            progress=False,
            max_credits=1_000_000,
            **options,
        )
        result = {"rows": len(frame)}
    except LocalFileError as exc:
        result = {
            "error": type(exc).__name__,
            "message": str(exc),
            "path": str(exc.path),
            "errno": exc.errno,
            "needed": exc.needed if isinstance(exc, DiskFullError) else None,
            "free": exc.free if isinstance(exc, DiskFullError) else None,
        }
    except Exception as exc:  # reported, so the test can say which class came out
        result = {"error": type(exc).__name__, "message": str(exc), "path": None}
    finally:
        client.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
