"""Export history, freshness checks and delta downloads (``/api/user/search-history``)."""

from __future__ import annotations

import contextlib
import csv
import os
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import pandas as pd
import pyarrow as pa

from ...errors import AnswerTooLargeError, TransportError
from ...files import ROW_BYTES_ESTIMATE, atomic_path, ensure_room
from ...models import Delta, Freshness, HistoryEntry, optional_int
from ..billing import ChargingCall, charge_once, ensure_affordable
from ..bodies import MAX_ROW_BYTES, BodyTooLargeError, BodyTooSlowError, Pace, paid_bytes
from ..downloads import write_body

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["Delta", "Freshness", "History", "HistoryEntry"]

_PATH = "/api/user/search-history"
_HISTORY_ID_HEADER = "X-Search-History-Id"


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
        freshness: Freshness | None = None,
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
        freshness
            The entry's freshness, when the caller has just asked for it (not asked again).

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
        entry_id = int(entry_id)
        if freshness is None or freshness.id != entry_id:
            freshness = self.freshness(entry_id)
        expected = freshness.new_count
        target = Path(path)
        # The API serves a delta's body once: with no room for it, it is not bought at all.
        ensure_room(
            target,
            expected * ROW_BYTES_ESTIMATE,
            what=f"the delta of history entry {entry_id}",
            kept="Nothing was paid.",
        )
        balance = ensure_affordable(
            client,
            expected,
            max_credits,
            what=f"the delta of history entry {entry_id}",
            hint="Raise max_credits, or check freshness() until fewer contacts are new.",
        )

        def send() -> Delta:
            with atomic_path(target, private=True) as temp:
                history_id = self._fetch_delta(entry_id, temp, expected)
                rows = _count_csv_rows(temp)
            return Delta(target, history_id, rows, rows)

        def trace() -> str:
            with contextlib.suppress(Exception):  # best effort: only for the message
                found = client.job_store.newest_delta(entry_id)
                if found is not None:
                    return f" as history entry {found.id}"
            return ""

        call = ChargingCall(
            what=f"the delta download of entry {entry_id}",
            send=send,
            adopt=lambda: None,  # a delta's body is served once: it cannot be fetched again
            error=lambda message, _charged: TransportError(message),
            trace=trace,
        )
        return charge_once(client, call, balance=balance)

    def _fetch_delta(self, entry_id: int, path: Path, rows: int) -> int | None:
        transport = self._client.transport
        response = transport.request(
            "GET", f"{_PATH}/{entry_id}/download-delta", charging=True, stream=True
        )
        with contextlib.closing(response):
            header = response.headers.get(_HISTORY_ID_HEADER)
            total = optional_int(response.headers.get("Content-Length"))
            limit = paid_bytes(rows)
            try:
                written = write_body(
                    response,
                    path,
                    limit=limit,
                    pace=Pace(transport.timeout[1]),
                    expected=total,
                    what=f"the delta download of history entry {entry_id}",
                    kept=f"The server recorded it as a new history entry ({header or '?'}): "
                    "the next delta from this entry includes the same rows again (the API "
                    "serves a delta once)",
                )
            except BodyTooLargeError as exc:
                raise AnswerTooLargeError(
                    response.status_code,
                    f"the delta of history entry {entry_id} went past {exc.limit:,} bytes, "
                    f"more than its {rows:,} paid rows can take ({MAX_ROW_BYTES:,} bytes a row "
                    "at most); it was refused and nothing of it kept",
                    limit=exc.limit,
                    hint="The server is not behaving as SphereScout does; tell SphereScout "
                    "support (the delta was charged)",
                ) from None
            except BodyTooSlowError as exc:
                raise TransportError(
                    f"the delta of history entry {entry_id} came too slowly ({exc}); it was "
                    "stopped and nothing of it kept"
                ) from None
        if total is not None and written != total:
            raise TransportError(f"delta body has {written} of {total} bytes")
        return optional_int(header)


def _utc_column(values: list[datetime | None]) -> pd.Series:
    return pd.to_datetime(pd.Series(values, dtype=object), utc=True)


def _count_csv_rows(path: Path) -> int:
    """Count the data rows of a CSV file (quoted fields may span lines, so parse it)."""
    import pyarrow.csv as pacsv

    if path.stat().st_size == 0:
        return 0
    options = pacsv.ConvertOptions(column_types={}, include_columns=[])
    try:
        reader = pacsv.open_csv(
            path, parse_options=pacsv.ParseOptions(newlines_in_values=True), convert_options=options
        )
    except pa.ArrowInvalid:  # rows pyarrow refuses (ragged, blank lines only): count by hand
        with open(path, encoding="utf-8", newline="") as handle:
            return max(0, sum(1 for _ in csv.reader(handle)) - 1)
    with reader:
        return sum(batch.num_rows for batch in reader)
