"""Export history, freshness checks and delta downloads (``/api/user/search-history``)."""

from __future__ import annotations

import contextlib
import csv
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import pandas as pd

from ..errors import ServerError, TransportError
from ..jobs import STREAM_ERRORS, optional_int, parse_timestamp, write_body
from .exports import ensure_affordable, may_still_run

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["Delta", "Freshness", "History", "HistoryEntry"]

_ENTRY_FIELDS = (
    "id", "search_id", "filters", "created_at", "row_count", "status", "kind", "parent_id",
    "download_url", "expires_at",
)  # fmt: skip
_FRESHNESS_FIELDS = ("id", "exported_at", "new_count", "is_fresh", "checked_at")
_PATH = "/api/user/search-history"
_HISTORY_ID_HEADER = "X-Search-History-Id"


@dataclass(frozen=True)
class HistoryEntry:
    """One export (``kind="full"``) or delta download (``kind="delta"``) of the account.

    Attributes
    ----------
    id
        History entry id (what :meth:`History.freshness` and ``download_delta`` take).
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

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HistoryEntry:
        """Build an entry leniently from one item of the history answer."""
        filters = data.get("filters")
        return cls(
            id=int(data["id"]),
            search_id=None if data.get("search_id") is None else str(data["search_id"]),
            filters=dict(filters) if isinstance(filters, Mapping) else {},
            created_at=parse_timestamp(data.get("created_at")),
            row_count=optional_int(data.get("row_count")),
            status=None if data.get("status") is None else str(data["status"]),
            kind=str(data.get("kind") or "full"),
            parent_id=optional_int(data.get("parent_id")),
            download_url=data.get("download_url") or None,
            expires_at=parse_timestamp(data.get("expires_at")),
            extra={k: v for k, v in data.items() if k not in _ENTRY_FIELDS},
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

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Freshness:
        """Build from the freshness answer."""
        new_count = int(data.get("new_count") or 0)
        is_fresh = data.get("is_fresh")
        return cls(
            id=int(data["id"]),
            exported_at=parse_timestamp(data.get("exported_at")),
            new_count=new_count,
            is_fresh=bool(is_fresh) if is_fresh is not None else new_count == 0,
            checked_at=parse_timestamp(data.get("checked_at")),
            extra={k: v for k, v in data.items() if k not in _FRESHNESS_FIELDS},
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


class History:
    """The account's export history: ``client.history``.

    Parameters
    ----------
    client
        The client whose transport and credentials are used.
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    def __repr__(self) -> str:
        return "History()"

    def _pages(self) -> Iterator[Mapping[str, Any]]:
        params: list[tuple[str, str]] | None = None
        path = _PATH
        for _ in range(10_000):  # a server looping on "next" must not hang us
            data = self._client.transport.get_json(path, params=params)
            if isinstance(data, list):  # a bare list: lenient
                yield from data
                return
            yield from data.get("results") or []
            following = data.get("next")
            if not following:
                return
            parts = urlsplit(str(following))
            path, params = parts.path or _PATH, parse_qsl(parts.query)

    def entries(self) -> list[HistoryEntry]:
        """Return every history entry, newest first.

        Returns
        -------
        list of HistoryEntry
        """
        return [HistoryEntry.from_json(item) for item in self._pages()]

    def list(self) -> pd.DataFrame:
        """Return the history as a DataFrame, newest first.

        Returns
        -------
        pandas.DataFrame
            Columns ``id`` (int64), ``search_id``, ``kind``, ``status``, ``row_count``
            (Int64), ``created_at`` and ``expires_at`` (UTC timestamps), ``parent_id``
            (Int64, missing for full exports) and ``filters`` (dicts). Signed URLs are left
            out; use :meth:`entries` for them.

        Examples
        --------
        >>> client.history.list()[["id", "kind", "row_count"]]  # doctest: +SKIP
        """
        entries = self.entries()
        return pd.DataFrame(
            {
                "id": pd.array([e.id for e in entries], dtype="int64"),
                "search_id": pd.array([e.search_id for e in entries], dtype="string"),
                "kind": pd.array([e.kind for e in entries], dtype="string"),
                "status": pd.array([e.status for e in entries], dtype="string"),
                "row_count": pd.array([e.row_count for e in entries], dtype="Int64"),
                "created_at": _utc_column([e.created_at for e in entries]),
                "expires_at": _utc_column([e.expires_at for e in entries]),
                "parent_id": pd.array([e.parent_id for e in entries], dtype="Int64"),
                "filters": pd.Series([dict(e.filters) for e in entries], dtype=object),
            }
        )

    def freshness(self, entry_id: int) -> Freshness:
        """Count the contacts collected since entry ``entry_id`` was exported (free).

        Raises
        ------
        NotFoundError
            No such entry on this account.
        """
        return Freshness.from_json(
            self._client.transport.get_json(f"{_PATH}/{int(entry_id)}/freshness")
        )

    def download_delta(
        self,
        entry_id: int,
        path: str | os.PathLike[str],
        *,
        max_credits: int | None = None,
    ) -> Delta:
        """Download the contacts new or updated since entry ``entry_id``, as CSV.

        Costs 1 credit a row. The row count is checked first (:meth:`freshness`) against
        ``max_credits`` and the account's balance, so a refusal spends nothing. The body
        streams to a temporary file beside ``path`` and is moved into place when complete.

        Parameters
        ----------
        entry_id
            A history entry (full export or earlier delta) of this account.
        path
            Destination CSV file.
        max_credits
            Refuse (``BudgetError``) if the delta would cost more.

        Returns
        -------
        Delta
            The file, the new ``delta`` entry's id, the row count and the credits spent.

        Raises
        ------
        BudgetError
            The delta has more rows than ``max_credits``; nothing is spent.
        InsufficientCreditsError
            The balance does not cover the delta; nothing is spent.
        TransportError
            The connection broke while the charged body was in flight; the message names the
            history entry it was recorded as. The next delta from ``entry_id`` includes the
            same rows again (and costs them again).
        """
        client = self._client
        expected = self.freshness(entry_id).new_count
        available = ensure_affordable(
            client, expected, max_credits, what=f"the delta of history entry {entry_id}",
            hint="Raise max_credits, or check freshness() until fewer contacts are new.",
        )
        target = Path(path)
        part = target.with_name(f".{target.name}.delta-{int(entry_id)}.part")
        known_ids = {e.id for e in self.entries()}
        for attempt in range(2):
            sent = time.monotonic()
            try:
                history_id = self._fetch_delta(entry_id, part)
            except (TransportError, ServerError, *STREAM_ERRORS) as exc:
                part.unlink(missing_ok=True)
                recorded = [
                    e for e in self.entries()
                    if e.kind == "delta" and e.parent_id == int(entry_id) and e.id not in known_ids
                ]  # fmt: skip
                if recorded or client.profile().credits != available:
                    where = f" as history entry {recorded[0].id}" if recorded else ""
                    raise TransportError(
                        f"the delta download of entry {entry_id} broke off after the server "
                        f"charged it{where}; it was not retried to avoid paying twice"
                    ) from exc
                if may_still_run(client, exc, time.monotonic() - sent):
                    raise TransportError(
                        f"the delta download of entry {entry_id} got no answer in time; the "
                        "server may still charge it, so it was not retried: check "
                        "client.history.list() in a minute before asking again"
                    ) from exc
                if attempt:
                    raise TransportError(
                        f"the delta download of entry {entry_id} failed twice without being "
                        "charged; try again later"
                    ) from exc
                continue  # surely not charged (no new entry, same balance): one more try
            rows = _count_csv_rows(part)
            os.replace(part, target)
            return Delta(target, history_id, rows, rows)
        raise AssertionError("unreachable")  # pragma: no cover

    def _fetch_delta(self, entry_id: int, part: Path) -> int | None:
        response = self._client.transport.request(
            "GET", f"{_PATH}/{int(entry_id)}/download-delta", charging=True, stream=True
        )
        with contextlib.closing(response):
            header = response.headers.get(_HISTORY_ID_HEADER)
            total = optional_int(response.headers.get("Content-Length"))
            written = write_body(response, part)
        if total is not None and written != total:
            raise TransportError(f"delta body has {written} of {total} bytes")
        return optional_int(header)


def _utc_column(values: list[datetime | None]) -> pd.Series:
    return pd.to_datetime(pd.Series(values, dtype=object), utc=True)


def _count_csv_rows(path: Path) -> int:
    """Count the data rows of a CSV file (quoted fields may span lines, so parse it)."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return 0
        return sum(1 for _ in reader)
