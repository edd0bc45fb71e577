"""Contacts frames in notebooks: list columns shown as ``a@b.fr, c@d.fr``, dtypes untouched.

pandas shows a list cell as its repr: ``['a@b.fr', 'c@d.fr']`` for Python lists, and on
pandas 2.2 ``['a@b.fr' 'c@d.fr']`` (NumPy arrays) for Arrow lists and for what a Parquet file
gives back. In IPython, :func:`register` adds an HTML formatter for DataFrames: a frame with
the contacts' list columns (``email``, ``phone``, ``categories``; a selection such as
``df[["name", "email"]]`` too) is rendered as pandas renders it, with the same display
options, except that those cells are joined with ``", "``. Only the rows on screen are
formatted, and the frame itself is not changed. Every other frame keeps pandas' display.

``import scoutframe`` registers it when IPython is already running (a notebook kernel), and
``%load_ext scoutframe`` does too; this module never imports IPython.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pandas as pd

from .tables.schema import LIST_COLUMNS, is_list_type

__all__ = ["LIST_DISPLAY_SEPARATOR", "contacts_html", "joined", "register", "register_in_ipython"]

#: Between the items of a list cell on screen (the export CSV uses ``"; "``).
LIST_DISPLAY_SEPARATOR = ", "


def joined(value: Any) -> str:
    """Return a list cell as text: its items joined with ``", "`` (``""`` for an empty list)."""
    if isinstance(value, list | tuple | np.ndarray):
        return LIST_DISPLAY_SEPARATOR.join(str(item) for item in value)
    return str(value)


def _is_list_column(column: pd.Series) -> bool:
    if isinstance(column.dtype, pd.ArrowDtype):
        return is_list_type(column.dtype.pyarrow_dtype)
    if column.dtype != np.dtype(object):
        return False
    values = column.dropna()
    return bool(len(values)) and isinstance(values.iloc[0], list | tuple | np.ndarray)


def _list_columns(df: pd.DataFrame) -> list[str]:
    """Return the contacts list columns of *df* (those of LIST_COLUMNS holding lists)."""
    if not df.columns.is_unique:
        return []
    return [name for name in df.columns if name in LIST_COLUMNS and _is_list_column(df[name])]


def _rows_shown(rows: int) -> int | None:
    """``display.max_rows`` as ``_repr_html_`` applies it: a longer frame shows ``min_rows``."""
    max_rows: int | None = pd.get_option("display.max_rows")
    min_rows: int | None = pd.get_option("display.min_rows")
    if not max_rows or rows <= max_rows:
        return max_rows
    return min(min_rows, max_rows) if min_rows else max_rows


def contacts_html(df: pd.DataFrame) -> str | None:
    """Return the notebook HTML of *df*: pandas' own, with contacts list cells joined.

    Parameters
    ----------
    df
        Any frame.

    Returns
    -------
    str or None
        What ``df._repr_html_()`` returns for a frame without contacts list columns (or when
        ``display.notebook_repr_html`` is off); otherwise the same table, with the same
        options (``display.max_rows``, ``min_rows``, ``max_columns``, ``show_dimensions``),
        whose list cells read ``a@b.fr, c@d.fr``.
    """
    columns = _list_columns(df)
    if not columns or not pd.get_option("display.notebook_repr_html"):
        own: str | None = df._repr_html_()  # type: ignore[operator]
        return own
    html: str = df.to_html(
        formatters={name: joined for name in columns},
        max_rows=_rows_shown(len(df)),
        max_cols=pd.get_option("display.max_columns"),
        show_dimensions=pd.get_option("display.show_dimensions"),
        notebook=True,
        bold_rows=True,
        escape=True,
    )
    return html


class _Shell:
    """What :func:`register` needs of an IPython shell (typed here: IPython is not imported)."""

    display_formatter: Any


def register(shell: _Shell | Any) -> None:
    """Make *shell* (an IPython ``InteractiveShell``) show DataFrames with :func:`contacts_html`."""
    html = shell.display_formatter.formatters["text/html"]
    html.for_type(pd.DataFrame, contacts_html)


def register_in_ipython(modules: dict[str, Any] | None = None) -> bool:
    """Register in the running IPython, if there is one (never importing IPython).

    Returns
    -------
    bool
        Whether a running shell was found.
    """
    ipython = (sys.modules if modules is None else modules).get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()  # None outside a running shell
    if shell is None or not hasattr(shell, "display_formatter"):
        return False
    register(shell)
    return True
