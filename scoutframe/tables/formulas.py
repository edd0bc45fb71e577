"""Text cells that a spreadsheet would run as formulas ("CSV injection"), made inert.

Contacts are scraped from web pages, so a name or a website may start with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return: Excel, LibreOffice and Google Sheets then read the
cell as a formula (``=HYPERLINK(...)``, ``-2+3+cmd|' /C calc'!A0``), not as text. Files
written for spreadsheets neutralise such cells by default (OWASP's advice, as the major
exporters do); ``escape_formulas=False`` writes them as they are.

The rule, in the CSV (where a spreadsheet sees only text): a cell whose text, after any
leading apostrophes, starts with one of :data:`TRIGGERS` gets one more apostrophe in front,
**unless** it is made only of digits, spaces and ``+ - ( ) . / ;`` after a leading ``+`` or
``-`` (:data:`NUMBER_LIKE`): ``+33 1 23 45 67 89``, ``-12.5``, ``+1 (555) 010-9999; +1 555
0100``. Such a cell holds no letter, quote, ``|``, ``!`` or ``:``, so as a formula it can
name no function, cell, sheet or program: at worst it is arithmetic. Phone numbers, which
start with ``+`` in most of the world, thus stay exactly as the API sent them, for the
spreadsheet and for every program reading the CSV.

The apostrophe in front of apostrophes makes the rule reversible: :func:`unescape` gives back
the original text of every cell :func:`escape` wrote (``read_export_csv`` does it by default),
including a text that itself started with ``'=``.

In an Excel workbook nothing needs adding: the cell is written as a text cell with Excel's
own "quote prefix" flag (what typing a leading ``'`` does), invisible, so the shown text is
the original and editing it does not turn it into a formula.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "NUMBER_LIKE",
    "TRIGGERS",
    "escape",
    "escape_table",
    "is_formula",
    "needs_escape",
    "unescape",
    "unescape_table",
]

#: First characters that make a spreadsheet read a cell as a formula (OWASP's list).
TRIGGERS = "=+-@\t\r"
#: A cell that starts with ``+``/``-`` and is only a number or a phone number: left as it is.
NUMBER_LIKE = r"[+-][0-9 ().\/;+-]*"

_TRIGGER_CLASS = "[=+\\-@\\t\\r]"
# After any apostrophes (escape) / after at least one (unescape): see the module docstring.
_STARTS = f"^'*{_TRIGGER_CLASS}"
_SPARED = f"^'*{NUMBER_LIKE}$"
_ESCAPED = f"^'+{_TRIGGER_CLASS}"
_ESCAPED_SPARED = f"^'+{NUMBER_LIKE}$"
_SPARED_RE = re.compile(NUMBER_LIKE)


def is_formula(text: str) -> bool:
    """Whether a spreadsheet would read ``text`` as a formula (its first character)."""
    return bool(text) and text[0] in TRIGGERS


def needs_escape(text: str) -> bool:
    """Whether :func:`escape` puts an apostrophe in front of ``text`` (the CSV rule)."""
    rest = text.lstrip("'")
    return is_formula(rest) and _SPARED_RE.fullmatch(rest) is None


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _matches(column: pa.ChunkedArray, starts: str, spared: str) -> pa.ChunkedArray:
    hit = pc.fill_null(pc.match_substring_regex(column, starts), False)
    if not pc.any(hit).as_py():
        return hit
    return pc.and_(hit, pc.invert(pc.fill_null(pc.match_substring_regex(column, spared), False)))


def escape(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Put an apostrophe in front of each cell a spreadsheet would run (a text column)."""
    hit = _matches(column, _STARTS, _SPARED)
    if not pc.any(hit).as_py():
        return column
    quoted = pc.binary_join_element_wise(pa.scalar("'", column.type), column, "")
    return pc.if_else(hit, quoted, column)


def unescape(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Undo :func:`escape`: drop the apostrophe it added, and only that one (a text column)."""
    hit = _matches(column, _ESCAPED, _ESCAPED_SPARED)
    if not pc.any(hit).as_py():
        return column
    return pc.if_else(hit, pc.utf8_slice_codeunits(column, 1), column)


def _each_text_column(
    table: pa.Table, change: Callable[[pa.ChunkedArray], pa.ChunkedArray]
) -> pa.Table:
    for index, field in enumerate(table.schema):
        if _is_text(field.type):
            table = table.set_column(index, field, change(table.column(index)))
    return table


def escape_table(table: pa.Table) -> pa.Table:
    """Apply :func:`escape` to every text column of ``table`` (lists joined already)."""
    return _each_text_column(table, escape)


def unescape_table(table: pa.Table) -> pa.Table:
    """Apply :func:`unescape` to every text column of ``table`` (lists not split yet)."""
    return _each_text_column(table, unescape)
