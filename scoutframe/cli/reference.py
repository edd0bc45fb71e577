"""``scoutframe countries | categories | locations``: the names and ids a search takes (free)."""

from __future__ import annotations

import argparse

from ._run import open_client, run
from ._show import add_json_flag, frame_rows, print_json, print_table

__all__ = ["categories_main", "countries_main", "locations_main"]

_LOCATION_COLUMNS = ("id", "name", "type", "country", "parent_id")


def countries_main(argv: list[str]) -> int:
    """Run ``scoutframe countries``: the countries with contacts.

    Parameters
    ----------
    argv
        The arguments after ``countries``.

    Returns
    -------
    int
        The exit status.
    """
    p = argparse.ArgumentParser(
        prog="scoutframe countries",
        description="List the countries with contacts: the codes "
        "`scoutframe search --countries` takes (names work too).",
    )
    add_json_flag(p)
    options = p.parse_args(argv)

    def body() -> int:
        with open_client() as client:
            rows = frame_rows(client.countries())
        if options.json:
            print_json(rows)
        else:
            print_table(rows, ("code", "name"), empty="this server lists no countries")
        return 0

    return run("countries", body)


def _limit(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


_limit.__name__ = "whole number >= 1"


def categories_main(argv: list[str]) -> int:
    """Run ``scoutframe categories [QUERY] [--limit N]``: business categories and their ids.

    Parameters
    ----------
    argv
        The arguments after ``categories``.

    Returns
    -------
    int
        The exit status.
    """
    p = argparse.ArgumentParser(
        prog="scoutframe categories",
        description="Find business categories by name (best matches "
        "first): the ids and names `scoutframe search --category` "
        "takes. Without QUERY, every category.",
    )
    p.add_argument(
        "query",
        nargs="?",
        default=None,
        metavar="QUERY",
        help="text to match (name or gcid), e.g. plumb",
    )
    p.add_argument(
        "--limit",
        type=_limit,
        default=None,
        metavar="N",
        help="at most N categories (default: 20 with QUERY, all without)",
    )
    add_json_flag(p)
    options = p.parse_args(argv)

    def body() -> int:
        limit = options.limit
        if limit is None and options.query is not None:
            limit = 20
        with open_client() as client:
            frame = client.categories(options.query, limit=limit)
        rows = frame_rows(frame)
        if options.json:
            print_json(rows)
        else:
            what = f"no category matches {options.query!r}" if options.query else "no categories"
            print_table(rows, ("id", "name", "gcid"), empty=what)
        return 0

    return run("categories", body)


def locations_main(argv: list[str]) -> int:
    """Run ``scoutframe locations QUERY [--country CC] [--level 1|2|3]``: places and their ids.

    Parameters
    ----------
    argv
        The arguments after ``locations``.

    Returns
    -------
    int
        The exit status.
    """
    p = argparse.ArgumentParser(
        prog="scoutframe locations",
        description="Find regions (level 1), counties or departments "
        "(level 2) and cities (level 3) by name: the ids "
        "`scoutframe search --level1/--level2/--level3` takes "
        "(names work too).",
    )
    p.add_argument("query", metavar="QUERY", help="the place name, e.g. Paris")
    p.add_argument(
        "--country",
        default=None,
        metavar="CC",
        help="search within this country (ISO code, e.g. FR)",
    )
    p.add_argument(
        "--level",
        type=int,
        choices=(1, 2, 3),
        default=None,
        help="only this level: 1 region/state, 2 county/department, 3 city",
    )
    add_json_flag(p)
    options = p.parse_args(argv)

    def body() -> int:
        with open_client() as client:
            frame = client.locations.search(options.query, country=options.country)
        if options.level is not None and "type" in frame.columns:
            frame = frame[frame["type"] == f"level{options.level}"]
        rows = frame_rows(frame)
        if options.json:
            print_json(rows)
        else:
            print_table(rows, _LOCATION_COLUMNS, empty=f"no location matches {options.query!r}")
        return 0

    return run("locations", body)
