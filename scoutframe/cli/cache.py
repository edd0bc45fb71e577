"""``scoutframe cache list | show | refresh | remove | prune | clear | verify``.

The management side of the Parquet cache (:class:`scoutframe.cache.Cache`); reads fill it
through ``scoutframe search --cache``. Keys may be shortened to any unique prefix (the
tables show the first 12 characters).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from typing import TYPE_CHECKING, Any

from ._run import open_client, run, say
from ._show import add_json_flag, frame_rows, human_bytes, print_fields, print_json, print_table
from ._terms import filters_as_flags, in_cli_terms

if TYPE_CHECKING:
    from ..cache import Cache

__all__ = ["main", "parser"]

_SHORT_KEY = 12
_PREVIEW_COLUMNS = ("place_id", "name", "city", "country", "email", "phone")


def _age(text: str) -> str:
    if not re.fullmatch(r"\s*\d+(\.\d+)?\s*[smhdw]?\s*", text.lower()):
        raise ValueError(text)
    return text.strip()


_age.__name__ = "age (e.g. 90s, 30m, 12h, 7d, 2w)"


def _size(text: str) -> int:
    """Parse a size in bytes: ``500000``, ``500k``, ``20M``, ``1G`` (powers of 1000)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)b?\s*", text.lower())
    if match is None:
        raise ValueError(text)
    factor = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}[match.group(2)]
    return int(float(match.group(1)) * factor)


_size.__name__ = "size (bytes, or e.g. 500k, 20M, 1G)"


def _count(text: str) -> int:
    value = int(text.replace("_", "").replace(",", ""))
    if value < 0:
        raise ValueError(text)
    return value


_count.__name__ = "whole number >= 0"


def parser() -> argparse.ArgumentParser:
    """Return the parser of ``scoutframe cache``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--cache-dir",
        default=None,
        metavar="DIR",
        help="the cache directory or URI (s3://bucket/prefix; credentials from the AWS_* "
        "environment or a profile) (default: SCOUTFRAME_CACHE_DIR, else the user cache "
        "directory)",
    )
    p = argparse.ArgumentParser(
        prog="scoutframe cache",
        description="Manage the Parquet cache that `scoutframe search "
        "--cache` fills: one entry per search (and method).",
    )
    sub = p.add_subparsers(dest="action", required=True, metavar="action")

    def action(name: str, text: str, *, as_json: bool = True) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, parents=[common], help=text, description=text)
        if as_json:
            add_json_flag(sp)
        return sp

    action("list", "list the entries: key, method, rows, size, last refresh, filters")
    show = action("show", "show one entry: its filters, history, files, first rows")
    show.add_argument("key", metavar="KEY", help="the entry's key, or a unique prefix of it")
    show.add_argument(
        "--head",
        type=_count,
        default=5,
        metavar="N",
        help="show the first N rows (default 5; 0: none)",
    )
    refresh = action(
        "refresh",
        "bring one entry up to date now (export entries: pay only for "
        "the contacts new or updated since, with --max-credits)",
    )
    refresh.add_argument("key", metavar="KEY", help="the entry's key, or a unique prefix of it")
    refresh.add_argument(
        "--max-credits",
        type=_count,
        default=None,
        metavar="N",
        help="the budget of the delta (default: SCOUTFRAME_MAX_CREDITS; "
        "without one, an export entry with new contacts is left as it is)",
    )
    refresh.add_argument(
        "--dry-run", action="store_true", help="say what a refresh would cost, and do nothing"
    )
    refresh.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        default=None,
        help="no progress bars (also: SCOUTFRAME_PROGRESS=0)",
    )
    remove = action("remove", "delete one entry")
    remove.add_argument("key", metavar="KEY", help="the entry's key, or a unique prefix of it")
    prune = action("prune", "delete old entries (and damaged ones, always)")
    prune.add_argument(
        "--older-than",
        type=_age,
        default=None,
        metavar="AGE",
        help="delete entries not refreshed for this long (30d, 12h, 2w)",
    )
    prune.add_argument(
        "--max-bytes",
        type=_size,
        default=None,
        metavar="SIZE",
        help="then delete the least recently refreshed entries until the cache "
        "holds at most SIZE (bytes, or 500M, 2G)",
    )
    clear = action("clear", "delete every entry (asks first)", as_json=False)
    clear.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    action("verify", "read every entry whole and check it (exit status 1 if one is damaged)")
    return p


def main(argv: list[str]) -> int:
    """Run ``scoutframe cache ACTION``; see ``scoutframe cache --help``.

    Parameters
    ----------
    argv
        The arguments after ``cache``.

    Returns
    -------
    int
        The exit status.
    """
    options = parser().parse_args(argv)
    actions = {
        "list": _list,
        "show": _show,
        "refresh": _refresh,
        "remove": _remove,
        "prune": _prune,
        "clear": _clear,
        "verify": _verify,
    }
    return run(f"cache {options.action}", lambda: actions[options.action](options))


def _cache(options: argparse.Namespace) -> Cache:
    from ..cache import Cache

    return Cache(options.cache_dir)


def _entries(cache: Cache) -> list[dict[str, Any]]:
    rows = frame_rows(cache.entries())
    for row in rows:
        text = row.get("filters")
        row["filters"] = json.loads(text) if isinstance(text, str) and text else None
    return rows


def _find(cache: Cache, key: str) -> dict[str, Any]:
    """Return the one entry whose key starts with ``key`` (``CacheMissError`` otherwise)."""
    from ..errors import CacheMissError

    matches = [row for row in _entries(cache) if str(row["key"]).startswith(key)]
    if len(matches) != 1:
        what = "no entry" if not matches else f"{len(matches)} entries"
        raise CacheMissError(
            f"{what} of the cache at {cache.location} has a key starting with "
            f"{key!r}; `scoutframe cache list` shows the keys"
        )
    return matches[0]


def _list(options: argparse.Namespace) -> int:
    cache = _cache(options)
    rows = _entries(cache)
    if options.json:
        print_json(rows)
        return 0
    shown = [
        {
            **row,
            "key": str(row["key"])[:_SHORT_KEY],
            "size": human_bytes(row.get("bytes")),
            "filters": filters_as_flags(row.get("filters")),
        }
        for row in rows
    ]
    print_table(
        shown,
        ("key", "method", "rows", "size", "refreshed", "filters"),
        empty=f"the cache at {cache.location} is empty",
    )
    return 0


def _show(options: argparse.Namespace) -> int:
    cache = _cache(options)
    row = _find(cache, options.key)
    head = _head(cache, str(row["key"]), options.head) if row["method"] != "damaged" else []
    if options.json:
        print_json({**row, "head": head})
        return 0
    flags = filters_as_flags(row.get("filters"))
    print_fields(
        {
            name: value
            for name, value in {
                "key": row["key"],
                "method": row["method"],
                "filters": flags,
                "rows": row.get("rows"),
                "size": human_bytes(row.get("bytes")),
                "created": row.get("created"),
                "refreshed": row.get("refreshed"),
                "last history id": row.get("last_history_id"),
                "origin": row.get("origin"),
                "location": row["location"],
                "read it with": (
                    f"scoutframe search -o FILE.parquet {flags} --method {row['method']} --cache"
                    if row["method"] != "damaged"
                    else None
                ),
            }.items()
            if value is not None
        }
    )
    if head:
        print()
        print_table(head, [c for c in _PREVIEW_COLUMNS if c in head[0]], empty="")
    return 0


def _head(cache: Cache, key: str, rows: int) -> list[dict[str, Any]]:
    """Return the first ``rows`` rows of an entry's table, read without the rest."""
    if rows == 0:
        return []
    from ._show import jsonable

    return [jsonable(r) for r in cache.head(key, rows, list(_PREVIEW_COLUMNS)).to_pylist()]


def _refresh(options: argparse.Namespace) -> int:
    from ..api.filters import Filters
    from ..cache.keys import entry_key
    from ..errors import CacheError, ConsentError
    from ..read import read_spherescout
    from ..tables.schema import MaskedEmailWarning

    cache = _cache(options)
    row = _find(cache, options.key)
    key, method = str(row["key"]), str(row["method"])
    if method not in ("pages", "export"):
        raise CacheError(
            f"the cache entry {key[:_SHORT_KEY]} is damaged; remove it with "
            f"`scoutframe cache remove {key[:_SHORT_KEY]}`"
        )
    filters = row["filters"] or {}
    with open_client() as client:
        if client.base_url != row["origin"]:
            raise CacheError(
                f"the cache entry {key[:_SHORT_KEY]} holds data of {row['origin']}, and "
                f"SPHERESCOUT_BASE_URL is {client.base_url}; set it (and the credential) to "
                "that origin's to refresh the entry"
            )
        canonical = Filters.from_any(filters).cache_key
        if entry_key(client.base_url, client.account_id(), canonical, method) != key:
            raise CacheError(
                f"the cache entry {key[:_SHORT_KEY]} belongs to another account than the "
                "configured credential's (SPHERESCOUT_API_KEY, SPHERESCOUT_USERNAME); nothing "
                "was read"
            )
        with warnings.catch_warnings():  # no rows are returned: the masked-email note is moot
            warnings.simplefilter("ignore", MaskedEmailWarning)
            try:
                # "auto" for an export entry: its delta is paid only with a budget (a refusal
                # shows the cost); "export" would be the consent to pay whatever it costs.
                # One column, no row: the entry is refreshed whole, nothing is loaded.
                result: Any = read_spherescout(
                    filters,
                    client=client,
                    method="pages" if method == "pages" else "auto",
                    cache="refresh",
                    cache_dir=cache.location,
                    max_credits=options.max_credits,
                    nrows=None if options.dry_run else 0,
                    columns=["place_id"],
                    progress=options.progress,
                    dry_run=options.dry_run,
                    all=True,
                )
            except ConsentError as exc:
                raise ConsentError(_refresh_consent(str(exc)), plan=exc.plan) from None
    if options.dry_run:
        print(in_cli_terms(str(result)))
        return 0
    meta = result.attrs.get("scoutframe", {})
    after = _find(cache, key)
    what = str(meta.get("reason", "")).rsplit("; ", 1)[-1]
    what = re.sub(r"^the cache entry \w+ ", "", what) if "cache entry" in what else "refreshed"
    fields = {
        "key": key,
        "method": method,
        "rows": after.get("rows"),
        "refreshed": after.get("refreshed"),
        "credits_spent": meta.get("credits_spent", 0),
        "what": what,
    }
    if options.json:
        print_json(fields)
    else:
        print(
            f"cache entry {key[:_SHORT_KEY]} {what}: {after.get('rows'):,} rows, credits "
            f"spent {fields['credits_spent']:,}"
        )
    return 0


def _refresh_consent(message: str) -> str:
    """Say the way on in ``cache refresh``'s own words (it has no --method, no --max-age)."""
    message = in_cli_terms(message)
    return re.sub(
        r" \(or --method export\) to pay for it, or read the entry as it is with "
        r"--cache and a larger --max-age$",
        " to pay for it",
        message,
    )


def _remove(options: argparse.Namespace) -> int:
    cache = _cache(options)
    key = str(_find(cache, options.key)["key"])
    freed = cache.remove(key)
    if options.json:
        print_json({"removed": [key], "bytes_freed": freed})
    else:
        print(f"removed cache entry {key[:_SHORT_KEY]} ({human_bytes(freed)} freed)")
    return 0


def _prune(options: argparse.Namespace) -> int:
    cache = _cache(options)
    removed = cache.prune(older_than=options.older_than, max_bytes=options.max_bytes)
    if options.json:
        print_json({"removed": removed})
    elif removed:
        keys = ", ".join(key[:_SHORT_KEY] for key in removed)
        print(f"removed {len(removed)} cache entr{'y' if len(removed) == 1 else 'ies'}: {keys}")
    else:
        print("nothing to remove")
    return 0


def _clear(options: argparse.Namespace) -> int:
    cache = _cache(options)
    rows = _entries(cache)
    if not rows:
        print(f"the cache at {cache.location} is empty")
        return 0
    if not options.yes:
        size = human_bytes(sum(int(row.get("bytes") or 0) for row in rows))
        what = "the 1 entry" if len(rows) == 1 else f"all {len(rows)} entries"
        print(
            f"Delete {what} ({size}) of the cache at {cache.location}? [y/N] ",
            end="",
            file=sys.stderr,
            flush=True,
        )
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            say("cache clear", "not confirmed: nothing was removed (--yes skips the question)")
            return 1
    removed = cache.clear()
    print(f"removed {removed} cache entr{'y' if removed == 1 else 'ies'} from {cache.location}")
    return 0


def _verify(options: argparse.Namespace) -> int:
    cache = _cache(options)
    rows = frame_rows(cache.verify())
    bad = [row for row in rows if not row.get("ok")]
    if options.json:
        print_json(rows)
    else:
        shown = [{**row, "key": str(row["key"])[:_SHORT_KEY]} for row in rows]
        print_table(
            shown, ("key", "ok", "problem"), empty=f"the cache at {cache.location} is empty"
        )
    if bad:
        say(
            "cache verify",
            f"{len(bad)} of {len(rows)} entries are damaged; `scoutframe cache "
            "prune` removes damaged entries",
        )
        return 1
    return 0
