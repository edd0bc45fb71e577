"""HTML snippets of the form: the count line, messages, tables, code.

Plain functions of the model's figures, so they are tested without a front end (as xarray's
``formatting_html``); the view only puts their text into ``HTML`` widgets.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from .model import SearchModel

__all__ = [
    "TABLE_COLUMNS",
    "code_html",
    "figures_html",
    "message_html",
    "status_html",
    "table_html",
]

#: The columns the form's tables show, when present (the frame itself keeps them all).
TABLE_COLUMNS = (
    "name",
    "city",
    "level1_location",
    "categories",
    "email",
    "phone",
    "website",
    "rating",
)


def _n(value: int) -> str:
    return f"{value:,}"


def figures_html(model: SearchModel) -> str:
    """Return the live count and cost line: contacts, export cost, balance, budget."""
    pending = " <i>(updating…)</i>" if "figures" in model.pending else ""
    if model.count is None:
        hint = (
            "Pick a country, a category or a location to see the count."
            if model.filters.is_empty()
            else "No count (see the message below)."
        )
        return f'<span class="scoutframe-count-text">{hint}</span>{pending}'
    parts = [f"<b>{_n(model.count)}</b> contacts", "pages: free (emails masked)"]
    if model.cost is not None:
        export = f"export: <b>{_n(model.cost)}</b> credits"
        if model.balance is not None:
            export += f" of {_n(model.balance)} available"
        parts.append(export)
    budget = model.state.max_credits
    warnings = []
    if model.cost is not None and budget is not None and model.cost > budget:
        warnings.append(f"over max_credits={_n(budget)}")
    if model.cost is not None and model.balance is not None and model.cost > model.balance:
        warnings.append("more than the balance")
    text = " · ".join(parts)
    if warnings:
        text += ' · <span style="color:#b00">' + ", ".join(warnings) + "</span>"
    return f'<span class="scoutframe-count-text">{text}</span>{pending}'


def message_html(text: str) -> str:
    """Return the errors, escaped, in red; empty when there are none."""
    if not text:
        return ""
    lines = "<br>".join(html.escape(line) for line in text.splitlines())
    return f'<div style="color:#b00;white-space:normal">{lines}</div>'


def status_html(text: str, notes: Sequence[str] = ()) -> str:
    """Return what the last action did, and the notes (warnings) it left, escaped."""
    out = f"<span>{html.escape(text)}</span>" if text else ""
    for note in notes:
        out += f'<div style="color:#8a6d00">Note: {html.escape(note)}</div>'
    return out


def _cell(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value)
    if hasattr(value, "tolist") and not isinstance(value, str):
        listed = value.tolist()
        if isinstance(listed, list):
            return "; ".join(str(v) for v in listed)
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    return str(value)


def table_html(
    frame: pd.DataFrame | None,
    *,
    caption: str = "",
    rows: int = 10,
    columns: Sequence[str] = TABLE_COLUMNS,
) -> str:
    """Return the first ``rows`` rows of ``frame`` as an escaped HTML table."""
    if frame is None:
        return ""
    shown = [c for c in columns if c in frame.columns] or list(frame.columns)
    head = frame.head(rows)
    out = ['<table class="scoutframe-table" style="border-collapse:collapse;font-size:90%">']
    if caption:
        out.append(f'<caption style="text-align:left">{html.escape(caption)}</caption>')
    out.append(
        "<thead><tr>"
        + "".join(
            f'<th style="text-align:left;padding:2px 6px">{html.escape(c)}</th>' for c in shown
        )
        + "</tr></thead><tbody>"
    )
    for record in head[shown].itertuples(index=False, name=None):
        out.append(
            "<tr>"
            + "".join(f'<td style="padding:2px 6px">{html.escape(_cell(v))}</td>' for v in record)
            + "</tr>"
        )
    out.append("</tbody></table>")
    if len(frame) > rows:
        out.append(f"<div><i>{len(frame):,} rows; the first {rows} shown</i></div>")
    return "".join(out)


def code_html(code: str) -> str:
    """Return code in a ``<pre>`` block."""
    return f'<pre class="scoutframe-code-text">{html.escape(code)}</pre>' if code else ""
