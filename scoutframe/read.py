"""``read_spherescout``: a search as a DataFrame, by pages (free) or by an export (full data).

A thin, keyword-heavy front door over :class:`~scoutframe.client.Client` (the wire),
:mod:`scoutframe.jobs` (export jobs) and :mod:`scoutframe.frames` (schema and conversion).

Methods
-------
``"pages"``
    Walks the search's pages (50 rows a page, free, **emails masked**), deduplicated and
    reconciled against ``totalCount`` (:mod:`scoutframe.pages`). No row read is ever dropped.
``"export"``
    Runs an export job (one credit per **matching** contact, whatever ``nrows`` says), streams
    the CSV to a temporary directory (removed afterwards, also on errors and interrupts) and
    parses it column-wise with pyarrow.
``"auto"`` (default)
    Pages when the read returns at most :data:`AUTO_PAGES_MAX_ROWS` rows (the matching
    contacts, or ``nrows`` when smaller), otherwise an export. The choice and its reason are
    logged (logger ``scoutframe.read``) and stored in the provenance and in :class:`ReadPlan`.

This module imports nothing heavy at import time (no tqdm, no requests, no sandbox), so
:func:`register_pandas` can run from ``import scoutframe``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import numbers
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import pandas as pd
import pyarrow as pa

from . import frames
from .frames import (
    DtypeBackend,
    MaskedEmailWarning,
    Provenance,
    SchemaDriftWarning,
    warn_from_caller,
)
from .pages import DEFAULT_CONCURRENCY, PageDriftWarning, PageWalker, batched_tables
from .progress import Bar, progress_enabled

if TYPE_CHECKING:
    import polars

    from .client import Client
    from .filters import Filters
    from .jobs import ExportJob, ExportStatus
    from .models import SearchPage

__all__ = [
    "AUTO_PAGES_MAX_ROWS",
    "PageDriftWarning",
    "ReadPlan",
    "read_export_csv",
    "read_spherescout",
    "register_pandas",
]

logger = logging.getLogger(__name__)

#: ``method="auto"`` reads by pages up to this many rows (10 free requests), by export above.
AUTO_PAGES_MAX_ROWS = 500
#: Rows per Arrow table built from page records when no chunksize is asked for.
_PAGE_TABLE_ROWS = 5_000

Method = Literal["auto", "pages", "export"]
ReturnType = Literal["pandas", "arrow", "polars"]


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


# --------------------------------------------------------------------------------------------
# Public entry point

# Overloads: a plan for dry runs, an iterator with chunksize, else one object per return_type.


@overload
def read_spherescout(
    filters: Filters | Mapping[str, Any] | str | None = ...,
    /,
    *,
    dry_run: Literal[True],
    client: Client | None = ...,
    method: Method = ...,
    columns: Sequence[str] | None = ...,
    nrows: int | None = ...,
    chunksize: int | None = ...,
    dtype_backend: DtypeBackend = ...,
    return_type: ReturnType = ...,
    progress: bool | None = ...,
    max_credits: int | None = ...,
    concurrency: int = ...,
    **filter_kwargs: Any,
) -> ReadPlan: ...


@overload
def read_spherescout(
    filters: Filters | Mapping[str, Any] | str | None = ...,
    /,
    *,
    chunksize: int,
    return_type: Literal["pandas"] = ...,
    dry_run: Literal[False] = ...,
    client: Client | None = ...,
    method: Method = ...,
    columns: Sequence[str] | None = ...,
    nrows: int | None = ...,
    dtype_backend: DtypeBackend = ...,
    progress: bool | None = ...,
    max_credits: int | None = ...,
    concurrency: int = ...,
    **filter_kwargs: Any,
) -> Iterator[pd.DataFrame]: ...


@overload
def read_spherescout(
    filters: Filters | Mapping[str, Any] | str | None = ...,
    /,
    *,
    chunksize: int,
    return_type: Literal["arrow"],
    dry_run: Literal[False] = ...,
    client: Client | None = ...,
    method: Method = ...,
    columns: Sequence[str] | None = ...,
    nrows: int | None = ...,
    dtype_backend: DtypeBackend = ...,
    progress: bool | None = ...,
    max_credits: int | None = ...,
    concurrency: int = ...,
    **filter_kwargs: Any,
) -> Iterator[pa.Table]: ...


@overload
def read_spherescout(
    filters: Filters | Mapping[str, Any] | str | None = ...,
    /,
    *,
    chunksize: None = ...,
    return_type: Literal["pandas"] = ...,
    dry_run: Literal[False] = ...,
    client: Client | None = ...,
    method: Method = ...,
    columns: Sequence[str] | None = ...,
    nrows: int | None = ...,
    dtype_backend: DtypeBackend = ...,
    progress: bool | None = ...,
    max_credits: int | None = ...,
    concurrency: int = ...,
    **filter_kwargs: Any,
) -> pd.DataFrame: ...


@overload
def read_spherescout(
    filters: Filters | Mapping[str, Any] | str | None = ...,
    /,
    *,
    return_type: Literal["arrow"],
    chunksize: None = ...,
    dry_run: Literal[False] = ...,
    client: Client | None = ...,
    method: Method = ...,
    columns: Sequence[str] | None = ...,
    nrows: int | None = ...,
    dtype_backend: DtypeBackend = ...,
    progress: bool | None = ...,
    max_credits: int | None = ...,
    concurrency: int = ...,
    **filter_kwargs: Any,
) -> pa.Table: ...


@overload
def read_spherescout(
    filters: Filters | Mapping[str, Any] | str | None = ...,
    /,
    *,
    return_type: Literal["polars"],
    chunksize: None = ...,
    dry_run: Literal[False] = ...,
    client: Client | None = ...,
    method: Method = ...,
    columns: Sequence[str] | None = ...,
    nrows: int | None = ...,
    dtype_backend: DtypeBackend = ...,
    progress: bool | None = ...,
    max_credits: int | None = ...,
    concurrency: int = ...,
    **filter_kwargs: Any,
) -> polars.DataFrame: ...


def read_spherescout(
    filters: Filters | Mapping[str, Any] | str | None = None,
    /,
    *,
    client: Client | None = None,
    method: Method = "auto",
    columns: Sequence[str] | None = None,
    nrows: int | None = None,
    chunksize: int | None = None,
    dtype_backend: DtypeBackend = "pyarrow",
    return_type: ReturnType = "pandas",
    progress: bool | None = None,
    max_credits: int | None = None,
    dry_run: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    **filter_kwargs: Any,
) -> Any:
    """Read the contacts matching a search into a DataFrame.

    Also available as ``pd.read_spherescout`` once ``scoutframe`` is imported.

    Parameters
    ----------
    filters
        A :class:`~scoutframe.filters.Filters`, a mapping of filters, or a search id string
        (export only). Keyword filters (``countries="FR"``, ``category="Plumber"``,
        ``email=True``, ...) are merged in, as ``Filters.from_any`` accepts them.
    client
        The client to use; default: one built from the environment (``SPHERESCOUT_API_KEY``,
        ``SPHERESCOUT_BASE_URL``), closed afterwards.
    method
        ``"auto"`` (default), ``"pages"`` (free, emails masked) or ``"export"`` (full data,
        1 credit per matching contact). See the module documentation.
    columns
        Return only these columns, in this order.
    nrows
        Return at most this many rows. With ``method="auto"`` a small ``nrows`` (at most
        :data:`AUTO_PAGES_MAX_ROWS`) reads by pages, free. **An export still charges every
        matching contact**, however few rows are returned; ``dry_run=True`` shows the cost.
    chunksize
        Return an iterator of frames of this many rows (bounded memory).
    dtype_backend
        ``"pyarrow"`` (``pd.ArrowDtype`` columns) or ``"numpy_nullable"``.
    return_type
        ``"pandas"`` (default), ``"arrow"`` (a ``pyarrow.Table``; provenance in the schema
        metadata under ``b"scoutframe"``) or ``"polars"``.
    progress
        Show progress bars; default: on unless ``SCOUTFRAME_PROGRESS=0``.
    max_credits
        Refuse with :class:`~scoutframe.errors.BudgetError`, before spending anything, when
        the read would cost more credits.
    dry_run
        Spend nothing; return the :class:`ReadPlan`.
    concurrency
        Page requests in flight at once (``method="pages"``).
    **filter_kwargs
        Filters by keyword.

    Returns
    -------
    pandas.DataFrame or Iterator[pandas.DataFrame] or pyarrow.Table or ReadPlan
        Every frame carries its provenance in ``df.attrs["scoutframe"]``. pandas keeps
        ``attrs`` through ``df.copy()``, slicing, column selection and ``pd.concat`` of
        frames with equal ``attrs`` (the chunks of one read share theirs); it drops them when
        concatenating frames of different reads. ``df.spherescout.provenance`` is then
        ``None``.

    Warns
    -----
    MaskedEmailWarning
        Once per read by pages: the ``email`` column holds masked placeholders.
    SchemaDriftWarning
        The API sent columns the schema does not know (kept as strings).
    PageDriftWarning
        The result kept changing while it was paged.

    Examples
    --------
    >>> df = pd.read_spherescout(countries="FR", category="Plumber", client=client)
    ... # doctest: +SKIP
    >>> plan = pd.read_spherescout(countries="US", dry_run=True, client=client)
    ... # doctest: +SKIP
    """
    if method not in ("auto", "pages", "export"):
        raise ValueError(f"method must be 'auto', 'pages' or 'export', not {method!r}")
    if return_type not in ("pandas", "arrow", "polars"):
        raise ValueError(f"return_type must be 'pandas', 'arrow' or 'polars', not {return_type!r}")
    if dtype_backend not in ("pyarrow", "numpy_nullable"):
        raise ValueError(
            f"dtype_backend must be 'pyarrow' or 'numpy_nullable', not {dtype_backend!r}"
        )
    _check_count("nrows", nrows, minimum=0)
    _check_count("chunksize", chunksize, minimum=1)
    _check_count("max_credits", max_credits, minimum=0)
    _check_count("concurrency", concurrency, minimum=1)
    if chunksize is not None and return_type == "polars":
        raise ValueError("chunksize is not supported with return_type='polars'")
    if "filters" in filter_kwargs:
        raise TypeError(
            "read_spherescout() takes the filters mapping as its first positional argument, "
            "not filters=...: write read_spherescout({...}) or pass each filter as a keyword "
            "(countries='FR', category='Plumber')"
        )
    own_client = client is None
    if client is None:
        from .client import Client

        client = Client()
    reader = _Reader(
        client,
        filters,
        filter_kwargs,
        method=method,
        columns=frames.check_columns(columns),
        nrows=nrows,
        dtype_backend=dtype_backend,
        progress=progress_enabled(progress),
        max_credits=max_credits,
        concurrency=concurrency,
    )
    streaming = False
    try:
        plan = reader.plan(with_balance=dry_run)
        if dry_run:
            return plan
        reader.check_budget(plan)
        if plan.method == "pages":
            warn_from_caller(
                "Emails from search pages are masked (e.g. 'j***@d*****.fr'), not real "
                "addresses; df.attrs['scoutframe']['emails_masked'] is True. Use "
                "method='export' (1 credit a contact) for full data.",
                MaskedEmailWarning,
            )
        if chunksize is not None:
            streaming = True
            tables = reader.tables(chunksize)
            if return_type == "arrow":
                return _closing(reader.arrow_chunks(tables), client if own_client else None)
            return _closing(reader.frame_chunks(tables), client if own_client else None)
        table = reader.table()
        if return_type == "arrow":
            return reader.with_metadata(table)
        if return_type == "polars":
            return frames.to_polars(table)
        return frames.to_pandas(
            table, dtype_backend=dtype_backend, provenance=reader.provenance(),
            self_destruct=True,
        )
    finally:
        if own_client and not streaming:
            client.close()


def read_export_csv(
    path: str | Path,
    *,
    columns: Sequence[str] | None = None,
    dtype_backend: DtypeBackend = "pyarrow",
) -> pd.DataFrame:
    """Read a downloaded export (or delta) CSV into the typed contacts frame.

    ``pd.read_csv`` loses what the API's CSV format means: leading zeros of postal codes
    and phone numbers, ``email``/``phone``/``categories`` lists (they come back as strings),
    UTC timestamps. This parses the file column-wise with the same schema
    ``read_spherescout`` uses, without any request.

    Parameters
    ----------
    path
        The CSV file, as written by ``ExportJob.download`` or ``client.history.download_delta``.
    columns
        Return only these columns, in this order.
    dtype_backend
        ``"pyarrow"`` (``pd.ArrowDtype`` columns, default) or ``"numpy_nullable"``.

    Returns
    -------
    pandas.DataFrame
        One row per contact, no provenance (``df.attrs`` is empty: the file alone does not
        say which search it came from).

    Warns
    -----
    SchemaDriftWarning
        The file has columns the schema does not know (kept as strings).

    Examples
    --------
    >>> job.download("plumbers.csv")  # doctest: +SKIP
    >>> df = read_export_csv("plumbers.csv")  # doctest: +SKIP
    """
    if dtype_backend not in ("pyarrow", "numpy_nullable"):
        raise ValueError(
            f"dtype_backend must be 'pyarrow' or 'numpy_nullable', not {dtype_backend!r}"
        )
    table = frames.read_csv(path, columns=frames.check_columns(columns))
    return frames.to_pandas(table, dtype_backend=dtype_backend, self_destruct=True)


def _check_count(name: str, value: object, *, minimum: int) -> None:
    """Refuse an option that must be a whole number >= ``minimum`` (or ``None``)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        hint = ""
        if isinstance(value, str) and value.strip().isdigit():
            hint = f"; write {name}={int(value)} (a number, not a string)"
        elif isinstance(value, float) and value.is_integer():
            hint = f"; write {name}={int(value)}"
        raise TypeError(
            f"{name} must be a whole number (int) >= {minimum}, not {value!r} "
            f"({type(value).__name__}){hint}"
        )
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, not {value}")


def register_pandas() -> None:
    """Expose ``pd.read_spherescout`` and register the ``df.spherescout`` accessor."""
    from . import accessor  # noqa: F401 - importing it registers the accessor

    pd.read_spherescout = read_spherescout  # type: ignore[attr-defined]


def _closing(chunks: Iterator[Any], client: Client | None) -> Iterator[Any]:
    """Close a client we created once the caller is done with the chunks."""
    try:
        yield from chunks
    finally:
        if client is not None:
            client.close()


# --------------------------------------------------------------------------------------------
# The reader


class _Reader:
    """One read: plan, then produce Arrow tables by pages or by export."""

    def __init__(
        self,
        client: Client,
        filters: Filters | Mapping[str, Any] | str | None,
        filter_kwargs: Mapping[str, Any],
        *,
        method: Method,
        columns: list[str] | None,
        nrows: int | None,
        dtype_backend: DtypeBackend,
        progress: bool,
        max_credits: int | None,
        concurrency: int,
    ) -> None:
        self.client = client
        self.method_asked = method
        self.columns = columns
        self.nrows = nrows
        self.dtype_backend = dtype_backend
        self.progress = progress
        self.max_credits = max_credits
        self.search_id: str | None = None
        self.walker: PageWalker | None = None
        if isinstance(filters, str):
            if filter_kwargs:
                raise ValueError("Pass either a search id or filters, not both")
            self.search_id = filters
        else:
            from .filters import Filters

            resolved = Filters.from_any(filters, **filter_kwargs)
            self.walker = PageWalker(client, resolved, nrows=nrows, concurrency=concurrency,
                                     progress=progress)  # fmt: skip
        self.first_page: SearchPage | None = None
        self.total_count: int | None = None
        self.method: Literal["pages", "export"] = "pages"
        self.credits_spent = 0
        self.task_id: str | None = None
        self.history_id: int | None = None
        self.reason = ""
        self._drift_seen: set[str] = set()
        self._provenance: Provenance | None = None

    @property
    def filters(self) -> Filters | None:
        """The resolved filters (``None`` when only a search id is known)."""
        return None if self.walker is None else self.walker.filters

    # -- planning -------------------------------------------------------------------------

    def plan(self, *, with_balance: bool) -> ReadPlan:
        """Count the matches (one free request) and choose the method.

        The balance (one more request) is looked up only for a dry run; an export start
        checks it anyway.
        """
        rows: int | None = None
        walker = self.walker
        if walker is not None:
            if not walker.filters.is_resolved():
                walker.filters = walker.filters.resolve(self.client)
            self.first_page = first = walker.fetch(1)
            if first is None:  # no page 1: nothing matches; the preview still says so
                first = self.client.search(walker.filters)
            self.search_id = first.search_id
            self.total_count = first.total_count
            rows = self.total_count if self.nrows is None else min(self.total_count, self.nrows)
        known = ""
        if walker is None and with_balance:
            rows, known = self._look_up_search_id()
        method, why = self._choose(rows)
        why += known
        self.method = method
        needed = self.total_count if method == "export" else 0
        available = self.client.profile().credits if with_balance else None
        if method == "export" and needed and available is not None and needed > available:
            why += f"; the account has only {available:,} credits"
        if self.max_credits is not None and needed is not None and needed > self.max_credits:
            why += f"; over max_credits={self.max_credits:,}"
        self.reason = why
        logger.info("read_spherescout: method %s: %s", method, why)
        return ReadPlan(
            rows=rows, method=method, credits_needed=needed, credits_available=available,
            search_id=self.search_id, why=why, total_count=self.total_count,
        )

    def _look_up_search_id(self) -> tuple[int | None, str]:
        """Find a bare search id among saved handles and the export history (free calls).

        Returns the rows an export would give (``None`` when unknown) and words for the
        plan's ``why``. The API has no free lookup of a search id that was never exported,
        so such an id is reported as unchecked rather than refused.
        """
        from .errors import APIError, FilterError, TransportError
        from .filters import Filters

        client = self.client
        sid = str(self.search_id)
        handle = client.exports.store.find(sid, origin=client.base_url)
        filters = None
        count: int | None = None
        where = ""
        if handle is not None:
            where = "a saved export handle"
            count = handle.get("lead_count")
            if isinstance(handle.get("filters"), Mapping):
                filters = Filters.from_any(handle["filters"])
        else:
            for entry in client.history.entries():  # newest first
                if entry.search_id == sid:
                    where = "the export history"
                    count = entry.row_count
                    with contextlib.suppress(ValueError, TypeError, LookupError):
                        filters = Filters.from_any(entry.filters) if entry.filters else None
                    break
        if not where:
            return None, (
                f"; search id {sid!r} is not in this client's saved exports nor the export "
                "history, and the API has no free lookup of a search id, so it is unchecked: "
                "an unknown id is refused (404, nothing spent) when the export starts"
            )
        if filters is not None:
            # A fresh count (free) when possible; the recorded count stands in otherwise.
            with contextlib.suppress(APIError, TransportError, FilterError):
                page = client.search(filters.resolve(client))
                if page.search_id in (None, sid):
                    count = page.total_count
        if count is not None:
            self.total_count = int(count)
            rows = self.total_count if self.nrows is None else min(self.total_count, self.nrows)
            return rows, f"; search {sid} found in {where}"
        return None, f"; search {sid} found in {where} (its size is not recorded)"

    def _choose(self, rows: int | None) -> tuple[Literal["pages", "export"], str]:
        if self.filters is None:
            if self.method_asked == "pages":
                raise ValueError(
                    "method='pages' needs filters; a search id alone can only be exported"
                )
            return "export", "a search id alone can only be read by an export"
        assert rows is not None  # set whenever filters are
        assert self.total_count is not None
        cost = f"{self.total_count:,} credits" if self.total_count else "no credits"
        if self.nrows is not None and self.nrows < self.total_count:
            cost += f" (all {self.total_count:,} matching contacts, although nrows={self.nrows:,})"
        if self.method_asked == "pages":
            return "pages", f"method='pages' asked: {rows:,} rows free, emails masked"
        if self.method_asked == "export":
            return "export", f"method='export' asked: full data for {cost}"
        if rows <= AUTO_PAGES_MAX_ROWS:
            return "pages", (
                f"auto: {rows:,} rows <= {AUTO_PAGES_MAX_ROWS} read by pages "
                "(free, emails masked)"
            )
        return "export", (
            f"auto: {rows:,} rows > {AUTO_PAGES_MAX_ROWS} read by export "
            f"(full data, {cost})"
        )

    def check_budget(self, plan: ReadPlan) -> None:
        """Refuse before spending when the plan costs more than ``max_credits``."""
        from .endpoints.exports import check_budget

        if plan.method == "export":
            check_budget(
                plan.credits_needed, self.max_credits, what="this export",
                hint="Narrow the filters, raise max_credits, or use method='pages' (free, "
                "emails masked).",
            )

    # -- provenance -------------------------------------------------------------------------

    def provenance(self) -> Provenance:
        """Return the provenance of this read (fixed once the data is in)."""
        if self._provenance is None:
            from . import __version__

            self._provenance = Provenance(
                filters=self.filters.to_dict() if self.filters is not None else {},
                search_id=self.search_id,
                total_count=self.total_count,
                method=self.method,
                credits_spent=self.credits_spent,
                task_id=self.task_id,
                history_id=self.history_id,
                fetched_at=datetime.now(UTC).isoformat(timespec="seconds"),
                api_origin=str(self.client.base_url),
                library_version=__version__,
                emails_masked=self.method == "pages",
                reason=self.reason,
            )
        return self._provenance

    def with_metadata(self, table: pa.Table) -> pa.Table:
        """Attach the provenance to an Arrow table's schema metadata."""
        meta = dict(table.schema.metadata or {})
        meta[b"scoutframe"] = json.dumps(self.provenance().to_dict()).encode()
        return table.replace_schema_metadata(meta)

    # -- outputs --------------------------------------------------------------------------

    def table(self) -> pa.Table:
        """Read the whole result as one Arrow table."""
        if self.method == "pages":
            parts = list(self._page_tables(_PAGE_TABLE_ROWS))
            if not parts:
                return frames.empty_table(self.columns)
            return pa.concat_tables(parts, promote_options="default").combine_chunks()
        with (
            self._export_csv() as path,
            Bar.rows(self.progress, self.total_count, "parsing") as bar,
        ):
            table = frames.read_csv(path, columns=self.columns, nrows=self.nrows,
                                    warn_drift=False)  # fmt: skip
            bar.update(table.num_rows)
        self._check_drift(table)
        return table

    def tables(self, chunksize: int) -> Iterator[pa.Table]:
        """Read the result as tables of *chunksize* rows, lazily (nothing runs until asked)."""
        if self.method == "pages":
            yield from self._page_tables(chunksize)
            return
        with (
            self._export_csv() as path,
            Bar.rows(self.progress, self.total_count, "parsing") as bar,
        ):
            for table in frames.iter_csv(path, chunksize=chunksize, columns=self.columns,
                                         nrows=self.nrows, warn_drift=False):  # fmt: skip
                self._check_drift(table)
                bar.update(table.num_rows)
                yield table

    def frame_chunks(self, tables: Iterator[pa.Table]) -> Iterator[pd.DataFrame]:
        """Convert chunk tables to frames with a continuing index and the provenance."""
        start = 0
        for table in tables:
            n = table.num_rows
            yield frames.to_pandas(
                table, dtype_backend=self.dtype_backend, provenance=self.provenance(),
                index_start=start, self_destruct=True,
            )
            start += n

    def arrow_chunks(self, tables: Iterator[pa.Table]) -> Iterator[pa.Table]:
        """Attach the provenance to each chunk table."""
        for table in tables:
            yield self.with_metadata(table)

    def _check_drift(self, table: pa.Table) -> None:
        new = [c for c in frames.drift_columns(table) if c not in self._drift_seen]
        if new:
            self._drift_seen.update(new)
            warn_from_caller(frames.drift_message(new), SchemaDriftWarning)

    def _page_tables(self, rows: int) -> Iterator[pa.Table]:
        assert self.walker is not None  # pages are only chosen with filters
        walker = self.walker
        for table in batched_tables(walker.records(self.first_page), rows, self._records_table):
            self.total_count = walker.total_count  # a later pass may have seen a new count
            yield table
        self.total_count = walker.total_count

    def _records_table(self, records: list[dict[str, Any]]) -> pa.Table:
        table = frames.records_to_table(records, columns=self.columns, warn_drift=False)
        self._check_drift(table)
        return table

    # -- export -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _export_csv(self) -> Iterator[Path]:
        """Run the export job and stream its CSV into a temporary directory, removed on exit.

        The directory goes on every exit, an error or Ctrl-C included, part file and all.
        """
        target: Filters | str
        if self.filters is not None:
            target = self.filters
        else:
            assert self.search_id is not None  # one of the two is always set
            target = self.search_id
        job = self._saved_job()
        if job is not None:
            logger.info("read_spherescout: resuming export %s, started and paid for by an "
                        "earlier read of the same search (no new charge)", job.job_id)
        else:
            job = self.client.exports.start(target, max_credits=self.max_credits)
        self._note_job(job)
        directory: Path | None = None
        try:
            with Bar.export(self.progress) as bar:
                job.wait(on_status=_export_status_callback(bar))
            self._note_job(job)
            directory = Path(tempfile.mkdtemp(prefix="scoutframe-"))
            with Bar.download(self.progress) as bar:

                def on_bytes(done: int, total: int | None) -> None:
                    bar.set_total(total)
                    bar.set_progress(done)

                path = job.download(directory / "export.csv", on_bytes=on_bytes)
        except KeyboardInterrupt as exc:
            exc.add_note(
                f"scoutframe: export {job.job_id} is paid for and its handle is saved; run the "
                "same read_spherescout call again to resume it without paying again (or "
                f"client.export_job({job.job_id!r}).wait() then .download(path))"
            )
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)
            raise
        except BaseException:
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)
            raise
        try:
            self._note_job(job)
            yield path
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def _saved_job(self) -> ExportJob | None:
        """Return an active export of this search saved by an earlier (interrupted) read.

        Matches on the canonical filters, else the search id, among the handles this client's
        origin saved; a job that failed, or whose download link expired, is not reused. The
        check is one free status request per candidate.
        """
        from .errors import APIError, TransportError

        filters = self.filters
        key = None if filters is None else filters.cache_key
        for job in self.client.exports.list_saved():
            same = (
                job.filters.cache_key == key
                if key is not None and job.filters is not None
                else bool(self.search_id) and job.search_id == self.search_id
            )
            if not same:
                continue
            try:
                status = job.refresh()
            except (APIError, TransportError):
                continue  # not this account's, or gone: start afresh
            if status.status == "failed":
                continue
            if status.status == "ready" and (
                status.download_url is None
                or (status.expires_at is not None and status.expires_at <= datetime.now(UTC))
            ):
                continue
            return job
        return None

    def _note_job(self, job: ExportJob) -> None:
        self.search_id = job.search_id or self.search_id
        self.task_id = job.task_id
        self.history_id = job.history_id
        if job.lead_count is not None:
            self.credits_spent = job.lead_count
            if self.total_count is None:
                self.total_count = job.lead_count


def _export_status_callback(bar: Bar) -> Callable[[ExportStatus], None]:
    def on_status(status: ExportStatus) -> None:
        if status.progress is not None:
            bar.set_progress(status.progress * 100 if status.progress <= 1 else status.progress)
        if status.status == "ready":
            bar.set_progress(100)
        bar.status(status.status)

    return on_status
