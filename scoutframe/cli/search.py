"""``scoutframe search``: a search into a Parquet or CSV file, or a partitioned dataset.

Everything that can be refused is refused before the first request (output path, suffix,
partition columns), so a usage error never costs a credit.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..api.filters import BOOLEAN_FIELDS, CONTACT_METHODS
from ._files import check_directory_target, check_file_target, umask_mode, write_frame
from ._run import UsageError, open_client, run, verbose_logging
from ._terms import in_cli_terms

if TYPE_CHECKING:
    import pandas as pd

    from ..api.client import Client

__all__ = ["main", "parser"]

#: Rows per chunk of a partitioned write (``--chunksize``): bounds the memory it needs.
DEFAULT_CHUNKSIZE = 100_000

_DESCRIPTION = """\
Load the contacts matching a search into a file: Parquet or CSV (the API's export format)
by the suffix of -o, or a hive-partitioned Parquet dataset with --partition-by.

Credits: a read by pages is free (emails masked); an export costs 1 credit a matching
contact and runs only with --method export or a budget (--max-credits N, or
SCOUTFRAME_MAX_CREDITS). Without either, --method auto reads by pages when it would, and
otherwise stops before spending and shows the plan. --dry-run shows the plan and spends
nothing. With --cache the result is kept in the Parquet cache and brought up to date later
by paying only for what changed.

Credentials come from SPHERESCOUT_API_KEY (or SPHERESCOUT_USERNAME/SPHERESCOUT_PASSWORD) and
the origin from SPHERESCOUT_BASE_URL, as printed by `scoutframe sandbox`."""

_EPILOG = """\
examples:
  scoutframe search --countries FR --category Plumber --dry-run
  scoutframe search -o plumbers.csv --countries FR --category Plumber --method pages
  scoutframe search -o plumbers.parquet --countries FR,BE --category Plumber --max-credits 500
  scoutframe search -o plumbers.parquet --countries FR --category Plumber --cache --max-age 7d
  scoutframe search -o contacts/ --partition-by country --countries FR,BE --method export"""


def _count(text: str) -> int:
    """Parse a whole number >= 0 (argparse turns the ValueError into a usage error)."""
    value = int(text.replace("_", "").replace(",", ""))
    if value < 0:
        raise ValueError(text)
    return value


_count.__name__ = "whole number >= 0"  # what argparse names in "invalid ... value"


def _positive(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise ValueError(text)
    return value


_positive.__name__ = "whole number >= 1"


def _age(text: str) -> str:
    """Check an age such as ``90s``, ``30m``, ``12h``, ``7d``, ``2w`` (or seconds)."""
    if not re.fullmatch(r"\s*\d+(\.\d+)?\s*[smhdw]?\s*", text.lower()):
        raise ValueError(text)
    return text.strip()


_age.__name__ = "age (e.g. 90s, 30m, 12h, 7d, 2w)"


def parser() -> argparse.ArgumentParser:
    """Return the parser of ``scoutframe search``."""
    p = argparse.ArgumentParser(
        prog="scoutframe search",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="where to write: FILE.parquet or FILE.csv (by the suffix), or DIR/ with "
        "--partition-by; its directory must exist (required unless --dry-run)",
    )
    p.add_argument(
        "--keep-formulas",
        dest="escape_formulas",
        action="store_false",
        help="in a CSV file, write text cells starting with = + - @ as they are; by default "
        "they get an apostrophe in front so that a spreadsheet does not run them "
        "(phone numbers such as +33 1 23 45 67 89 are left as they are)",
    )
    filters = p.add_argument_group("filters (different filters AND, values of one filter OR)")
    filters.add_argument(
        "--countries",
        action="append",
        default=[],
        metavar="CODES",
        help="ISO country codes or names; repeat or comma-separate (FR,BE); "
        "see `scoutframe countries`",
    )
    filters.add_argument(
        "--category",
        action="append",
        default=[],
        metavar="ID_OR_NAME",
        help="category id or name; repeatable; see `scoutframe categories`",
    )
    for level, what in ((1, "region/state"), (2, "county/department"), (3, "city")):
        filters.add_argument(
            f"--level{level}",
            dest=f"level{level}_locations",
            action="append",
            default=[],
            metavar="ID_OR_NAME",
            help=f"{what} (level-{level} location) id or name; repeatable; "
            "see `scoutframe locations`",
        )
    for name in CONTACT_METHODS:  # True is --NAME, False is --no-NAME
        flag, what = name.replace("_", "-"), name.replace("_", " ")
        article = "an" if what[0] in "aeiou" else "a"
        filters.add_argument(
            f"--{flag}",
            dest=name,
            action=argparse.BooleanOptionalAction,
            default=None,
            help=f"only contacts with {article} {what} (--{flag}) or without one (--no-{flag})",
        )
    filters.add_argument(
        "--main-activity-only",
        action="store_true",
        default=None,
        help="match --category against each business's main category only",
    )
    filters.add_argument(
        "--all",
        dest="include_all",
        action="store_true",
        help="allow a search without any filter (every contact)",
    )
    reading = p.add_argument_group("reading and spending")
    reading.add_argument(
        "--method",
        choices=("auto", "pages", "export"),
        default="auto",
        help="pages: free, emails masked; export: full data, 1 credit a "
        "matching contact; auto (default): pages when small, else export",
    )
    reading.add_argument(
        "--max-credits",
        type=_count,
        default=None,
        metavar="N",
        help="the budget: spend at most N credits (default: "
        "SCOUTFRAME_MAX_CREDITS; without one, only --method export spends)",
    )
    reading.add_argument(
        "--nrows",
        type=_count,
        default=None,
        metavar="N",
        help="keep at most N rows (an export still costs every matching contact)",
    )
    reading.add_argument(
        "--columns",
        default=None,
        metavar="A,B,...",
        help="comma-separated columns to keep, in this order",
    )
    reading.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (rows, method, credits) and spend nothing",
    )
    cache = p.add_argument_group("cache (see `scoutframe cache`)")
    mode = cache.add_mutually_exclusive_group()
    mode.add_argument(
        "--cache",
        dest="cache",
        action="store_const",
        const=True,
        default=False,
        help="serve from the cache when there; refresh it when older than "
        "--max-age (pages: read again, free; export: only what changed)",
    )
    mode.add_argument(
        "--refresh",
        dest="cache",
        action="store_const",
        const="refresh",
        help="bring the cache entry up to date now (and store it)",
    )
    mode.add_argument(
        "--cache-only",
        dest="cache",
        action="store_const",
        const="only",
        help="serve from the cache and never touch the network",
    )
    cache.add_argument(
        "--max-age",
        type=_age,
        default=None,
        metavar="AGE",
        help="with --cache: refresh an entry older than this (90s, 30m, 12h, "
        "7d, 2w); default: any age is fine",
    )
    cache.add_argument(
        "--cache-dir",
        default=None,
        metavar="DIR",
        help="the cache directory or URI (s3://bucket/prefix; credentials from the AWS_* "
        "environment or a profile) (default: SCOUTFRAME_CACHE_DIR, else the user cache "
        "directory)",
    )
    cache.add_argument(
        "--cache-format",
        choices=("parquet", "delta"),
        default=None,
        help="the table format of a new cache entry: a Parquet file, or a Delta Lake table "
        "(one version per refresh) (default: SCOUTFRAME_CACHE_FORMAT, else parquet)",
    )
    dataset = p.add_argument_group("partitioned dataset")
    dataset.add_argument(
        "--partition-by",
        action="append",
        default=[],
        metavar="COLUMN",
        help="write -o DIR/ as a hive-partitioned Parquet dataset "
        "(DIR/country=FR/part-0.parquet ...); repeat or comma-separate for "
        "nested partitions",
    )
    dataset.add_argument(
        "--chunksize",
        type=_positive,
        default=None,
        metavar="N",
        help=f"with --partition-by: rows read and written at a time "
        f"(default {DEFAULT_CHUNKSIZE:,}; bounds the memory used)",
    )
    p.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        default=None,
        help="no progress bars (also: SCOUTFRAME_PROGRESS=0)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log each request")
    return p


def _filters_from(options: argparse.Namespace) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    countries = [
        code.strip() for value in options.countries for code in value.split(",") if code.strip()
    ]
    if countries:
        filters["countries"] = countries
    for key in ("category", "level1_locations", "level2_locations", "level3_locations"):
        values = [_id_or_name(value) for value in getattr(options, key)]
        if values:
            filters[key] = values
    for key in BOOLEAN_FIELDS:
        if getattr(options, key) is not None:
            filters[key] = getattr(options, key)
    return filters


def _id_or_name(value: str) -> int | str:
    return int(value) if value.strip().isdigit() else value


def _split(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _check_partitions(partition_by: list[str], columns: list[str] | None) -> None:
    """Refuse partition columns the dataset writer would refuse, before anything is read."""
    import pyarrow as pa

    from ..tables.schema import CONTACT_SCHEMA

    for name in partition_by:
        if name not in CONTACT_SCHEMA.names:
            raise UsageError(
                f"--partition-by {name}: no such column; the columns: "
                f"{', '.join(CONTACT_SCHEMA.names)}"
            )
        kind = CONTACT_SCHEMA.field(name).type
        if not (
            pa.types.is_string(kind)
            or pa.types.is_integer(kind)
            or pa.types.is_boolean(kind)
            or pa.types.is_date(kind)
        ):
            raise UsageError(
                f"--partition-by {name}: a {kind} column cannot name directories; "
                "partition by a text or whole-number column such as country, "
                "level1_location or city"
            )
        if columns is not None and name not in columns:
            raise UsageError(f"--partition-by {name}: the column is not in --columns")


def _check_options(p: argparse.ArgumentParser, options: argparse.Namespace) -> list[str]:
    """Check the options that need no network; return the partition columns."""
    partition_by = _split(options.partition_by)
    if options.output is None and not options.dry_run:
        p.error("the following arguments are required: -o/--output (or use --dry-run)")
    if options.chunksize is not None and not partition_by:
        p.error("--chunksize needs --partition-by (other outputs are written whole)")
    columns = _split([options.columns]) if options.columns else None
    if partition_by:
        _check_partitions(partition_by, columns)
    if options.output is not None and not options.dry_run:
        if partition_by:
            check_directory_target(options.output)
        else:
            check_file_target(options.output)
    return partition_by


def main(argv: list[str]) -> int:
    """Run ``scoutframe search``; see ``scoutframe search --help``.

    Parameters
    ----------
    argv
        The arguments after ``search``.

    Returns
    -------
    int
        The exit status.
    """
    p = parser()
    options = p.parse_args(argv)
    with verbose_logging(options.verbose):
        return run("search", lambda: _search(p, options))


def _search(p: argparse.ArgumentParser, options: argparse.Namespace) -> int:
    from ..errors import FilterError
    from ..read import read_spherescout

    partition_by = _check_options(p, options)
    columns = _split([options.columns]) if options.columns else None
    cache_options: dict[str, Any] = {"cache": options.cache}
    if options.max_age is not None:
        cache_options["max_age"] = options.max_age
    if options.cache_dir is not None:
        cache_options["cache_dir"] = options.cache_dir
    if options.cache_format is not None:
        cache_options["cache_format"] = options.cache_format
    chunksize = (options.chunksize or DEFAULT_CHUNKSIZE) if partition_by else None
    with open_client() as client:
        try:
            result: Any = read_spherescout(
                _filters_from(options),
                client=client,
                method=options.method,
                max_credits=options.max_credits,
                nrows=options.nrows,
                columns=columns,
                progress=options.progress,
                dry_run=options.dry_run,
                all=options.include_all,
                chunksize=None if options.dry_run else chunksize,
                **cache_options,
            )
        except FilterError as exc:
            raise FilterError(_with_all_countries(str(exc), client)) from None
        if options.dry_run:
            print(in_cli_terms(str(result)))
            return 0
        if partition_by:
            return _write_dataset(result, options.output, partition_by, options.progress)
        write_frame(result, options.output, escape_formulas=options.escape_formulas)
        _report(len(result), str(options.output), result.attrs.get("scoutframe", {}))
    return 0


def _write_dataset(
    chunks: Iterator[pd.DataFrame], target: Path, partition_by: list[str], progress: bool | None
) -> int:
    from ..tables.datasets import write_dataset

    seen: dict[str, Any] = {"rows": 0, "meta": {}}

    def counted() -> Iterator[pd.DataFrame]:
        for chunk in chunks:
            seen["rows"] += len(chunk)
            seen["meta"] = chunk.attrs.get("scoutframe", {})
            yield chunk

    try:
        write_dataset(counted(), target, partition_by=tuple(partition_by), progress=progress)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    # The dataset's root as any new directory of the user (it is built as a private temporary
    # directory, then renamed into place).
    os.chmod(target, umask_mode(directory=True))
    _report(seen["rows"], f"{target}/ partitioned by {', '.join(partition_by)}", seen["meta"])
    return 0


def _report(rows: int, where: str, meta: dict[str, Any]) -> None:
    source = ""
    if meta.get("cache_entry"):
        source = f", cache entry {str(meta['cache_entry'])[:12]}"
    print(
        f"wrote {rows:,} rows to {where} (method {meta.get('method')}{source}, "
        f"credits spent {meta.get('credits_spent', 0):,})"
    )


def _with_all_countries(message: str, client: Client) -> str:
    """Give the unknown-country error the full list of countries instead of its first 25."""
    marker = "this server has contacts in: "
    if marker not in message or ", ...." not in message:
        return message
    from ..errors import ScoutError

    try:
        codes = sorted(str(code) for code in client.countries()["code"])  # cached: no request
    except (ScoutError, KeyError):  # the message without the full list is still right
        return message
    head, _, tail = message.partition(marker)
    _, _, rest = tail.partition(", ....")
    rest = rest.replace(
        "See client.countries() for the names", "`scoutframe countries` lists their names"
    )
    return f"{head}{marker}{', '.join(codes)}.{rest}"
