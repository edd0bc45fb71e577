"""Rich displays in notebooks: what a record is, its state, its cost, what to do next.

Every ``_repr_html_`` in scoutframe is built here, the way google-cloud-bigquery shows a job:
a title, a few labelled facts, and a line saying what to do next. Values are HTML-escaped;
nothing here is given a credential or a signed URL to show.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

__all__ = ["card", "number"]

_STYLE = (
    "font-family: var(--jp-ui-font-family, sans-serif); font-size: 13px; "
    "border: 1px solid var(--jp-border-color2, #ddd); border-radius: 4px; "
    "padding: 6px 10px; display: inline-block; max-width: 60em"
)


def number(value: int | float | None, unit: str = "") -> str:
    """Format a count for a display (``1,842``); ``"unknown"`` for ``None``."""
    if value is None:
        return "unknown"
    text = f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"
    return f"{text} {unit}".strip()


def card(title: str, facts: Iterable[tuple[str, object]], next_step: str = "") -> str:
    """Return an HTML card: a title, labelled facts (skipped when ``None``), a next step."""
    rows = "".join(
        f"<tr><th style='text-align:left; padding-right:1em; font-weight:600'>"
        f"{html.escape(label)}</th><td style='text-align:left'>{html.escape(str(value))}</td>"
        "</tr>"
        for label, value in facts
        if value is not None and value != ""
    )
    step = (
        f"<div style='margin-top:4px; color: var(--jp-ui-font-color2, #555)'>"
        f"{html.escape(next_step)}</div>"
        if next_step
        else ""
    )
    return (
        f"<div style='{_STYLE}'><div style='font-weight:600; margin-bottom:4px'>"
        f"{html.escape(title)}</div><table style='border-collapse:collapse'>{rows}</table>"
        f"{step}</div>"
    )
