"""Benchmark of write_dataset: peak memory and time of writing 1,000,000 contacts by chunks.

Run: ``.venv/bin/python benchmarks/bench_dataset_write.py`` (add ``--help`` for options).

The source is what ``read_spherescout(..., chunksize=100_000)`` yields: Arrow-backed DataFrames
of 100,000 rows with their provenance, here read one by one from a Parquet file of synthetic
contacts (``make_contacts``, generated once and cached in the temporary directory), so the
source itself never sits whole in memory.

* scoutframe: ``write_dataset(chunks, path)`` (hive-partitioned by country, atomic swap);
* baseline, the same chunks converted to Arrow and written by a plain
  ``pyarrow.parquet.ParquetWriter`` into one file.

Each measurement runs in a fresh subprocess; a background thread samples the RSS every 2 ms,
and the peak RSS growth is the highest sample minus the RSS just before the write (the kernel's
high-water mark, ``VmHWM``, minus the same is printed as a cross-check; not ``ru_maxrss``, which
a child inherits from its parent across fork and exec). Target: peak RSS
growth <= 400 MiB. Every figure is the median of ``--reps`` runs (baseline and scoutframe
alternate, so drifts of the machine hit both).

Then (``--skip-upsert`` to leave it out), for the cache's delta refresh: ``merge.upsert`` of a
10,000-row delta (5,000 newer versions of known contacts, 5,000 new ones) into the same
1,000,000 rows, against ``pyarrow.parquet.read_table`` + ``write_table`` of those rows, in one
fresh subprocess. Target: upsert < 0.5x that read + write.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
DEFAULT_DATA = Path(tempfile.gettempdir()) / "scoutframe-bench" / "dataset-write"
TARGET_MIB = 400
MIB = 1 << 20


# --------------------------------------------------------------------------------------------
# Workers: each runs in a fresh interpreter and prints one JSON line


class _RssSampler:
    """Highest RSS seen by a background thread sampling every ``interval`` seconds."""

    def __init__(self, interval: float = 0.002) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(self._interval)

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


def _chunks(source: Path, chunksize: int) -> Iterator[Any]:
    """The source as read_spherescout's chunks: Arrow-backed frames with a provenance."""
    import pyarrow.parquet as pq

    from scoutframe.models import Provenance
    from scoutframe.tables import frames

    provenance = Provenance(search_id="bench", method="export", total_count=None)
    start = 0
    # One row group (= one chunk, see ensure_source) at a time: iter_batches reads ahead and
    # holds ~250 MiB more, which would swamp what the writers themselves cost.
    with pq.ParquetFile(source) as file:
        for group in range(file.num_row_groups):
            table = file.read_row_group(group)
            assert table.num_rows <= chunksize
            yield frames.to_pandas(table, provenance=provenance, index_start=start)
            start += table.num_rows


def _write_baseline(source: Path, out: Path, chunksize: int) -> int:
    import pyarrow.parquet as pq

    from scoutframe.tables import frames

    writer = None
    rows = 0
    try:
        for df in _chunks(source, chunksize):
            table = frames.table_from_pandas(df)
            if writer is None:
                writer = pq.ParquetWriter(out / "contacts.parquet", table.schema)
            writer.write_table(table)
            rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    return rows


def _write_scoutframe(source: Path, out: Path, chunksize: int) -> int:
    from scoutframe.tables.datasets import open_dataset, write_dataset

    path = write_dataset(_chunks(source, chunksize), out / "contacts", progress=False)
    return int(open_dataset(path).count_rows())


def _high_water_mark() -> int:
    """The kernel's high-water mark of this process's RSS (``VmHWM``), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    import resource  # not Linux: close enough (it may include the parent's peak)

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker(kind: str, source: Path, chunksize: int) -> None:
    """Run one write and print a JSON line: seconds, rows, peak RSS growth (sampled, HWM)."""
    import psutil

    import scoutframe.tables.datasets  # imports outside the measured region
    import scoutframe.tables.frames  # noqa: F401

    write = {"baseline": _write_baseline, "scoutframe": _write_scoutframe}[kind]
    with tempfile.TemporaryDirectory(prefix="bench-dataset-write-") as tmp:
        rss_before = psutil.Process().memory_info().rss
        with _RssSampler() as sampler:
            start = time.perf_counter()
            rows = write(source, Path(tmp), chunksize)
            seconds = time.perf_counter() - start
        hwm = _high_water_mark()
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rows": rows,
                "bytes_on_disk": size,
                "rss_growth": sampler.peak - rss_before,
                "hwm_growth": hwm - rss_before,
            }
        )
    )


def upsert_worker(source: Path, reps: int) -> None:
    """Time upsert against read_table + write_table of the base; print a JSON line."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from scoutframe.sandbox.dataset import make_contacts
    from scoutframe.tables.merge import upsert

    base = pq.read_table(source)
    picked = base.take(pa.array(range(0, base.num_rows, max(base.num_rows // 5_000, 1))[:5_000]))
    hour = pa.scalar(3_600_000_000, pa.duration("us"))
    newer = picked.set_column(
        picked.schema.get_field_index("collected_at"),
        "collected_at",
        pc.add(picked["collected_at"], hour),
    )
    fresh = make_contacts(5_000, seed=1, stream=7, exclude_place_ids=base["place_id"])
    delta = pa.concat_tables([newer, fresh.select(base.column_names).cast(base.schema)])

    def timed(action: Any) -> float:
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            action()
            times.append(time.perf_counter() - start)
        return float(statistics.median(times))

    with tempfile.TemporaryDirectory(prefix="bench-upsert-") as tmp:
        out = Path(tmp) / "base.parquet"
        read_write = timed(lambda: pq.write_table(pq.read_table(source), out))
    merged = upsert(base, delta)
    assert merged.num_rows == base.num_rows + 5_000
    print(
        json.dumps(
            {
                "upsert": timed(lambda: upsert(base, delta)),
                "read_write": read_write,
                "rows": base.num_rows,
                "delta": delta.num_rows,
            }
        )
    )


def _run_worker(kind: str, source: Path, chunksize: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            str(HERE),
            "--worker",
            kind,
            "--source",
            str(source),
            "--chunksize",
            str(chunksize),
        ],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "SCOUTFRAME_PROGRESS": "0"},
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# --------------------------------------------------------------------------------------------
# The source and the report


def ensure_source(data: Path, rows: int, chunksize: int) -> Path:
    """Generate the synthetic contacts once (about 10 s for 1M rows) and cache them."""
    path = data / f"contacts-{rows}-seed0-rg{chunksize}.parquet"
    if path.exists():
        return path
    import pyarrow.parquet as pq

    from scoutframe.files import atomic_path
    from scoutframe.sandbox.dataset import make_contacts
    from scoutframe.tables.schema import CONTACT_COLUMNS

    data.mkdir(parents=True, exist_ok=True)
    print(f"generating {rows:,} contacts into {path} ...", flush=True)
    table = make_contacts(rows, seed=0).select(list(CONTACT_COLUMNS))
    with atomic_path(path) as temp:  # row groups of one chunk: the reader streams them
        pq.write_table(table, temp, row_group_size=chunksize)
    return path


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(run[key] for run in runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunksize", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=5, help="repetitions (>= 3)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="cache of the source")
    parser.add_argument("--skip-upsert", action="store_true", help="leave out the upsert timing")
    parser.add_argument(
        "--worker", choices=["baseline", "scoutframe", "upsert"], help=argparse.SUPPRESS
    )
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker == "upsert":
        upsert_worker(args.source, max(3, args.reps))
        return 0
    if args.worker:
        worker(args.worker, args.source, args.chunksize)
        return 0
    reps = max(3, args.reps)
    source = ensure_source(args.data, args.rows, args.chunksize)
    runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "scoutframe": []}
    for rep in range(reps):
        for kind in ("baseline", "scoutframe"):
            run = _run_worker(kind, source, args.chunksize)
            runs[kind].append(run)
            print(
                f"  run {rep + 1}/{reps} {kind:>10}: {run['seconds']:6.2f} s, peak RSS growth "
                f"{run['rss_growth'] / MIB:6.0f} MiB (HWM {run['hwm_growth'] / MIB:.0f})",
                flush=True,
            )
    for kind in runs:
        assert all(run["rows"] == args.rows for run in runs[kind]), f"{kind} lost rows"
    base, ours = runs["baseline"], runs["scoutframe"]
    growth = _median(ours, "rss_growth") / MIB
    print(f"\nwrite of {args.rows:,} rows in chunks of {args.chunksize:,} (median of {reps})")
    print(f"{'':>28}{'baseline':>12}{'scoutframe':>12}{'ratio':>8}")
    for label, key, scale in (
        ("time (s)", "seconds", 1),
        ("peak RSS growth (MiB)", "rss_growth", MIB),
        ("  high-water mark (MiB)", "hwm_growth", MIB),
        ("on disk (MiB)", "bytes_on_disk", MIB),
    ):
        b, o = _median(base, key) / scale, _median(ours, key) / scale
        print(f"{label:>28}{b:>12.2f}{o:>12.2f}{o / b if b else float('nan'):>8.2f}")
    verdict = "OK" if growth <= TARGET_MIB else "MISSED"
    print(f"target: peak RSS growth <= {TARGET_MIB} MiB: {growth:.0f} MiB -> {verdict}")
    ok = growth <= TARGET_MIB
    if not args.skip_upsert:
        out = subprocess.run(
            [
                sys.executable,
                str(HERE),
                "--worker",
                "upsert",
                "--source",
                str(source),
                "--reps",
                str(reps),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        times = json.loads(out.stdout.strip().splitlines()[-1])
        ratio = times["upsert"] / times["read_write"]
        print(
            f"\nupsert of a {times['delta']:,}-row delta into {times['rows']:,} rows "
            f"(median of {reps}): {times['upsert']:.2f} s; read_table + write_table of the "
            f"base: {times['read_write']:.2f} s; ratio {ratio:.2f} (target < 0.5) -> "
            f"{'OK' if ratio < 0.5 else 'MISSED'}"
        )
        ok = ok and ratio < 0.5
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
