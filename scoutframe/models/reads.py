"""Records of reads: the plan of a read, and the provenance every frame carries."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

from ._display import card, number

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

    def _repr_html_(self) -> str:
        spends = self.method == "export" and bool(self.credits_needed)
        if self.method == "pages":
            step = "Free: read it with the same call without dry_run=True (emails masked)."
        elif "consent" in self.why:
            step = (
                "Buying it needs your consent: max_credits= (or method='export'); "
                "method='pages' reads it for free with masked emails."
            )
        elif (
            spends
            and self.credits_available is not None
            and ((self.credits_needed or 0) > self.credits_available)
        ):
            step = "The balance does not cover it: narrow the filters or read by pages (free)."
        else:
            step = "Run the same call without dry_run=True to read it."
        return card(
            f"Read plan: {number(self.rows)} rows by {self.method}",
            [
                ("search", self.search_id),
                ("matching contacts", number(self.total_count)),
                ("credits needed", number(self.credits_needed)),
                ("credits available", number(self.credits_available)),
                ("why", self.why),
            ],
            step,
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
    history_ids : tuple of int
        The export history entries that built the data, in order: the full export, then each
        delta merged into it (a cache entry's chain; the last is where the next delta starts).
    cache_entry : str or None
        The key of the cache entry the frame was served from, when it was (never a path:
        the same entry may be read from another machine).
    cache_dir : str or None
        The cache it is in, as the read named it (``cache_dir=``); ``None``: the default
        (``SCOUTFRAME_CACHE_DIR``, else the user cache directory).
    cache_age_seconds : float or None
        How long before the read that entry was last brought up to date.
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
    history_ids: tuple[int, ...] = ()
    cache_entry: str | None = None
    cache_dir: str | None = None
    cache_age_seconds: float | None = None

    #: Bumped when the layout of :meth:`to_dict` changes: 2 added the cache fields, 3 made
    #: ``cache_entry`` a key (it was a directory) and added ``cache_dir``.
    SCHEMA_VERSION: ClassVar[int] = 3

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dictionary (with a ``version`` key)."""
        data = asdict(self)
        data["filters"] = json.loads(json.dumps(dict(self.filters), default=str))
        data["history_ids"] = list(self.history_ids)
        data["version"] = self.SCHEMA_VERSION
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build from :meth:`to_dict` output (any version); unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "history_ids" in values:
            values["history_ids"] = tuple(int(i) for i in values["history_ids"] or ())
        elif data.get("history_id") is not None:  # version 1: one export, no chain
            values["history_ids"] = (int(data["history_id"]),)
        return cls(**values)

    def __str__(self) -> str:
        spent = f"{self.credits_spent:,} credits" if self.credits_spent else "no credits"
        cached = f", cache entry {self.cache_entry[:12]}" if self.cache_entry else ""
        return (
            f"Provenance: {number(self.total_count)} contacts by {self.method} from "
            f"{self.api_origin or '?'} at {self.fetched_at or '?'}, {spent}{cached}"
        )

    def _repr_html_(self) -> str:
        history = " → ".join(str(i) for i in self.history_ids) or None
        age = None if self.cache_age_seconds is None else f"{self.cache_age_seconds:,.0f} s"
        step = (
            "Emails are masked: method='export' reads full data (1 credit a contact)."
            if self.emails_masked
            else "df.spherescout.refresh() brings it up to date, paying only what changed."
            if history
            else ""
        )
        return card(
            f"Provenance: {self.method} read of {number(self.total_count)} contacts",
            [
                ("filters", dict(self.filters) or "none"),
                ("search", self.search_id),
                ("credits spent", number(self.credits_spent)),
                ("task", self.task_id),
                ("history", history),
                ("fetched", self.fetched_at),
                ("origin", self.api_origin),
                ("cache entry", self.cache_entry),
                ("cache age", age),
                ("emails masked", self.emails_masked),
                ("scoutframe", self.library_version),
                ("why", self.reason),
            ],
            step,
        )

    def attach(self, df: pd.DataFrame) -> pd.DataFrame:
        """Store this provenance in ``df.attrs`` and return *df*."""
        df.attrs[PROVENANCE_ATTR] = self.to_dict()
        return df
