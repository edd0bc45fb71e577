"""Time and peak memory of generating, then of reloading, the sandbox dataset.

Usage: python benchmarks/bench_dataset.py [contacts] [data_dir]
Generation runs in one child process and the reload in another, so each peak RSS is its own.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _child(contacts: int, data_dir: Path) -> None:
    start = time.perf_counter()
    from scoutframe.sandbox.dataset import load_or_generate

    dataset = load_or_generate(data_dir, contacts=contacts, seed=0)
    elapsed = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{len(dataset):>10,} contacts  {elapsed:6.2f} s  peak RSS {peak_mib:7.0f} MiB")


def main() -> None:
    contacts = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tmp)
        for label in ("generate", "reload"):
            print(f"{label:>9}: ", end="", flush=True)
            subprocess.run(
                [sys.executable, __file__, "--child", str(contacts), str(data_dir)], check=True
            )
        size = sum(p.stat().st_size for p in data_dir.glob("contacts-*.parquet"))
        print(f"Parquet on disk: {size / 2**20:.0f} MiB")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(int(sys.argv[2]), Path(sys.argv[3]))
    else:
        main()
