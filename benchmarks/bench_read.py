"""Benchmark of read_spherescout against hand-written baselines, on one local sandbox.

Run: ``.venv/bin/python benchmarks/bench_read.py`` (add ``--help`` for options).

(a) export path, 1,000,000 rows: ``read_spherescout(method="export")`` against a baseline
    written by hand (requests: start, poll, streaming download in 1 MiB chunks; then
    ``pyarrow.csv.read_csv`` + ``to_pandas``). Each measurement runs in a fresh subprocess;
    peak RSS growth = the kernel's high-water mark (``ru_maxrss``, i.e. VmHWM) minus the RSS
    psutil reports just before the read. Targets: time <= 1.1x baseline, peak RSS growth
    <= 2x the frame's ``memory_usage(deep=True)``.
(b) pages path, 10,000 rows: ``read_spherescout(method="pages")`` against a naive sequential
    loop of ``requests.get`` + ``pd.DataFrame``; once with no added latency (loopback) and once
    with ``latency_ms`` injected by the sandbox's faults. Target: >= 4x faster.
(c) ``import scoutframe`` on top of ``import pandas``, fresh subprocesses. Target: < 150 ms.
Also, once and without a target: the export read with ``chunksize=100_000`` (peak RSS growth
against the largest chunk), to show that chunks keep memory flat.

Every figure is the median of ``--reps`` repetitions (>= 3); baseline and scoutframe runs
alternate so drifts of the machine hit both.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
DEFAULT_DATA = Path(tempfile.gettempdir()) / "scoutframe-bench" / "data"
POLL_SECONDS = 0.1
CHUNK_ROWS = 100_000


# --------------------------------------------------------------------------------------------
# Workers: each runs in a fresh interpreter and prints one JSON line


def _peak_rss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _export_baseline(url: str, key: str) -> Any:
    import pandas as pd
    import pyarrow.csv as pacsv
    import requests

    headers = {"Authorization": f"Bearer {key}", "User-Agent": "bench-baseline/1"}
    search = requests.get(f"{url}/api/companies", headers=headers, timeout=60).json()
    started = requests.get(
        f"{url}/api/download-csv",
        params={"search_id": search["search_id"]},
        headers=headers,
        timeout=60,
    )
    started.raise_for_status()
    task = started.json()["task_id"]
    while True:
        status = requests.get(
            f"{url}/api/download-status/{task}", headers=headers, timeout=60
        ).json()
        if status["status"] == "ready":
            break
        if status["status"] == "failed":
            raise RuntimeError(status)
        time.sleep(POLL_SECONDS)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.csv"
        with requests.get(status["download_url"], stream=True, timeout=60) as response:
            response.raise_for_status()
            with path.open("wb") as out:
                for chunk in response.iter_content(chunk_size=1 << 20):
                    out.write(chunk)
        table = pacsv.read_csv(path)
        df: pd.DataFrame = table.to_pandas()
        del table
    return df


def _export_scoutframe(url: str, key: str) -> Any:
    import scoutframe
    from scoutframe.read import read_spherescout

    # A fresh state directory: every run starts (and pays for) its own export, as the
    # baseline does, instead of downloading an earlier one again for free.
    client = scoutframe.Client(
        key, url, poll_interval=(POLL_SECONDS, POLL_SECONDS), state_dir=tempfile.mkdtemp()
    )
    with client:
        return read_spherescout(client=client, method="export", progress=False, all=True)


class _Chunked:
    """Stand-in 'frame' of a chunked read: rows and the largest chunk's size."""

    def __init__(self, rows: int, largest: int) -> None:
        self.rows, self.largest = rows, largest

    def __len__(self) -> int:
        return self.rows

    def memory_usage(self, deep: bool) -> Any:  # noqa: ARG002 - pandas' signature
        import pandas as pd

        return pd.Series([self.largest])


def _export_chunks(url: str, key: str) -> Any:
    import scoutframe
    from scoutframe.read import read_spherescout

    rows = largest = 0
    client = scoutframe.Client(
        key, url, poll_interval=(POLL_SECONDS, POLL_SECONDS), state_dir=tempfile.mkdtemp()
    )
    with client:
        for chunk in read_spherescout(
            client=client, method="export", progress=False, chunksize=CHUNK_ROWS, all=True
        ):
            rows += len(chunk)
            largest = max(largest, int(chunk.memory_usage(deep=True).sum()))
    return _Chunked(rows, largest)


def worker(kind: str, url: str, key: str) -> None:
    """Run one export measurement and print a JSON line."""
    import psutil

    reader = {
        "baseline": _export_baseline,
        "scoutframe": _export_scoutframe,
        "chunks": _export_chunks,
    }[kind]
    if kind != "baseline":  # import outside the timed region, as the baseline's imports are
        import scoutframe.read  # noqa: F401
    else:
        import pandas  # noqa: F401
        import pyarrow.csv  # noqa: F401
        import requests  # noqa: F401
    rss_before = psutil.Process().memory_info().rss
    start = time.perf_counter()
    df = reader(url, key)
    seconds = time.perf_counter() - start
    peak = _peak_rss()
    frame_bytes = int(df.memory_usage(deep=True).sum())
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rows": len(df),
                "frame_bytes": frame_bytes,
                "rss_growth": peak - rss_before,
            }
        )
    )


def _run_worker(kind: str, url: str, key: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(HERE), "--worker", kind, "--url", url, "--key", key],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "SCOUTFRAME_PROGRESS": "0"},
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# --------------------------------------------------------------------------------------------
# Measurements


def bench_export(url: str, key: str, reps: int) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "scoutframe": []}
    for rep in range(reps):
        for kind in ("baseline", "scoutframe"):
            result = _run_worker(kind, url, key)
            runs[kind].append(result)
            print(
                f"  export rep {rep + 1} {kind:<10} {result['seconds']:6.2f} s  "
                f"{result['rows']:,} rows  frame {result['frame_bytes'] / 2**20:7.1f} MiB  "
                f"peak RSS growth {result['rss_growth'] / 2**20:7.1f} MiB",
                flush=True,
            )
    summary = {}
    for kind, results in runs.items():
        summary[kind] = {
            "seconds": statistics.median(r["seconds"] for r in results),
            "frame_mib": statistics.median(r["frame_bytes"] for r in results) / 2**20,
            "rss_growth_mib": statistics.median(r["rss_growth"] for r in results) / 2**20,
            "rows": results[0]["rows"],
        }
    return summary


def _pages_naive(url: str, key: str, rows: int) -> Any:
    import pandas as pd
    import requests

    headers = {"Authorization": f"Bearer {key}", "User-Agent": "bench-naive/1"}
    records: list[dict[str, Any]] = []
    page = 1
    while len(records) < rows:
        answer = requests.get(
            f"{url}/api/companies",
            params={"paginate": "true", "page": page},
            headers=headers,
            timeout=60,
        )
        answer.raise_for_status()
        records.extend(answer.json()["preview"])
        page += 1
    return pd.DataFrame(records[:rows])


def _pages_scoutframe(client: Any, rows: int, concurrency: int) -> Any:
    from scoutframe.read import read_spherescout

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the masked-email warning, expected here
        return read_spherescout(
            client=client,
            method="pages",
            nrows=rows,
            progress=False,
            concurrency=concurrency,
            all=True,
        )


def bench_pages(
    sb: Any, url: str, key: str, rows: int, reps: int, latency_ms: int, concurrencies: list[int]
) -> dict[str, float]:
    import scoutframe

    sb.admin.set_faults(latency_ms=latency_ms)
    times: dict[str, list[float]] = {"naive": []} | {f"c{c}": [] for c in concurrencies}
    with scoutframe.Client(key, url) as client:
        for _ in range(reps):
            start = time.perf_counter()
            naive = _pages_naive(url, key, rows)
            times["naive"].append(time.perf_counter() - start)
            for c in concurrencies:
                start = time.perf_counter()
                df = _pages_scoutframe(client, rows, c)
                times[f"c{c}"].append(time.perf_counter() - start)
                assert len(df) == len(naive) == rows, (len(df), len(naive))
    sb.admin.set_faults(latency_ms=0)
    return {name: statistics.median(values) for name, values in times.items()}


def bench_import(reps: int) -> dict[str, float]:
    code = (
        "import time; t0 = time.perf_counter(); import pandas; t1 = time.perf_counter(); "
        "import scoutframe; t2 = time.perf_counter(); print(t1 - t0, t2 - t1)"
    )
    pandas_ms, scoutframe_ms = [], []
    for _ in range(reps):
        out = subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout.split()
        pandas_ms.append(float(out[0]) * 1000)
        scoutframe_ms.append(float(out[1]) * 1000)
    return {
        "pandas_ms": statistics.median(pandas_ms),
        "scoutframe_ms": statistics.median(scoutframe_ms),
    }


# --------------------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--page-rows", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, default=30)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA,
        help=f"sandbox data (generated on first run; default {DEFAULT_DATA})",
    )
    parser.add_argument(
        "--skip", action="append", default=[], choices=["export", "pages", "import"]
    )
    parser.add_argument(
        "--worker", choices=["baseline", "scoutframe", "chunks"], help=argparse.SUPPRESS
    )
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.worker:
        worker(options.worker, options.url, options.key)
        return 0
    reps = max(options.reps, 3)
    lines: list[str] = []

    if "import" not in options.skip:
        print("(c) import time ...", flush=True)
        imp = bench_import(max(reps, 7))
        lines.append(
            f"(c) import scoutframe after pandas: {imp['scoutframe_ms']:.1f} ms "
            f"(pandas itself {imp['pandas_ms']:.0f} ms; median of {max(reps, 7)}; "
            f"target < 150 ms) {_verdict(imp['scoutframe_ms'] < 150)}"
        )
        print(lines[-1], flush=True)

    if {"export", "pages"} - set(options.skip):
        from scoutframe.sandbox import Sandbox

        print(
            f"starting the sandbox ({options.contacts:,} contacts, data in "
            f"{options.data_dir}; the first run generates them) ...",
            flush=True,
        )
        started = time.perf_counter()
        with Sandbox(
            contacts=options.contacts, data_dir=options.data_dir, mode="process", rate_limit=0
        ) as sb:
            print(f"sandbox ready in {time.perf_counter() - started:.1f} s at {sb.url}", flush=True)
            account = sb.admin.create_account(credits=10**10)
            key = account["api_key"]
            if "export" not in options.skip:
                print(f"(a) export path, {options.contacts:,} rows ...", flush=True)
                ex = bench_export(sb.url, key, reps)
                base, ours = ex["baseline"], ex["scoutframe"]
                ratio = ours["seconds"] / base["seconds"]
                mem_ratio = ours["rss_growth_mib"] / ours["frame_mib"]
                lines.append(
                    f"(a) export {ours['rows']:,} rows: scoutframe {ours['seconds']:.2f} s vs "
                    f"baseline {base['seconds']:.2f} s = {ratio:.2f}x (target <= 1.10x) "
                    f"{_verdict(ratio <= 1.10)}"
                )
                lines.append(
                    f"    memory: frame {ours['frame_mib']:.0f} MiB, peak RSS growth "
                    f"{ours['rss_growth_mib']:.0f} MiB = {mem_ratio:.2f}x the frame (target "
                    f"<= 2x) {_verdict(mem_ratio <= 2)}; baseline frame "
                    f"{base['frame_mib']:.0f} MiB, peak growth {base['rss_growth_mib']:.0f} MiB "
                    f"= {base['rss_growth_mib'] / base['frame_mib']:.2f}x"
                )
                chunked = _run_worker("chunks", sb.url, key)
                lines.append(
                    f"    chunksize={CHUNK_ROWS:,} (one run, no target): "
                    f"{chunked['seconds']:.2f} s, "
                    f"peak RSS growth {chunked['rss_growth'] / 2**20:.0f} MiB for chunks of "
                    f"{chunked['frame_bytes'] / 2**20:.0f} MiB ({chunked['rows']:,} rows in all)"
                )
                print("\n".join(lines[-3:]), flush=True)
            if "pages" not in options.skip:
                for latency in (0, options.latency_ms):
                    print(
                        f"(b) pages path, {options.page_rows:,} rows, added latency "
                        f"{latency} ms ...",
                        flush=True,
                    )
                    pg = bench_pages(sb, sb.url, key, options.page_rows, reps, latency, [8, 4])
                    for name in ("c8", "c4"):
                        speedup = pg["naive"] / pg[name]
                        default = " (default)" if name == "c8" else ""
                        lines.append(
                            f"(b) pages {options.page_rows:,} rows, latency {latency} ms, "
                            f"concurrency {name[1:]}{default}: scoutframe {pg[name]:.2f} s vs "
                            f"naive {pg['naive']:.2f} s = {speedup:.1f}x faster (target >= 4x) "
                            f"{_verdict(speedup >= 4)}"
                        )
                        print(lines[-1], flush=True)

    print(f"\n== summary (medians of {reps}) ==")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
