"""The ``scoutframe`` command: ``sandbox``, ``demo`` and ``search``.

Each subcommand lives where its work is done; this module only dispatches, so that
``scoutframe sandbox`` starts without importing the client and ``scoutframe --help`` is fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

_COMMANDS = {
    "sandbox": "run a local emulator of the SphereScout API (no key, no internet needed)",
    "demo": "start the sandbox and walk through the library (the README's main job)",
    "search": "load a search into a Parquet or CSV file",
}

_BOOLEAN_FILTERS = ("email", "phone_number", "website", "instagram", "facebook")


def main(argv: list[str] | None = None) -> int:
    """Run the ``scoutframe`` command line and return its exit status."""
    parser = argparse.ArgumentParser(
        prog="scoutframe",
        description="SphereScout business contacts as pandas DataFrames.",
        epilog="\n".join(f"  {name:<8} {text}" for name, text in _COMMANDS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=sorted(_COMMANDS), metavar="command")
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.add_argument("--version", action="version", version=_version())
    options = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if options.command == "sandbox":
        from scoutframe.sandbox.server import main as sandbox_main

        return sandbox_main(options.args)
    if options.command == "demo":
        from scoutframe.demo import main as demo_main

        return demo_main(options.args)
    return search_main(options.args)


def _version() -> str:
    from scoutframe._version import __version__

    return f"scoutframe {__version__}"


def _search_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scoutframe search",
        description=(
            "Load the contacts matching a search into a file. Credentials come from "
            "SPHERESCOUT_API_KEY (or SPHERESCOUT_USERNAME/SPHERESCOUT_PASSWORD) and the origin "
            "from SPHERESCOUT_BASE_URL, as printed by `scoutframe sandbox`."
        ),
    )
    parser.add_argument("-o", "--output", required=True, type=Path,
                        help="where to write: .parquet or .csv (chosen by the suffix)")
    parser.add_argument("--countries", action="append", default=[],
                        help="ISO country code; repeat or comma-separate (FR,BE)")
    parser.add_argument("--category", action="append", default=[],
                        help="category id or name; repeatable")
    for level in (1, 2, 3):
        parser.add_argument(f"--level{level}", dest=f"level{level}_locations", action="append",
                            default=[], help=f"level-{level} location id or name; repeatable")
    for name in _BOOLEAN_FILTERS:
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name,
                            action=argparse.BooleanOptionalAction, default=None,
                            help=f"only contacts with (--{name}) or without (--no-{name}) it")
    parser.add_argument("--main-activity-only", action="store_true", default=None)
    parser.add_argument("--method", choices=("auto", "pages", "export"), default="auto",
                        help="pages: free, emails masked; export: full data, 1 credit a row")
    parser.add_argument("--max-credits", type=_count, default=None,
                        help="the budget: spend at most this many credits (default: "
                        "SCOUTFRAME_MAX_CREDITS; without one, only --method export spends)")
    parser.add_argument("--all", dest="include_all", action="store_true",
                        help="allow a search without any filter (every contact)")
    parser.add_argument("--nrows", type=_count, default=None, help="stop after this many rows")
    parser.add_argument("--columns", default=None, help="comma-separated columns to keep")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan (rows, method, credits) and spend nothing")
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                        help="no progress bars (also: SCOUTFRAME_PROGRESS=0)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each request")
    return parser


def _count(text: str) -> int:
    """Parse a whole number >= 0 (argparse turns the ValueError into a usage error)."""
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


_count.__name__ = "whole number >= 0"  # what argparse names in "invalid ... value"


def _filters_from(options: argparse.Namespace) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    countries = [code for value in options.countries for code in value.split(",") if code]
    if countries:
        filters["countries"] = countries
    for key in ("category", "level1_locations", "level2_locations", "level3_locations"):
        values = [_id_or_name(value) for value in getattr(options, key)]
        if values:
            filters[key] = values
    for key in (*_BOOLEAN_FILTERS, "main_activity_only"):
        if getattr(options, key) is not None:
            filters[key] = getattr(options, key)
    return filters


def _id_or_name(value: str) -> int | str:
    return int(value) if value.strip().isdigit() else value


def search_main(argv: list[str]) -> int:
    """Run ``scoutframe search``; see ``scoutframe search --help``."""
    from scoutframe.errors import ArgumentError, ScoutError
    from scoutframe.read import read_spherescout

    options = _search_parser().parse_args(argv)
    if options.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    suffix = options.output.suffix.lower()
    if suffix not in (".parquet", ".csv") and not options.dry_run:
        print(f"scoutframe search: cannot write {options.output.name!r}: use a .parquet or "
              ".csv file name.", file=sys.stderr)
        return 2
    columns = options.columns.split(",") if options.columns else None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = read_spherescout(
                **_filters_from(options), method=options.method,
                max_credits=options.max_credits, nrows=options.nrows, columns=columns,
                progress=options.progress, dry_run=options.dry_run, all=options.include_all,
            )
    except ArgumentError as error:  # bad options, e.g. an unknown column: a usage error
        print(f"scoutframe search: {in_cli_terms(str(error))}", file=sys.stderr)
        return 2
    except ScoutError as error:
        print(f"scoutframe search: {in_cli_terms(str(error))}", file=sys.stderr)
        return 1
    # Warnings (masked emails, schema drift) are messages for the user, not code locations.
    for message in dict.fromkeys(str(item.message) for item in caught):
        print(f"scoutframe search: note: {message}", file=sys.stderr)
    if options.dry_run:
        print(result)
        return 0
    _write_atomically(result, options.output)
    meta = result.attrs.get("scoutframe", {})
    print(f"wrote {len(result):,} rows to {options.output} "
          f"(method {meta.get('method')}, credits spent {meta.get('credits_spent', 0)})")
    return 0


#: Python spellings in library messages, and what to type at the shell instead.
_CLI_TERMS = (
    (r"method='(pages|export|auto)'", r"--method \1"),
    (r"max_credits=(\d+|N)", r"--max-credits \1"),
    (r"\(or set a default budget.*?\)", ""),
    (r"Client\(max_credits=\.\.\.\) or SCOUTFRAME_MAX_CREDITS", "SCOUTFRAME_MAX_CREDITS"),
    (r"all=True", "--all"),
    (r"pass filters \(countries='FR', category='Plumber', \.\.\.\)",
     "pass filters (--countries FR --category Plumber ...)"),
    (r"\(a region or city, email=True, \.\.\.\)", "(--level1 ..., --level3 ..., --email, ...)"),
    (r"See client\.countries\(\) for the names", "See `scoutframe countries` for the names"),
    (r"client\.categories\('name'\)", "`scoutframe categories NAME`"),
)


def in_cli_terms(message: str) -> str:
    """Say a library message in the command line's words (flags, not keyword arguments)."""
    import re

    for pattern, replacement in _CLI_TERMS:
        message = re.sub(pattern, replacement, message)
    return message


def _write_atomically(frame: pd.DataFrame, path: Path) -> None:
    """Write beside the target, then rename: an interrupted run leaves no half file."""
    from scoutframe.files import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, private=True) as temp:
        if path.suffix.lower() == ".parquet":
            _write_parquet(frame, temp)
        else:
            lists_joined(frame).to_csv(temp, index=False)


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write through Arrow, with the provenance as JSON in the schema metadata.

    pandas' own metadata is left out: pandas 3 cannot read its ``list<...>[pyarrow]`` dtype
    names back, so ``pd.read_parquet`` would fail on the file.
    """
    import pyarrow.parquet as pq

    from scoutframe import frames
    from scoutframe.models import PROVENANCE_ATTR, Provenance

    table = frames.table_from_pandas(frame)
    attrs = frame.attrs.get(PROVENANCE_ATTR)
    if attrs:
        table = frames.with_provenance(table, Provenance.from_dict(attrs))
    pq.write_table(table, path)


def lists_joined(frame: pd.DataFrame) -> pd.DataFrame:
    """Join list columns with "; ", as SphereScout's own CSV exports do."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    from scoutframe.schema import LIST_SEPARATOR

    joined = frame.copy(deep=False)
    for name, dtype in frame.dtypes.items():
        if isinstance(dtype, pd.ArrowDtype) and pa.types.is_list(dtype.pyarrow_dtype):
            values = pa.array(frame[name])
            joined[name] = pd.Series(pc.binary_join(values, LIST_SEPARATOR), index=frame.index,
                                     dtype=pd.ArrowDtype(pa.string()))  # fmt: skip
        elif pd.api.types.is_object_dtype(dtype):
            joined[name] = frame[name].map(_join_if_sequence)
    return joined


def _join_if_sequence(value: object) -> object:
    if isinstance(value, list | tuple) or hasattr(value, "tolist"):
        from scoutframe.schema import LIST_SEPARATOR

        return LIST_SEPARATOR.join(map(str, list(value)))  # type: ignore[call-overload]
    return value


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
