"""Records of exports: their status, the export history, freshness, deltas and saved handles."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

from ..clock import clock
from ._coerce import extra_fields, optional_float, optional_int, optional_str, parse_datetime
from ._display import card, number

__all__ = [
    "Delta",
    "ExportStatus",
    "Flavor",
    "Freshness",
    "HandleState",
    "HistoryEntry",
    "JobHandle",
    "ServerFlavor",
    "StatusName",
    "link_is_valid",
    "normalize_status",
]

#: How a server runs exports: ``"docs"`` (task ids, as documented) or ``"live"`` (by search
#: id, as production does).
Flavor = Literal["docs", "live"]
#: What a client knows of its server: a :data:`Flavor`, or ``"unknown"`` before any export.
ServerFlavor = Literal["docs", "live", "unknown"]
#: The four documented states of an export on the server.
StatusName = Literal["pending", "processing", "ready", "failed"]
#: The life of a saved handle on this machine (not the server's status): ``"provisional"``
#: before the charging start was answered, ``"active"`` until the data reached the caller,
#: then ``"done"``; ``"failed"`` when the server failed the export (and refunded it).
HandleState = Literal["provisional", "active", "done", "failed"]

# Spellings seen for each state; the live API says "completed" where the docs say "ready".
_STATUS_ALIASES: dict[str, StatusName] = {
    "pending": "pending",
    "queued": "pending",
    "processing": "processing",
    "running": "processing",
    "in_progress": "processing",
    "ready": "ready",
    "completed": "ready",
    "complete": "ready",
    "done": "ready",
    "success": "ready",
    "failed": "failed",
    "failure": "failed",
    "error": "failed",
}


def normalize_status(value: object) -> StatusName:
    """Map a server status word to one of the four documented states.

    Unknown words count as ``"processing"`` (keep polling until the deadline) rather than
    failing a job the server may still finish.
    """
    return _STATUS_ALIASES.get(str(value or "").strip().lower(), "processing")


def link_is_valid(url: str | None, expires_at: datetime | None) -> bool:
    """Whether a signed download link is there and not past its expiry (on the retry clock).

    The one answer to "can this ready export still be downloaded without asking again".
    """
    return url is not None and (expires_at is None or expires_at > clock().now())


@dataclass(frozen=True)
class ExportStatus:
    """One observation of an export's state on the server.

    Attributes
    ----------
    status
        ``"pending"``, ``"processing"``, ``"ready"`` or ``"failed"`` (the live API's
        ``"completed"`` is reported as ``"ready"``).
    progress
        The server's progress figure, when it sends one.
    lead_count
        Number of contacts in the export (the credits it cost).
    download_url
        Pre-signed URL of the CSV once ready; hidden from ``repr`` because it grants access.
    expires_at
        When the signed URL stops working (UTC).
    error
        The server's message when the export failed.
    extra
        Every other field of the answer, as sent.
    word
        The status word as the server sent it (``"completed"``, or one never seen before).
    """

    status: StatusName
    progress: float | None = None
    lead_count: int | None = None
    download_url: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None
    error: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)
    word: str | None = field(default=None, repr=False)

    _FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"status", "progress", "lead_count", "download_url", "expires_at", "error"}
    )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """Build a status leniently from a status answer of either API flavour."""
        return cls(
            status=normalize_status(data.get("status")),
            progress=optional_float(data.get("progress")),
            lead_count=optional_int(data.get("lead_count")),
            download_url=optional_str(data.get("download_url") or None),
            expires_at=parse_datetime(data.get("expires_at")),
            error=optional_str(data.get("error")),
            extra=extra_fields(data, cls._FIELDS),
            word=optional_str(data.get("status")),
        )

    @property
    def unknown_word(self) -> str | None:
        """The server's status word if this client does not know it (then "processing")."""
        if self.word is None or self.word.strip().lower() in _STATUS_ALIASES:
            return None
        return self.word

    @property
    def is_finished(self) -> bool:
        """Whether the job will not change any more (ready or failed)."""
        return self.status in ("ready", "failed")

    @property
    def has_valid_link(self) -> bool:
        """Whether the export is ready with a download link that has not expired."""
        return self.status == "ready" and link_is_valid(self.download_url, self.expires_at)

    def _repr_html_(self) -> str:
        steps = {
            "pending": "Waiting to start: job.wait() polls until it is ready.",
            "processing": "Being built: job.wait() polls until it is ready.",
            "ready": (
                "Ready: job.download(path) fetches the CSV (free)."
                if self.has_valid_link
                else "Ready, but its link expired: start a new export."
            ),
            "failed": "Failed on the server; its credits are refunded. Start it again.",
        }
        progress = (
            None
            if self.progress is None
            else f"{self.progress:.0%}"
            if (self.progress <= 1)
            else f"{self.progress:.0f}%"
        )
        return card(
            f"Export status: {self.status}",
            [
                ("contacts (credits)", number(self.lead_count)),
                ("progress", progress),
                ("link expires", self.expires_at),
                ("error", self.error),
            ],
            steps[self.status],
        )


@dataclass(frozen=True)
class HistoryEntry:
    """One export (``kind="full"``) or delta download (``kind="delta"``) of the account.

    Attributes
    ----------
    id
        History entry id (what ``client.history.freshness`` and ``download_delta`` take).
    search_id
        The search the export was made from.
    filters
        The search's filters as the server reports them.
    created_at
        When it was exported (UTC); the cut-off of the next delta.
    row_count
        Contacts exported (credits charged).
    status
        The export's status (``pending`` ... ``ready``, ``failed``).
    kind
        ``"full"`` or ``"delta"``.
    parent_id
        For a delta: the entry it continues.
    download_url
        Signed URL of the file while valid; hidden from ``repr``.
    expires_at
        When ``download_url`` stops working.
    extra
        Other fields as sent.
    """

    id: int
    search_id: str | None
    filters: Mapping[str, Any]
    created_at: datetime | None
    row_count: int | None
    status: str | None
    kind: str
    parent_id: int | None
    download_url: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    _FIELDS: ClassVar[frozenset[str]] = frozenset(
        {
            "id",
            "search_id",
            "filters",
            "created_at",
            "row_count",
            "status",
            "kind",
            "parent_id",
            "download_url",
            "expires_at",
        }
    )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """Build an entry leniently from one item of the history answer."""
        filters = data.get("filters")
        return cls(
            id=int(data["id"]),
            search_id=optional_str(data.get("search_id")),
            filters=dict(filters) if isinstance(filters, Mapping) else {},
            created_at=parse_datetime(data.get("created_at")),
            row_count=optional_int(data.get("row_count")),
            status=optional_str(data.get("status")),
            kind=str(data.get("kind") or "full"),
            parent_id=optional_int(data.get("parent_id")),
            download_url=optional_str(data.get("download_url") or None),
            expires_at=parse_datetime(data.get("expires_at")),
            extra=extra_fields(data, cls._FIELDS),
        )

    def as_status(self) -> ExportStatus:
        """Return the export's status as this entry tells it (jobs followed by history id)."""
        return ExportStatus(
            status=normalize_status(self.status),
            lead_count=self.row_count,
            download_url=self.download_url,
            expires_at=self.expires_at,
            extra={"history_id": self.id, "search_id": self.search_id},
        )


@dataclass(frozen=True)
class Freshness:
    """How many contacts matching an entry's filters were collected after it was exported.

    Attributes
    ----------
    id
        The history entry.
    exported_at
        Its export time (UTC).
    new_count
        New or re-collected contacts since then: the rows (and credits) of a delta.
    is_fresh
        ``new_count == 0``.
    checked_at
        When the server counted.
    extra
        Other fields as sent.
    """

    id: int
    exported_at: datetime | None
    new_count: int
    is_fresh: bool
    checked_at: datetime | None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    _FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"id", "exported_at", "new_count", "is_fresh", "checked_at"}
    )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """Build from the freshness answer."""
        new_count = optional_int(data.get("new_count")) or 0
        is_fresh = data.get("is_fresh")
        return cls(
            id=int(data["id"]),
            exported_at=parse_datetime(data.get("exported_at")),
            new_count=new_count,
            is_fresh=bool(is_fresh) if is_fresh is not None else new_count == 0,
            checked_at=parse_datetime(data.get("checked_at")),
            extra=extra_fields(data, cls._FIELDS),
        )


@dataclass(frozen=True)
class Delta:
    """A downloaded delta CSV.

    Attributes
    ----------
    path
        Where the CSV was written.
    history_id
        Id of the ``delta`` history entry the server recorded (the next delta's parent).
    row_count
        Data rows in the file.
    credits_spent
        Credits charged (1 a row).
    """

    path: Path
    history_id: int | None
    row_count: int
    credits_spent: int


@dataclass(frozen=True)
class JobHandle:
    """An export job as saved on this machine: ids, filters, counts and times.

    Never a credential or a signed URL. Written as JSON under ``client.state_dir / "jobs"``
    so that an interrupted read, in this process or the next, resumes the export instead of
    paying for it again.

    Attributes
    ----------
    search_id
        The search exported.
    task_id
        The documented API's task id; ``None`` for the live flavour, or before the start
        was answered.
    lead_count
        Contacts in the export (credits charged), when known.
    filters
        The search's canonical filters (``Filters.to_dict()``), when known.
    flavor
        How the server runs exports.
    origin
        The API origin the job belongs to.
    created_at
        When the start was sent (UTC).
    history_id
        The export's history entry, once known (the parent of later deltas).
    state
        Its life on this machine (see :data:`HandleState`).
    newest_history_id
        For a provisional handle: the newest history entry before the start was sent, so an
        export that entry does not know is the one this start made.
    """

    search_id: str
    task_id: str | None = None
    lead_count: int | None = None
    filters: Mapping[str, Any] | None = None
    flavor: Flavor = "docs"
    origin: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    history_id: int | None = None
    state: HandleState = "active"
    newest_history_id: int | None = None

    VERSION: ClassVar[int] = 1
    _STATES: ClassVar[tuple[HandleState, ...]] = ("provisional", "active", "done", "failed")

    @property
    def job_id(self) -> str:
        """The id that names this job: the task id, else the search id."""
        return self.task_id or self.search_id

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form written to disk."""
        return {
            "version": self.VERSION,
            "task_id": self.task_id,
            "search_id": self.search_id,
            "lead_count": self.lead_count,
            "filters": None if self.filters is None else dict(self.filters),
            "flavor": self.flavor,
            "origin": self.origin,
            "created_at": self.created_at.isoformat(),
            "history_id": self.history_id,
            "state": self.state,
            "newest_history_id": self.newest_history_id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """Read a handle written by :meth:`to_json` (leniently: files outlive versions)."""
        filters = data.get("filters")
        state = data.get("state")
        return cls(
            search_id=str(data.get("search_id") or ""),
            task_id=optional_str(data.get("task_id") or None),
            lead_count=optional_int(data.get("lead_count")),
            filters=dict(filters) if isinstance(filters, Mapping) else None,
            flavor="live" if data.get("flavor") == "live" else "docs",
            origin=str(data.get("origin") or ""),
            created_at=parse_datetime(data.get("created_at")) or datetime(1970, 1, 1, tzinfo=UTC),
            history_id=optional_int(data.get("history_id")),
            state=state if state in cls._STATES else "active",
            newest_history_id=optional_int(data.get("newest_history_id")),
        )
