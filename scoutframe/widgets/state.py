"""What the search form holds: the places and choices it picks, and its error messages.

Plain frozen values, without any client or widget: :class:`FormState` is replaced whole on
every edit, so a background lookup can tell whether the choices moved on while it ran.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..api.filters import BOOLEAN_FIELDS, Filters
from ..errors import ScoutError

__all__ = ["LEVEL_WORDS", "FormState", "Place", "short_message"]

#: Words for the location levels (the API's level1, level2, level3).
LEVEL_WORDS = {1: "region", 2: "county", 3: "city"}
_MESSAGE_LIMIT = 400


def short_message(exc: BaseException) -> str:
    """Say what went wrong in one line: the error's class and its (shortened) message."""
    text = exc.message if isinstance(exc, ScoutError) else str(exc)
    text = " ".join(text.split()) or "(no message)"
    if len(text) > _MESSAGE_LIMIT:
        text = text[: _MESSAGE_LIMIT - 1] + "…"
    if isinstance(exc, ScoutError):
        return f"{type(exc).__name__}: {text}"
    return (
        f"Unexpected error ({type(exc).__name__}): {text} (the traceback is logged at "
        "DEBUG by logger 'scoutframe.widgets')"
    )


@dataclass(frozen=True)
class Place:
    """A location picked in the form: a region (1), county (2) or city (3) of one country."""

    id: int
    name: str
    level: int
    country: str
    parent_id: int | None = None

    @property
    def field(self) -> str:
        """The filter this place goes in: ``"level1_locations"`` and so on."""
        return f"level{self.level}_locations"

    @property
    def label(self) -> str:
        """``"Paris (city, FR)"``."""
        return f"{self.name} ({LEVEL_WORDS.get(self.level, 'place')}, {self.country})"

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Place:
        """Build from a row of ``client.locations`` (``id``, ``name``, ``type``, ...)."""
        kind = str(row.get("type") or "")
        level = int(kind[-1]) if kind[-1:].isdigit() else 0
        parent = row.get("parent_id")
        return cls(
            id=int(row["id"]),
            name=str(row.get("name") or row["id"]),
            level=level,
            country=str(row.get("country") or ""),
            parent_id=None if parent is None or pd.isna(parent) else int(parent),
        )


@dataclass(frozen=True)
class FormState:
    """What the user picked; immutable, replaced on every edit.

    The location is a chain (``level1`` → ``level2`` → ``level3``) inside the one chosen
    country; the deepest level picked is the filter. ``toggles`` holds the true/false
    filters that are set (:data:`~scoutframe.api.filters.BOOLEAN_FIELDS`, in that order).
    """

    countries: tuple[str, ...] = ()
    category: str = ""
    level1: Place | None = None
    level2: Place | None = None
    level3: Place | None = None
    toggles: tuple[tuple[str, bool], ...] = ()
    max_credits: int | None = None
    location_query: str = ""

    @property
    def place(self) -> Place | None:
        """The deepest location picked, or ``None``."""
        return self.level3 or self.level2 or self.level1

    def toggle(self, name: str) -> bool | None:
        """Return a true/false filter's value (``None``: not set)."""
        return dict(self.toggles).get(name)

    def with_toggle(self, name: str, value: bool | None) -> tuple[tuple[str, bool], ...]:
        """Return the toggles with ``name`` set to ``value`` (``None`` unsets it)."""
        if name not in BOOLEAN_FIELDS:
            raise ValueError(f"unknown toggle {name!r}; one of {', '.join(BOOLEAN_FIELDS)}")
        values = {**dict(self.toggles), name: value}
        return tuple((n, v) for n in BOOLEAN_FIELDS if (v := values.get(n)) is not None)

    def filters(self) -> Filters:
        """Return the search these choices make (codes, the category as typed, place ids)."""
        values: dict[str, Any] = dict(self.toggles)
        values["countries"] = self.countries
        if self.category:
            values["category"] = self.category
        if self.place is not None:
            values[self.place.field] = self.place.id
        return Filters(**values)
