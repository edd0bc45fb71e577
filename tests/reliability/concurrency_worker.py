"""A process sharing one cache entry with others: a refresher driven round by round, or a reader.

Run as a script by ``test_concurrency.py``.

``refresher``  reads commands on stdin, one a line: ``go N`` runs N times a refresh
               (``cache="refresh"``, paid within ``--budget``) followed by a plain cached read
               (``cache=True``), then prints one JSON line: a list of what each read served
               (mode, rows, credits spent, history chain, fingerprint); ``quit`` ends it.
``reader``     reads the entry in a loop, never taking its lock nor touching the network:
               ``read_spherescout(..., cache="only")`` and, in turn, plain
               ``pyarrow.parquet.read_table`` of the entry's ``data.parquet`` (as another tool
               would), until the file ``--stop`` exists (it creates ``--ready`` after its
               first read, so that the test starts committing only then); then prints one
               JSON object: what each read saw, and the errors met.

A fingerprint (:func:`fingerprint`) names a version of the table: its place ids and their
``collected_at``, in ``place_id`` order.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from scoutframe import Client, read_spherescout


def fingerprint(table: pa.Table) -> str:
    """Name a version of the table by its ``place_id`` and ``collected_at`` columns."""
    table = table.select(["place_id", "collected_at"])
    table = table.cast(
        pa.schema([("place_id", pa.string()), ("collected_at", pa.timestamp("us", tz="UTC"))])
    )
    table = table.take(pc.sort_indices(table, [("place_id", "ascending")]))
    ids = table.column("place_id").to_pylist()
    times = [str(t) for t in table.column("collected_at").to_pylist()]
    return hashlib.sha256("\n".join(ids + times).encode()).hexdigest()


def _described(frame: Any, mode: str) -> dict[str, Any]:
    meta = frame.attrs["scoutframe"]
    return {
        "mode": mode,
        "rows": len(frame),
        "unique": bool(frame["place_id"].is_unique),
        "spent": meta.get("credits_spent"),
        "chain": meta.get("history_ids"),
        "fp": fingerprint(pa.Table.from_pandas(frame, preserve_index=False)),
    }


def _client(options: argparse.Namespace) -> Client:
    return Client(
        options.key,
        options.url,
        allow_http=True,
        state_dir=options.state,
        config_file=os.path.join(options.state, "no-config.toml"),
        poll_interval=(0.02, 0.1),
        backoff_factor=0.01,
    )


def refresher(options: argparse.Namespace) -> int:
    filters = json.loads(options.filters)
    with _client(options) as client:
        for line in sys.stdin:
            command = line.split()
            if command == ["quit"]:
                return 0
            served = []
            for _ in range(int(command[1])):
                for mode in ("refresh", "cached"):
                    frame = read_spherescout(
                        **filters,
                        client=client,
                        method="export",
                        cache="refresh" if mode == "refresh" else True,
                        cache_dir=options.cache,
                        max_credits=options.budget,
                        progress=False,
                    )
                    served.append(_described(frame, mode))
            print(json.dumps(served), flush=True)
    return 0


def reader(options: argparse.Namespace) -> int:
    filters = json.loads(options.filters)
    seen: list[dict[str, Any]] = []
    errors: list[str] = []
    with _client(options) as client:
        while not os.path.exists(options.stop):
            try:
                if len(seen) % 2 == 0:
                    frame = read_spherescout(
                        **filters,
                        client=client,
                        method="export",
                        cache="only",
                        cache_dir=options.cache,
                        progress=False,
                    )
                    seen.append(_described(frame, "only"))
                else:
                    table = pq.read_table(options.data)
                    seen.append(
                        {
                            "mode": "pyarrow",
                            "rows": table.num_rows,
                            "unique": len(pc.unique(table.column("place_id"))) == table.num_rows,
                            "spent": None,
                            "chain": None,
                            "fp": fingerprint(table),
                        }
                    )
            except Exception as exc:  # any failure to read is a failure of the promise
                errors.append(f"{type(exc).__name__}: {exc}"[:500])
                time.sleep(0.005)
            if seen and not os.path.exists(options.ready):
                with open(options.ready, "w"):
                    pass
    print(json.dumps({"seen": seen, "errors": errors}))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=("refresher", "reader"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--cache", required=True)
    parser.add_argument("--filters", required=True, help="JSON object of filters")
    parser.add_argument("--budget", type=int, default=1_000_000)
    parser.add_argument("--data", help="the entry's data.parquet (reader)")
    parser.add_argument("--stop", help="the reader stops once this file exists")
    parser.add_argument("--ready", help="the reader creates this file after its first read")
    options = parser.parse_args()
    return refresher(options) if options.role == "refresher" else reader(options)


if __name__ == "__main__":
    sys.exit(main())
