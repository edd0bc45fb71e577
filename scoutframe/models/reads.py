"""Records of reads: the plan of a read, and the provenance every frame carries."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PROVENANCE_ATTR", "Provenance", "ReadPlan"]

#: Key of the provenance dictionary in ``DataFrame.attrs`` (and of Parquet/Arrow metadata).
PROVENANCE_ATTR = "scoutframe"


@dataclass(frozen=True)
class ReadPlan:
    """What a read would do, returned by ``read_spherescout(..., dry_run=True)``.

    Attributes
    ----------
    rows : int or None
        Rows the read would return (``None`` when only a search id is known).
    method : str
        ``"pages"`` or ``"export"``.
    credits_needed : int or None
        Credits the read would spend (an export charges every matching contact, even with
        ``nrows``); 0 for pages.
    credits_available : int or None
        The account's balance now.
    search_id : str or None
        The API's id of the search.
    why : str
        The reason for the method, in words.
    total_count : int or None
        Contacts matching the filters.
    """

    rows: int | None
    method: Literal["pages", "export"]
    credits_needed: int | None
    credits_available: int | None
    search_id: str | None
    why: str
    total_count: int | None = None

    def __str__(self) -> str:
        def fmt(value: int | None) -> str:
            return "unknown" if value is None else f"{value:,}"

        return (
            f"ReadPlan: {fmt(self.rows)} rows by {self.method} "
            f"(search {self.search_id}, {fmt(self.total_count)} matching)\n"
            f"  credits needed {fmt(self.credits_needed)}, "
            f"available {fmt(self.credits_available)}\n"
            f"  why: {self.why}"
        )


@dataclass(frozen=True)
class Provenance:
    """Where a frame came from; stored JSON-safe in ``df.attrs["scoutframe"]``.

    Attributes
    ----------
    filters : dict
        The canonical filters (API parameter names to lists of strings).
    search_id : str or None
        The API's id of the search.
    total_count : int or None
        How many contacts matched when the read started.
    method : str
        ``"pages"``, ``"export"`` or ``"delta"``.
    credits_spent : int
        Credits this read charged.
    task_id, history_id : str, int or None
        The export task and history entry, when there was one.
    fetched_at : str
        When the read finished, UTC ISO-8601.
    api_origin : str
        The API origin the data came from.
    library_version : str
        The scoutframe version that read it.
    emails_masked : bool
        True when the emails are masked placeholders, not real addresses.
    reason : str
        Why the method was chosen (``method="auto"`` explains itself here).
    """

    filters: Mapping[str, Any] = field(default_factory=dict)
    search_id: str | None = None
    total_count: int | None = None
    method: str = "pages"
    credits_spent: int = 0
    task_id: str | None = None
    history_id: int | None = None
    fetched_at: str = ""
    api_origin: str = ""
    library_version: str = ""
    emails_masked: bool = False
    reason: str = ""

    #: Bumped when the layout of :meth:`to_dict` changes incompatibly.
    SCHEMA_VERSION: ClassVar[int] = 1

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dictionary (with a ``version`` key)."""
        data = asdict(self)
        data["filters"] = json.loads(json.dumps(dict(self.filters), default=str))
        data["version"] = self.SCHEMA_VERSION
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build from :meth:`to_dict` output; unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def attach(self, df: pd.DataFrame) -> pd.DataFrame:
        """Store this provenance in ``df.attrs`` and return *df*."""
        df.attrs[PROVENANCE_ATTR] = self.to_dict()
        return df
