"""Library messages in the command line's words: flags and commands, not keyword arguments.

The library speaks Python (``method='pages'``, ``client.countries()``,
``df.attrs['scoutframe']``); a shell user types ``--method pages`` and ``scoutframe countries``.
:func:`in_cli_terms` rewrites every Python spelling a command-line user can meet: consent and
budget errors, insufficient credits, unknown filters, the masked-email note, cache misses, the
missing-credential and not-the-API errors, the notes of an interrupted export. This module
imports nothing heavy: ``scoutframe --help`` must stay fast.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping
from typing import Any

from ..api.filters import BOOLEAN_FIELDS

__all__ = ["filters_as_flags", "in_cli_terms", "notes_in_cli_terms"]

#: Filter fields and their flags, in the order ``scoutframe search --help`` lists them.
_FLAG_OF = {
    "countries": "--countries",
    "category": "--category",
    "level1_locations": "--level1",
    "level2_locations": "--level2",
    "level3_locations": "--level3",
}

# A keyword starts a word that is not part of a path or an identifier, and ends one.
_W = r"(?<![\w/\\.?&=-])"
_E = r"(?![\w/\\-]|\.\w)"

#: Python spellings in library messages, and what to type at the shell instead, in order.
#: Whole phrases come first, single keyword arguments last.
_CLI_TERMS: tuple[tuple[str, str], ...] = (
    # -- the masked-email note: the frame's attrs mean nothing in a shell
    (r"; df\.attrs\['scoutframe'\]\['emails_masked'\] is True\.", "."),
    (r"df\.attrs\[(['\"])scoutframe\1\](\[(['\"])\w+\3\])?", "the provenance"),
    # -- consent and budgets
    (r"\(or set a default budget[^)]*\)", ""),
    (r"Client\(max_credits=\.\.\.\) or SCOUTFRAME_MAX_CREDITS", "SCOUTFRAME_MAX_CREDITS"),
    (r"\(a region or city, email=True, \.\.\.\)", "(--level1 ..., --level3 ..., --email, ...)"),
    (r"check freshness\(\) until", "try again when"),
    # -- filters
    (
        r"(?i)(pass) filters \(countries='FR', category='Plumber', \.\.\.\)",
        r"\1 filters (--countries FR --category Plumber ...)",
    ),
    (
        r", \.\.\.\. See client\.countries\(\) for the names",
        ", and more: `scoutframe countries` lists them all, with their names",
    ),
    (
        r"See client\.countries\(\) for the names",
        "`scoutframe countries` lists them, with their names",
    ),
    (r"client\.categories\((['\"])name\1\)", "`scoutframe categories NAME`"),
    (r"client\.locations\.search\((['\"])name\1\)", "`scoutframe locations NAME`"),
    # -- credentials and the origin
    (r"\(SPHERESCOUT_API_KEY or Client\(api_key=\.\.\.\)\)", "(SPHERESCOUT_API_KEY)"),
    (r"pass Client\(api_key=\.\.\.\), ", ""),
    (
        r"Log in again with Client\(username=\.\.\., password=\.\.\.\)",
        "Log in again (SPHERESCOUT_USERNAME and SPHERESCOUT_PASSWORD)",
    ),
    (r"Pass password=\.\.\., set SPHERESCOUT_PASSWORD", "Set SPHERESCOUT_PASSWORD"),
    (r"pass username= as well \(or set (\w+)\)", r"set \1 as well"),
    # (the library's redaction turns "password= (or" into "password= ***": both are met)
    (
        r"pass the credential apart: Client\(api_key=\.\.\.\) or Client\(username=\.\.\., "
        r"password=\.\.\.\), or set ",
        "set ",
    ),
    (
        r"pass credentials as api_key=, or username= and password= (?:\(or|\*\*\*) "
        r"SPHERESCOUT_API_KEY, SPHERESCOUT_USERNAME/SPHERESCOUT_PASSWORD\)",
        "pass credentials as SPHERESCOUT_API_KEY, or SPHERESCOUT_USERNAME and SPHERESCOUT_PASSWORD",
    ),
    (
        r"Use https, or pass allow_http=True if you really mean it",
        "Use an https:// SPHERESCOUT_BASE_URL (plain http is allowed to loopback addresses only)",
    ),
    (r"base_url \(SPHERESCOUT_BASE_URL\)", "SPHERESCOUT_BASE_URL"),
    (_W + r"base_url" + _E, "SPHERESCOUT_BASE_URL"),
    (r"; try again, or raise it: Client\(timeout=\([^)]*\)\)", "; try again later"),
    # -- exports: what to run again, how to resume
    (
        r"client\.export_job\((['\"])([^'\"]+)\1\)(\.download\(path\))?",
        r"`scoutframe exports resume \2 -o FILE.csv`",
    ),
    (r"client\.exports\.start\(\.\.\.\)", "`scoutframe search ... --method export`"),
    (r"client\.profile\(\)\.credits", "`scoutframe profile`"),
    (r"client\.history\.list\(\)", "`scoutframe history`"),
    (r"under client\.state_dir", "in this machine's scoutframe state directory"),
    (r"client\.state_dir", "this machine's scoutframe state directory"),
    (r"read_spherescout\(\.\.\., cache=True\)", "`scoutframe search ... --cache`"),
    (r"the same read_spherescout call", "the same scoutframe command"),
    (r"the same call again", "the same command again"),
    (r"call download\(\) again", "run the same command again"),
    (
        r"read it with scoutframe\.read_export_csv\(path\)",
        "open it in Python with scoutframe.read_export_csv",
    ),
    # -- the cache
    (r"Cache\(\)\.entries\(\) \(or (`scoutframe cache list`)\)", r"\1"),
    (
        r"scoutframe\.Cache\(\)\.remove\(\.\.\.\) or ",
        "`scoutframe cache remove KEY`, `scoutframe cache prune` or ",
    ),
    (r" or Cache\(\)\.remove\(key\)", " or `scoutframe cache remove KEY`"),
    (
        r"refresh it in full \(full=True\)",
        "remove it (`scoutframe cache remove KEY`) and read it again",
    ),
    (r"\(or (['\"])refresh\1, (['\"])only\2\)", "(or --refresh, --cache-only)"),
    (r"\(cache=(['\"])only\1 never", "(--cache-only never"),
    # -- files
    (r"\(df\.spherescout\.to_parquet(\(path\))?\)", "(a .parquet output)"),
    (r"Path\((['\"])(.+?)\1\)\.mkdir\(parents=True\)", r"mkdir -p \2"),
    (r"\b(?:write_dataset|to_csv|to_parquet|write_table)(?:\(\))?: ", ""),
    # -- single keyword arguments
    (_W + r"method=(['\"])(pages|export|auto)\1", r"--method \2"),
    (_W + r"max_credits=(\d(?:[\d,]*\d)?|N)", r"--max-credits \1"),
    (_W + r"max_credits=(?!\w)", "--max-credits N"),
    (_W + r"max_credits" + _E, "--max-credits"),
    (_W + r"all=True\b", "--all"),
    (_W + r"nrows=(\d(?:[\d,]*\d)?)", r"--nrows \1"),
    (_W + r"countries=(['\"])([\w ,]+)\1", r"--countries \2"),
    (_W + r"category=(['\"])([^'\"]+)\1", r"--category \2"),
    (_W + r"countries=(?!\w)", "--countries"),
    (_W + r"(email|website|instagram|facebook)=True\b", r"--\1"),
    (_W + r"phone_number=True\b", "--phone-number"),
    (_W + r"cache=True\b", "--cache"),
    (_W + r"cache=(['\"])refresh\1", "--refresh"),
    (_W + r"cache=(['\"])only\1", "--cache-only"),
    (_W + r"cache=(?![\w/\\])", "--cache"),
    (_W + r"max_age=?" + _E, "--max-age"),
    (_W + r"cache_dir=?" + _E, "--cache-dir"),
    (_W + r"older_than" + _E, "--older-than"),
    (_W + r"max_bytes" + _E, "--max-bytes"),
    (_W + r"chunksize" + _E, "--chunksize"),
)
_COMPILED = tuple((re.compile(pattern), replacement) for pattern, replacement in _CLI_TERMS)

#: Notes that are true only inside one Python process (pages kept on a client object).
_IN_PROCESS_NOTES = re.compile(r"kept on this client")


def in_cli_terms(message: str) -> str:
    """Say a library message in the command line's words (flags, not keyword arguments).

    Parameters
    ----------
    message
        A message of the library: an error, a warning, a note.

    Returns
    -------
    str
        The same message where each Python spelling is replaced by the flag or command a
        shell user types (``method='pages'`` becomes ``--method pages``,
        ``client.countries()`` becomes ``scoutframe countries``, a ``Filters(...)`` repr the
        search flags).

    Examples
    --------
    >>> in_cli_terms("use method='pages' or max_credits=10")
    'use --method pages or --max-credits 10'
    """
    message = _filters_reprs_as_flags(message)
    for pattern, replacement in _COMPILED:
        message = pattern.sub(replacement, message)
    return message


def notes_in_cli_terms(exc: BaseException) -> list[str]:
    """Return the notes the library added to ``exc``, in CLI words, without their prefix.

    Notes that only hold inside one Python process (pages kept on a client object for the
    next call in the same process) are left out: a command's process ends with it.
    """
    notes: list[str] = []
    for note in getattr(exc, "__notes__", ()):
        text = str(note).removeprefix("scoutframe: ")
        if not _IN_PROCESS_NOTES.search(text):
            notes.append(in_cli_terms(text))
    return notes


def filters_as_flags(filters: Mapping[str, Any] | str | None) -> str:
    """Return search filters as the ``scoutframe search`` flags that select them.

    Parameters
    ----------
    filters
        Filters as ``Filters.to_dict()`` gives them (or their canonical JSON, as the cache
        lists them): ``{"countries": ["FR"], "category": [8059], "email": True}``.

    Returns
    -------
    str
        ``"--countries FR --category 8059 --email"``; ``"--all"`` for no filter; the JSON
        itself for a mapping that is not filters.
    """
    if filters is None:
        return ""
    if isinstance(filters, str):
        text = filters
        if not text:
            return ""
        try:
            filters = json.loads(text)
        except ValueError:
            return text
        if not isinstance(filters, Mapping):
            return text
    parts: list[str] = []
    for name, value in filters.items():
        values = list(value) if isinstance(value, list | tuple) else [value]
        if name == "countries":
            parts.append(f"--countries {','.join(str(v) for v in values)}")
        elif name in _FLAG_OF:
            parts.extend(f"{_FLAG_OF[name]} {_quoted(v)}" for v in values)
        elif name in BOOLEAN_FIELDS and isinstance(value, bool):
            flag = name.replace("_", "-")
            if name == "main_activity_only":
                parts.append(f"--{flag}" if value else "")
            else:
                parts.append(f"--{flag}" if value else f"--no-{flag}")
        else:
            return json.dumps(dict(filters), sort_keys=True, ensure_ascii=False)
    return " ".join(part for part in parts if part) or "--all"


def _quoted(value: object) -> str:
    text = str(value)
    return f"'{text}'" if re.search(r"[\s'\"]", text) else text


def _filters_reprs_as_flags(message: str) -> str:
    """Replace each ``Filters(countries=('FR',), ...)`` repr with its search flags."""
    start = message.find("Filters(")
    while start != -1:
        end = _closing_paren(message, start + len("Filters"))
        if end is None:
            break
        flags = _repr_as_flags(message[start : end + 1])
        if flags is None:
            start = message.find("Filters(", end)
            continue
        message = message[:start] + flags + message[end + 1 :]
        start = message.find("Filters(", start + len(flags))
    return message


def _closing_paren(text: str, opening: int) -> int | None:
    depth = 0
    quote: str | None = None
    for index in range(opening, len(text)):
        char = text[index]
        if quote is not None:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
    return None


def _repr_as_flags(text: str) -> str | None:
    try:
        call = ast.parse(text, mode="eval").body
        if not isinstance(call, ast.Call) or call.args:
            return None
        values = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg}
    except (SyntaxError, ValueError):
        return None
    return filters_as_flags(values)
