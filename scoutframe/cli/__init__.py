"""The ``scoutframe`` command: the sandbox, the demo, searches, lookups, exports, keys, cache.

This module only dispatches: each command lives in its own module, imported when it runs, so
``scoutframe --help`` imports nothing of the client and ``scoutframe sandbox`` starts without
it. The reference, with examples, is ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.util import find_spec

from ..extras import SANDBOX_MODULES, missing_extra
from ._terms import in_cli_terms

__all__ = ["in_cli_terms", "main"]

#: Each command: its one-line help, and the module and function that run it.
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "sandbox": (
        "run a local emulator of the SphereScout API (no key, no internet needed)",
        "scoutframe.sandbox.cli",
        "main",
    ),
    "demo": (
        "start the sandbox and walk through the library (the README's main job)",
        "scoutframe.demo",
        "main",
    ),
    "search": (
        "load a search into a Parquet or CSV file, or a partitioned dataset",
        "scoutframe.cli.search",
        "main",
    ),
    "profile": (
        "the account: e-mail, plan, credits left",
        "scoutframe.cli.account",
        "profile_main",
    ),
    "countries": (
        "countries with contacts: codes for --countries",
        "scoutframe.cli.reference",
        "countries_main",
    ),
    "categories": (
        "business categories matching a text: ids for --category",
        "scoutframe.cli.reference",
        "categories_main",
    ),
    "locations": (
        "regions, departments and cities matching a name: ids for --level1/2/3",
        "scoutframe.cli.reference",
        "locations_main",
    ),
    "history": ("the account's exports and deltas", "scoutframe.cli.exports", "history_main"),
    "exports": (
        "exports started here: list them, resume one (no second charge)",
        "scoutframe.cli.exports",
        "exports_main",
    ),
    "keys": ("the account's API keys: list, create, revoke", "scoutframe.cli.account", "keys_main"),
    "cache": (
        "the Parquet cache: list, show, refresh, remove, prune, clear, verify",
        "scoutframe.cli.cache",
        "main",
    ),
}

#: Commands that run the sandbox, which a bare install lacks (the ``sandbox`` extra).
_NEEDS_SANDBOX = frozenset({"sandbox", "demo"})

_EPILOG = """\
commands:
{commands}

Run `scoutframe COMMAND --help` for a command's options. Credentials come from
SPHERESCOUT_API_KEY (or SPHERESCOUT_USERNAME and SPHERESCOUT_PASSWORD) and the origin from
SPHERESCOUT_BASE_URL, as `scoutframe sandbox` prints them. Exit status: 0 success, 1 an error
of scoutframe or the API, 2 a usage error, 130 interrupted (Ctrl-C)."""


def _version() -> str:
    from .._version import __version__

    return f"scoutframe {__version__}"


def main(argv: list[str] | None = None) -> int:
    """Run the ``scoutframe`` command line.

    Parameters
    ----------
    argv
        The arguments after the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status: 0 success, 1 a scoutframe error, 2 a usage error, 130 Ctrl-C.
        ``--help``, ``--version`` and argparse's usage errors raise ``SystemExit``.
    """
    commands = "\n".join(f"  {name:<11} {text}" for name, (text, _, _) in _COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="scoutframe",
        description="SphereScout business contacts as pandas DataFrames.",
        epilog=_EPILOG.format(commands=commands),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=list(_COMMANDS), metavar="command")
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.add_argument("--version", action="version", version=_version())
    options = parser.parse_args(sys.argv[1:] if argv is None else argv)
    _, module_name, function = _COMMANDS[options.command]
    if options.command in _NEEDS_SANDBOX:
        # Checked first: the demo starts the sandbox in a child process, whose traceback
        # would be all the user sees
        absent = [name for name in sorted(SANDBOX_MODULES) if find_spec(name) is None]
        if absent:
            error = missing_extra(f"scoutframe {options.command}", absent[0], "sandbox")
            print(f"scoutframe: {error}", file=sys.stderr)
            return 1
    module = importlib.import_module(module_name)
    status: int = getattr(module, function)(options.args)
    return status


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
