"""Benchmark of the cache's stores on a 1,000,000-row entry, against plain pyarrow in the same run.

Run: ``.venv/bin/python benchmarks/bench_stores.py`` (``--rows`` for a smaller trial). Stores:
local Parquet, local Delta, S3 Delta and S3 Parquet (moto's S3 server on loopback, in its own
process). The entry is committed through ``CacheEntry``/``DeltaCacheEntry`` (no API round
trip: what is measured is the storage side of a hit and of a refresh).

(a) hit: what ``read_spherescout(cache=True)`` does with the entry (read the table, to
    pandas with Arrow dtypes) against a plain read of the same data on the same store
    (``pyarrow.parquet.read_table`` of the file; for Delta, pyarrow reading the current
    version's files). Target: at most 1.2x.
(b) refresh with a 1% delta (10,000 rows re-collected): the entry's refresh merge and commit
    (Parquet: ``upsert_slices`` streamed into a new object; Delta: delta-rs's MERGE) against
    a plain pyarrow read plus write of the same data on the same store. Target: 1.5x.
(c) ``write_dataset`` of 5,000,000 rows given in chunks of 100,000, in a fresh process: peak
    RSS growth. Target: bounded by the chunk size (flat from 1M to 5M rows).

Medians of ``--reps`` runs, the baseline and scoutframe alternating.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent.parent / "tests"))
MiB = 1 << 20


def _timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def contacts(n: int, *, seed: int = 1, hours: int = 0) -> Any:
    import numpy as np
    import pyarrow as pa

    from scoutframe.tables.schema import CONTACT_SCHEMA

    rng = np.random.default_rng(seed)
    ids = pa.array([f"ChIJ{i:010d}" for i in range(n)])
    at = pa.array(np.full(n, 1_700_000_000_000_000 + hours * 3_600_000_000), pa.int64())
    countries = np.array(["FR", "DE", "US", "NA", "GB"])[rng.integers(0, 5, n)]
    cols = {
        "place_id": ids,
        "name": pa.array([f"Shop {i}" for i in range(n)]),
        "email": pa.array([[f"s{i}@x.fr"] for i in range(n)], pa.list_(pa.string())),
        "phone": pa.array([["+33 1 23 45 67 89"]] * n, pa.list_(pa.string())),
        "website": pa.array([f"https://s{i}.example" for i in range(n)]),
        "zipcode": pa.array([f"{z:05d}" for z in rng.integers(0, 100_000, n)]),
        "country": pa.array(countries),
        "city": pa.array([f"City {c}" for c in countries]),
        "rating": pa.array(rng.uniform(1, 5, n)),
        "review_count": pa.array(rng.integers(0, 500, n).astype("int32")),
        "latitude": pa.array(rng.uniform(-60, 60, n)),
        "longitude": pa.array(rng.uniform(-180, 180, n)),
        "collected_at": at.cast(pa.timestamp("us", tz="UTC")),
    }
    arrays = [
        cols[f.name] if f.name in cols else pa.nulls(n, f.type).cast(f.type) for f in CONTACT_SCHEMA
    ]
    return pa.Table.from_arrays(arrays, schema=CONTACT_SCHEMA)


def _manifest(key: str, rows: int) -> Any:
    from scoutframe.cache.entry import Manifest, now_iso

    return Manifest(
        key=key, origin="http://127.0.0.1:1", account="1", filters={"countries": ["FR"]},
        method="export", schema_version=1, rows=rows, created_at=now_iso(),
        refreshed_at=now_iso(), history_ids=(1,),
    )  # fmt: skip


def bench_store(name: str, cache: Any, table: Any, reps: int) -> dict[str, Any]:
    import pandas as pd
    import pyarrow.parquet as pq

    from scoutframe.cache.deltaentry import DeltaCacheEntry
    from scoutframe.cache.refresh import _commit_streamed
    from scoutframe.models import Provenance

    key = "0123456789abcdef0123456789abcdef"
    entry = cache.entry(key)
    manifest = _manifest(key, table.num_rows)
    with entry.lock():
        entry.commit(table, manifest, Provenance(history_id=1))
    fs = entry.backend.store.filesystem if hasattr(entry.backend, "store") else None

    def plain_read() -> Any:
        if isinstance(entry, DeltaCacheEntry):
            files = entry._table().file_uris()
            return pq.read_table(
                [f.split("://", 1)[-1] for f in files] if fs is not None else files,
                filesystem=fs,
            ).to_pandas(types_mapper=pd.ArrowDtype)
        with entry.backend.open_input(key, "data.parquet") as source:
            return pq.read_table(source).to_pandas(types_mapper=pd.ArrowDtype)

    def hit() -> Any:
        got, _ = entry.read()
        return got.to_pandas(types_mapper=pd.ArrowDtype)

    hits, plains = [], []
    for _ in range(reps):
        plains.append(_timed(plain_read))
        hits.append(_timed(hit))
    scratch = tempfile.mkdtemp()
    refreshes, floors = [], []
    delta_rows = max(1, table.num_rows // 100)
    for rep in range(reps):
        import numpy as np

        picks = np.random.default_rng(rep).choice(table.num_rows, delta_rows, replace=False)
        changes = contacts(table.num_rows, hours=rep + 1).take(picks)

        def floor() -> None:
            data = plain_read()
            out = f"{scratch}/floor.parquet"
            import pyarrow as pa

            pq.write_table(pa.Table.from_pandas(data, preserve_index=False), out)
            if fs is not None:  # the same store: upload it there
                with (
                    open(out, "rb") as src,
                    fs.open_output_stream(f"{entry.backend.store.path}/floor.parquet") as dst,
                ):
                    dst.write(src.read())

        def refresh(rep: int = rep, changes: Any = changes) -> None:
            current = entry.manifest()
            result = replace(current, history_ids=(*current.history_ids, rep + 2))
            with entry.lock():
                keys = entry.read(["place_id"])[0].column("place_id")
                if isinstance(entry, DeltaCacheEntry):
                    entry.merge(changes, result, Provenance(history_id=rep + 2))
                else:
                    _commit_streamed(entry, keys, changes, result, 0)

        floors.append(_timed(floor))
        refreshes.append(_timed(refresh))
    result = {
        "hit": statistics.median(hits),
        "plain_read": statistics.median(plains),
        "refresh": statistics.median(refreshes),
        "plain_read_write": statistics.median(floors),
    }
    result["hit_ratio"] = result["hit"] / result["plain_read"]
    result["refresh_ratio"] = result["refresh"] / result["plain_read_write"]
    print(
        f"{name:<14} hit {result['hit']:.3f} s vs plain read {result['plain_read']:.3f} s: "
        f"{result['hit_ratio']:.2f}x (<= 1.2x); refresh 1% {result['refresh']:.3f} s vs "
        f"read+write {result['plain_read_write']:.3f} s: {result['refresh_ratio']:.2f}x "
        "(<= 1.5x)",
        flush=True,
    )
    return result


def _dataset_worker(rows: int, out: str) -> None:
    import psutil

    from scoutframe.tables.datasets import write_dataset

    chunk = 100_000
    template = contacts(chunk)
    before = psutil.Process().memory_info().rss

    def chunks() -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc

        for start in range(0, rows, chunk):  # fresh ids per chunk, as a read would give
            ids = pc.binary_join_element_wise(template["place_id"], pa.scalar(f"-{start}"), "")
            yield template.set_column(0, "place_id", ids)

    started = time.perf_counter()
    write_dataset(chunks(), out, progress=False)
    seconds = time.perf_counter() - started
    peak = next(
        int(line.split()[1]) * 1024
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("VmHWM:")
    )
    print(json.dumps({"growth": peak - before, "seconds": seconds}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dataset-rows", type=int, default=5_000_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--stores", default="local-parquet,local-delta,s3-delta,s3-parquet")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker:
        _dataset_worker(int(options.worker[0]), options.worker[1])
        return 0
    from s3server import S3Server

    from scoutframe.cache import Cache

    table = contacts(options.rows)
    print(f"bench_stores: {options.rows:,} rows, {options.reps} repetitions, medians", flush=True)
    results: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="bench-stores-"))
    with S3Server() as s3:
        for name in options.stores.split(","):
            kind, table_format = name.split("-")
            where = str(work / name) if kind == "local" else s3.uri(name)
            cache = Cache(
                where,
                storage_options=None if kind == "local" else s3.storage_options,
                cache_format=table_format,
            )
            results[name] = bench_store(name, cache, table, max(1, options.reps))
    growths = {}
    for rows in (options.dataset_rows // 5, options.dataset_rows):
        out = subprocess.run(
            [sys.executable, str(HERE), "--worker", str(rows), str(work / f"ds-{rows}")],
            capture_output=True, text=True, check=True, timeout=3600,
        )  # fmt: skip
        growths[rows] = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"write_dataset {rows:>10,} rows in chunks of 100,000: peak RSS growth "
            f"{growths[rows]['growth'] / MiB:.0f} MiB, {growths[rows]['seconds']:.1f} s",
            flush=True,
        )
    results["write_dataset"] = {str(k): v for k, v in growths.items()}
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
