"""``scoutframe sandbox``: run a sandbox until Ctrl-C, or drive a running one's control plane.

``scoutframe sandbox [options]`` starts a `Sandbox` and prints the ``SPHERESCOUT_*`` variables
a client needs; ``scoutframe sandbox admin <action> [value]`` calls the ``/_sandbox/`` control
plane of a running one. `main` is the one entry point (``scoutframe sandbox`` and
``python -m scoutframe.sandbox`` both call it).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scoutframe.sandbox.server import Sandbox

if TYPE_CHECKING:
    import requests

__all__ = ["main"]

_HELP = """\
Run a local emulator of the SphereScout REST API on loopback, with synthetic data. It prints
the SPHERESCOUT_* variables a client needs (origin, the demo account's API key, username,
password) and the control plane's token, then serves until Ctrl-C.

What it emulates (the API contract, over real HTTP):
  - API keys as "Bearer <key>" or "Token <key>" (--flavor live: Token only), JWT login
    and refresh, profile, API-key list/create/revoke (key shown once, optional expiry)
  - search /api/companies with every filter, 10-contact preview or 50-row pages, masked
    e-mails; /api/public/companies (no credential, 10 a minute per address)
  - reference data: categories (?q= fuzzy), countries, location search and browsing,
    professions summary
  - CSV exports charged at start and refunded on failure, pending/processing/ready/failed,
    pre-signed expiring download URLs with Range on a second "storage" origin
  - export history, freshness and delta downloads
  - rate limits (X-RateLimit-*, 429 + Retry-After), 401 + WWW-Authenticate, JSON 404/405,
    DRF-style field errors, paths with and without a trailing slash
  - --flavor live: what third-party clients observe in production (contract section 9)
    instead of the vendor documentation
  - GET /openapi.json: an OpenAPI 3.1 document of the API as served

What it does not emulate: real data, billing plans, payments and top-ups, TLS, sign-up, e-mail
verification, password reset, webhooks, team accounts, the production edge's HTML 403 and
User-Agent filtering, plan-specific rate limits, formats other than CSV.

[DESIGN] (this project's decisions where the vendor says nothing; not promises about
production): search_id = HMAC of account and canonical filters; different filters AND,
values of one filter OR, location levels OR; unknown codes/ids are 400 field errors (live:
ignored, totalCount 0); an empty result has one empty page; masking j***@d*****.fr; every
export call charges (no deduplication); exports left running by a stopped server fail and
are refunded at start; delta entries even with 0 rows; expiry judged by the sandbox clock,
rate limits by the real clock; export files are deleted once their URL expires. The full
list: docs/sandbox.md in the scoutframe repository.

State (accounts, keys, credits, history, added contacts, the moved clock) lives in --data-dir
and survives a restart. The control plane under /_sandbox/ (header X-Sandbox-Admin-Token)
adds and re-collects contacts, moves the clock, sets faults and export pacing; from a shell:
`scoutframe sandbox admin info|add-contacts N|recollect N|advance-clock S|faults k=v,...`.
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="scoutframe sandbox",
        description=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    p.add_argument("--port", type=int, default=8000, help="API port (0: any free port)")
    p.add_argument("--contacts", type=int, default=200_000, help="size of the synthetic dataset")
    p.add_argument(
        "--credits",
        type=int,
        default=100_000,
        help="opening balance of the demo account (first start only)",
    )
    p.add_argument(
        "--rate-limit",
        type=float,
        default=20.0,
        help="requests/second per credential, burst twice that; 0 = off",
    )
    p.add_argument(
        "--flavor",
        choices=("docs", "live"),
        default="docs",
        help="docs: vendor documentation; live: observed production behaviour",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where data and state live (default: the user cache dir)",
    )
    p.add_argument(
        "--faults",
        default="",
        help="fault injection, e.g. p500=0.1,p429=0.05,latency=20ms,reset=0.1,"
        "truncate=0.5,export_fail=1,seed=3",
    )
    p.add_argument("--seed", type=int, default=0, help="dataset seed")
    p.add_argument("--access-token-lifetime", type=float, default=900.0, help=argparse.SUPPRESS)
    p.add_argument(
        "--refresh-token-lifetime", type=float, default=7 * 86400.0, help=argparse.SUPPRESS
    )
    return p


def _error_detail(response: requests.Response | None) -> str:
    if response is None:
        return "no answer"
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} {response.reason}"
    return f"{response.status_code} {body.get('detail', body) if isinstance(body, dict) else body}"


def _admin_main(argv: list[str]) -> int:
    """``scoutframe sandbox admin ...``: drive a running sandbox's control plane."""
    import json

    import requests

    from scoutframe.sandbox.control import AdminControl
    from scoutframe.sandbox.faults import parse_fault_changes

    p = argparse.ArgumentParser(
        prog="scoutframe sandbox admin",
        description="Drive a running sandbox's /_sandbox/ control plane. The origin and token "
        "come from SPHERESCOUT_BASE_URL and SCOUTFRAME_SANDBOX_ADMIN_TOKEN.",
    )
    p.add_argument(
        "action",
        choices=(
            "info",
            "add-contacts",
            "recollect",
            "advance-clock",
            "faults",
            "create-account",
            "ledger",
        ),
    )
    p.add_argument(
        "value",
        nargs="?",
        default=None,
        help="count, seconds, account id, credits, or name=value,... for faults",
    )
    options = p.parse_args(argv)
    url = os.environ.get("SPHERESCOUT_BASE_URL")
    token = os.environ.get("SCOUTFRAME_SANDBOX_ADMIN_TOKEN")
    if not url or not token:
        print(
            "scoutframe sandbox admin: set SPHERESCOUT_BASE_URL and "
            "SCOUTFRAME_SANDBOX_ADMIN_TOKEN (printed by `scoutframe sandbox`)",
            file=sys.stderr,
        )
        return 2
    admin = AdminControl(url, token)
    value = options.value
    try:
        if options.action == "info":
            result: Any = admin.info()
        elif options.action == "add-contacts":
            result = admin.add_contacts(int(value or 1))
        elif options.action == "recollect":
            result = admin.recollect(int(value or 1))
        elif options.action == "advance-clock":
            result = {"now": admin.advance_clock(float(value or 0))}
        elif options.action == "faults":
            changes = parse_fault_changes(value or "")
            result = admin.set_faults(**changes) if changes else admin.faults()
        elif options.action == "create-account":
            result = admin.create_account(int(value or 1_000))
        else:
            result = admin.ledger(int(value or 1))
    except ValueError as exc:
        print(f"scoutframe sandbox admin: {exc}", file=sys.stderr)
        return 2
    except requests.HTTPError as exc:
        # The control plane explains what was wrong in its JSON body; show that, not the URL.
        print(f"scoutframe sandbox admin: {_error_detail(exc.response)}", file=sys.stderr)
        return 1
    except requests.RequestException as exc:
        print(f"scoutframe sandbox admin: {exc}", file=sys.stderr)
        return 1
    finally:
        admin.close()
    print(json.dumps(result, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``scoutframe sandbox`` until Ctrl-C; returns the exit status.

    ``scoutframe sandbox admin <action> [value]`` drives a running sandbox's control plane.
    """
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["admin"]:
        return _admin_main(args[1:])
    options = _parser().parse_args(args)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        sandbox = Sandbox(
            options.contacts,
            flavor=options.flavor,
            data_dir=options.data_dir,
            credits=options.credits,
            rate_limit=options.rate_limit,
            faults=options.faults or None,
            seed=options.seed,
            host=options.host,
            port=options.port,
            access_token_lifetime=options.access_token_lifetime,
            refresh_token_lifetime=options.refresh_token_lifetime,
        )
    except ValueError as exc:
        print(f"scoutframe sandbox: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        sandbox.start()
    except OSError as exc:
        print(f"scoutframe sandbox: cannot listen: {exc}", file=sys.stderr)
        return 1
    try:
        printed = {**sandbox.env, "SCOUTFRAME_SANDBOX_ADMIN_TOKEN": sandbox.admin_token}
        for name, value in printed.items():
            print(f"{name}={value}")
        print(f"SCOUTFRAME_SANDBOX_STORAGE_URL={sandbox.storage_url}", flush=True)
        info = sandbox.admin.info()
        print(
            f"# {info['flavor']} flavour, {info['contacts']:,} contacts; demo account "
            f"{sandbox.username} has {info['demo_credits']:,} credits; storage at "
            f"{sandbox.storage_url}; Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    finally:
        sandbox.stop()
    return 0
