"""What the commands print: aligned tables for people, one JSON document for programs.

Tables: one header line, columns aligned (numbers to the right), missing values empty, times
in UTC. JSON (``--json``): one document on standard output, timestamps ISO-8601, missing
values ``null``. Neither ever holds a credential or a signed URL: the callers pass only the
fields meant to be shown.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "add_json_flag",
    "cell",
    "frame_rows",
    "human_bytes",
    "jsonable",
    "print_fields",
    "print_json",
    "print_table",
]


def jsonable(value: Any) -> Any:
    """Return ``value`` as JSON types: ISO-8601 times, ``None`` for missing values.

    Mappings, sequences, dataclasses, NumPy and pandas scalars, paths and times are
    converted recursively; anything else becomes its ``str``.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if _is_missing(value):  # pd.NA, pd.NaT, None-like scalars
        return None
    if isinstance(value, datetime):
        return _aware(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item) for item in value]
    if hasattr(value, "to_pydatetime"):  # pandas.Timestamp
        return jsonable(value.to_pydatetime())
    if hasattr(value, "tolist"):  # NumPy scalars and arrays, Arrow-backed lists
        return jsonable(value.tolist())
    if hasattr(value, "as_py"):  # pyarrow scalars
        return jsonable(value.as_py())
    return str(value)


def _is_missing(value: Any) -> bool:
    if isinstance(value, Mapping | list | tuple | set | frozenset) or hasattr(value, "__len__"):
        return False
    import numpy as np
    import pandas as pd

    try:
        missing = pd.isna(value)
    except (TypeError, ValueError):
        return False
    return isinstance(missing, bool | np.bool_) and bool(missing)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def print_json(value: Any) -> None:
    """Print ``value`` as one indented JSON document on standard output."""
    print(json.dumps(jsonable(value), indent=2, ensure_ascii=False))


def cell(value: Any) -> str:
    """Return one table cell: times in UTC to the second, lists joined, missing values empty."""
    value = jsonable(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(cell(item) for item in value)
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, str) and _looks_like_time(value):
        moment = _aware(datetime.fromisoformat(value)).astimezone(UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def _looks_like_time(text: str) -> bool:
    if len(text) < 19 or text[4] != "-" or text[10] != "T":
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, empty: str) -> None:
    """Print ``rows`` as an aligned table of ``columns``; ``empty`` when there is no row."""
    if not rows:
        print(empty)
        return
    text = [[cell(row.get(name)) for name in columns] for row in rows]
    numeric = [
        all(_is_number(row.get(name)) or row.get(name) is None for row in rows) for name in columns
    ]
    widths = [max(len(name), *(len(line[i]) for line in text)) for i, name in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        parts = [
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    print(line(list(columns)))
    for values in text:
        print(line(values))


def _is_number(value: Any) -> bool:
    converted = jsonable(value)
    return isinstance(converted, int | float) and not isinstance(converted, bool)


def print_fields(fields: Mapping[str, Any]) -> None:
    """Print ``name: value`` lines, names aligned."""
    width = max((len(name) for name in fields), default=0)
    for name, value in fields.items():
        print(f"{name + ':':<{width + 1}} {cell(value)}".rstrip())


def frame_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Return a frame's rows as dicts of plain values (``None`` for missing ones)."""
    return [
        {str(key): jsonable(value) for key, value in row.items()}
        for row in frame.to_dict("records")
    ]


def human_bytes(size: int | None) -> str:
    """Return a size as ``1.2 MB`` (powers of 1000), ``""`` when unknown."""
    if size is None:
        return ""
    number = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if number < 1000 or unit == "TB":
            return f"{int(number)} {unit}" if unit == "B" else f"{number:.1f} {unit}"
        number /= 1000
    return f"{size} B"  # pragma: no cover - the loop always returns


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--json``: one JSON document on standard output instead of a table."""
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document (for programs) instead of a table",
    )
