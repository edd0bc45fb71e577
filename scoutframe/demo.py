"""``scoutframe demo``: the library's main job, end to end, on a local sandbox."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class _Phases:
    """Wall-clock time of each demo step, printed as a table at the end."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = time.perf_counter() - start

    def run(self, name: str, action: Callable[[], T]) -> T:
        with self.timed(name):
            return action()


def _heading(text: str) -> None:
    print(f"\n== {text} ==", flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scoutframe demo",
        description="Start a local SphereScout sandbox and walk through scoutframe on it.",
    )
    parser.add_argument(
        "--contacts",
        type=int,
        default=200_000,
        help="size of the sandbox's synthetic dataset (default 200,000)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the sandbox keeps its data (default: the user cache dir)",
    )
    parser.add_argument("--country", default="US", help="country of the large search")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return the exit status."""
    options = _parser().parse_args(argv)
    import pandas as pd

    import scoutframe

    from .sandbox import Sandbox

    pd.set_option("display.width", 120)
    pd.set_option("display.max_columns", 8)
    pd.set_option("display.max_colwidth", 40)
    phases = _Phases()
    print(
        f"scoutframe {scoutframe.__version__} demo: everything below runs against a local "
        "sandbox\n(a first run generates its synthetic contacts; later runs reuse them).",
        flush=True,
    )
    with phases.timed("start sandbox"):
        sandbox = Sandbox(
            contacts=options.contacts, data_dir=options.data_dir, mode="process", rate_limit=0
        )
        sandbox.start()
    try:
        print(f"sandbox serving at {sandbox.url}")
        # A fresh account each run, so repeated demos never run out of credits.
        account = sandbox.admin.create_account(credits=100_000)
        client = scoutframe.Client(account["api_key"], sandbox.url, poll_interval=(0.2, 1.0))
        with client:
            _tour(client, options, phases)
    finally:
        sandbox.stop()
    _heading("Time per phase")
    for name, seconds in phases.seconds.items():
        print(f"  {name:<28} {seconds:7.2f} s")
    print(f"  {'total':<28} {sum(phases.seconds.values()):7.2f} s")
    return 0


def _tour(client: Any, options: argparse.Namespace, phases: _Phases) -> None:
    import pandas as pd

    import scoutframe

    profile = client.profile()
    print(f"account {profile.email}: {profile.credits:,} credits")

    _heading("Reference data")
    countries = phases.run("reference data", client.countries)
    print(f"{len(countries)} countries, e.g.:")
    print(countries.head(5).to_string(index=False))
    print("\ncategories matching 'plumb':")
    print(client.categories("plumb", limit=5).to_string(index=False))

    _heading("Preview: plumbers in France (free, emails masked)")
    preview = phases.run(
        "preview search", lambda: client.search(countries="FR", category="Plumber")
    )
    print(f"{preview.total_count:,} matches (search id {preview.search_id}); first rows:")
    print(
        pd.DataFrame(preview.contacts)[["name", "city", "email", "phone"]]
        .head(5)
        .to_string(index=False)
    )

    _heading(f"Plan: every contact in {options.country} with an email")
    search = {"countries": options.country, "email": True}
    plan = phases.run(
        "plan (dry run)", lambda: scoutframe.read_spherescout(**search, client=client, dry_run=True)
    )
    print(plan)

    _heading("Load it through an export (full data, 1 credit a contact)")
    frame = phases.run(
        "export + download + parse",
        lambda: scoutframe.read_spherescout(
            **search, client=client, method="export", progress=options.progress
        ),
    )
    provenance = frame.attrs["scoutframe"]
    from .tables.exportcsv import lists_joined

    shown = ["name", "city", "zipcode", "email", "phone", "categories", "rating"]
    print(lists_joined(frame.head(5)[shown]).to_string(max_colwidth=26))
    print(
        f"\n{len(frame):,} rows x {frame.shape[1]} columns, "
        f"{frame.memory_usage(deep=True).sum() / 2**20:,.1f} MiB in memory"
    )
    print("\ndtypes:")
    print(frame.dtypes.to_string())
    spent = provenance.get("credits_spent")
    print(
        f"\ncost: {spent:,} credits (task {provenance.get('task_id')}); "
        f"{client.profile().credits:,} credits left"
    )
    print(
        "provenance:",
        {key: provenance[key] for key in sorted(provenance) if key not in ("filters",)},
    )
