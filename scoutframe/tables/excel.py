"""Contacts frames into Excel workbooks, for people (extra ``excel``: openpyxl).

:func:`to_excel` writes one sheet, ``contacts``: strings (zip codes, phones) as text cells,
lists joined with ``"; "``, naive UTC timestamps with the zone in the header. It is for
reading by people, not for reading back (use Parquet or the export CSV for that). A text that
a spreadsheet would run as a formula (``=HYPERLINK(...)``, scraped from a web page) is written
as text with Excel's quote-prefix flag, unless ``escape_formulas=False``
(:mod:`scoutframe.tables.formulas`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from ..errors import ArgumentError
from ..extras import require
from ..files import PathLike, atomic_path, output_target
from . import formulas, frames
from .exportcsv import join_lists
from .schema import is_list_type

__all__ = ["EXCEL_MAX_ROWS", "to_excel"]

#: Rows of one Excel sheet.
EXCEL_MAX_ROWS = 1_048_576


def _openpyxl() -> Any:
    return require("openpyxl", feature="to_excel", extra="excel")


def _excel_column(column: pa.ChunkedArray) -> tuple[list[Any], str | None, bool]:
    """Python values of one column for Excel, their number format, whether they were UTC."""
    kind = column.type
    if is_list_type(kind):
        joined = join_lists(column).to_pylist()
        return [value or None for value in joined], "@", False
    if pa.types.is_timestamp(kind):
        naive = column.cast(pa.timestamp(kind.unit))  # the UTC wall time
        return naive.to_pylist(), "yyyy-mm-dd hh:mm:ss", kind.tz is not None
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_dictionary(kind):
        return column.cast(pa.string()).to_pylist(), "@", False  # "@": text, "01000" stays
    return column.to_pylist(), None, False


def _cell_maker(
    sheet: Any, cell_type: Any, escape_formulas: bool
) -> Callable[[Any, str | None], Any]:
    """Return ``cell(value, number_format)``: the value, or a ``cell_type`` cell when needed."""

    def cell(value: Any, number_format: str | None) -> Any:
        inert = escape_formulas and isinstance(value, str) and formulas.is_formula(value)
        if value is None or (number_format is None and not inert):
            return value
        made = cell_type(sheet, value=value)
        if number_format is not None:
            made.number_format = number_format
        if inert:
            # openpyxl makes "=..." a formula; a text cell flagged as Excel's typed "'" is
            # shown as it is and stays text when edited.
            made.data_type = "s"
            made.quotePrefix = True
        return made

    return cell


def _append_rows(
    sheet: Any,
    columns: list[tuple[list[Any], str | None, bool]],
    cell: Callable[[Any, str | None], Any],
    index: pd.Index,
) -> None:
    """Append the rows, each value through ``cell`` (see :func:`_cell_maker`)."""
    formats = [number_format for _, number_format, _ in columns]
    for position, row in enumerate(zip(*(values for values, _, _ in columns), strict=True)):
        cells = [cell(value, fmt) for value, fmt in zip(row, formats, strict=True)]
        try:
            sheet.append(cells)
        except ValueError as err:  # openpyxl's IllegalCharacterError is a ValueError
            row = frames.row_label(index, position)
            raise ArgumentError(
                f"to_excel: row {row!r} holds a character "
                f"Excel cannot store ({err}); remove control characters, or "
                "write CSV or Parquet instead"
            ) from err


def to_excel(df: pd.DataFrame, path: PathLike, *, escape_formulas: bool = True) -> Path:
    """Write a contacts frame to an Excel workbook (one sheet ``contacts``), atomically.

    Parameters
    ----------
    df
        A contacts frame (either dtype backend).
    path
        The ``.xlsx`` file to (re)place; its directory must exist.
    escape_formulas
        Write a text that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
        as a text cell with Excel's quote-prefix flag (invisible: the cell shows the text,
        and stays text when edited), never as a formula. ``False`` lets openpyxl make a
        formula of every text starting with ``=``.

    Returns
    -------
    pathlib.Path
        *path*: naive UTC timestamps, the zone in the header (``collected_at (UTC)``; Excel
        keeps milliseconds), lists joined with ``"; "``, strings (zip codes, phones) as text
        cells, missing values as empty cells.

    Raises
    ------
    ModuleNotFoundError
        openpyxl is not installed (``pip install "scoutframe[excel]"``).
    ArgumentError
        More rows than a sheet holds, or a character Excel cannot store.
    """
    openpyxl = _openpyxl()
    target = output_target(path, "to_excel")
    if len(df) + 1 > EXCEL_MAX_ROWS:
        raise ArgumentError(
            f"to_excel: {len(df):,} rows do not fit in one Excel sheet (it "
            f"holds {EXCEL_MAX_ROWS - 1:,} and a header); write CSV or Parquet"
        )
    table = frames.table_from_pandas(df)
    columns = [_excel_column(table.column(name)) for name in table.column_names]
    header = [
        f"{name} (UTC)" if utc else name
        for name, (_, _, utc) in zip(table.column_names, columns, strict=True)
    ]
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("contacts")
    cell = _cell_maker(sheet, openpyxl.cell.WriteOnlyCell, escape_formulas)
    sheet.append([cell(name, None) for name in header])
    _append_rows(sheet, columns, cell, df.index)
    with atomic_path(target) as temp:
        book.save(temp)
    return target
