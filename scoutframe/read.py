"""``read_spherescout``: a search as a DataFrame, by pages (free) or by an export (full data).

A thin, keyword-heavy front door over :class:`~scoutframe.client.Client` (the wire),
:mod:`scoutframe.jobs` (export jobs) and :mod:`scoutframe.frames` (schema and conversion).

Methods
-------
``"pages"``
    Walks ``/api/companies?paginate=true`` (50 rows a page, free, **emails masked**), a few pages
    at a time on the client's session, in order, deduplicated by ``place_id`` and reconciled
    against ``totalCount``: when the count changes under the reader or pages overlap or skip,
    the pages are walked again (only unseen rows are added) and, if they still disagree, a
    :class:`PageDriftWarning` says exactly what was seen. No row read is ever dropped.
``"export"``
    Runs an export job (one credit per matching contact), streams the CSV to a temporary file
    and parses it column-wise with pyarrow.
``"auto"`` (default)
    Pages when the read returns at most :data:`AUTO_PAGES_MAX_ROWS` rows, otherwise an export.
    The choice and its reason are logged (logger ``scoutframe.read``) and stored in the
    provenance and in :class:`ReadPlan`.

This module imports nothing heavy at import time (no tqdm, no requests, no sandbox), so
:func:`register_pandas` can run from ``import scoutframe``.
"""

from __future__ import annotations

import logging
import math
import random
import shutil
import tempfile
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import pandas as pd
import pyarrow as pa

from . import frames
from .frames import DtypeBackend, MaskedEmailWarning, Provenance, SchemaDriftWarning
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
    "read_spherescout",
    "register_pandas",
]

logger = logging.getLogger(__name__)

#: ``method="auto"`` reads by pages up to this many rows (10 free requests), by export above.
AUTO_PAGES_MAX_ROWS = 500
#: Rows per search page (fixed by the API).
PAGE_SIZE = 50
#: Concurrent page requests. Against a rate-limited server the limit, not this number, sets
#: the pace: the transport waits out each 429's Retry-After and :meth:`_Reader._page` pauses
#: and retries a page whose retries ran out. Kept below requests' connection-pool size (10).
DEFAULT_CONCURRENCY = 8
#: Extra attempts of a page after the transport gave up on a 429.
_RATE_LIMIT_ATTEMPTS = 5
#: How many times the pages are walked before giving up on a consistent count.
MAX_PAGE_PASSES = 3
#: Rows per Arrow table built from page records when no chunksize is asked for.
_PAGE_TABLE_ROWS = 5_000

Method = Literal["auto", "pages", "export"]
ReturnType = Literal["pandas", "arrow", "polars"]


class PageDriftWarning(UserWarning):
    """The result changed while it was being paged, and re-reading did not settle it."""


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
        Return at most this many rows (an export still charges every matching contact).
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
        Every frame carries its provenance in ``df.attrs["scoutframe"]``.

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
    if nrows is not None and nrows < 0:
        raise ValueError("nrows must be >= 0")
    if chunksize is not None and chunksize < 1:
        raise ValueError("chunksize must be a positive integer")
    if chunksize is not None and return_type == "polars":
        raise ValueError("chunksize is not supported with return_type='polars'")
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
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
            warnings.warn(
                "Emails from search pages are masked (e.g. 'j***@d*****.fr'), not real "
                "addresses; df.attrs['scoutframe']['emails_masked'] is True. Use "
                "method='export' (1 credit a contact) for full data.",
                MaskedEmailWarning,
                stacklevel=2,
            )
        if chunksize is not None:
            streaming = True
            tables = reader.tables(chunksize)
            if return_type == "arrow":
                return _closing(reader.arrow_chunks(tables), client if own_client else None)
            return _closing(reader.frame_chunks(tables), client if own_client else None)
        reader.defer_warnings = True
        table = reader.table()
        for message, category in reader.deferred:  # warned here to point at the caller's line
            warnings.warn(message, category, stacklevel=2)
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
        self.concurrency = concurrency
        self.search_id: str | None = None
        self.filters: Filters | None = None
        if isinstance(filters, str):
            if filter_kwargs:
                raise ValueError("Pass either a search id or filters, not both")
            self.search_id = filters
        else:
            from .filters import Filters

            self.filters = Filters.from_any(filters, **filter_kwargs)
        self.first_page: SearchPage | None = None
        self.total_count: int | None = None
        self.method: Literal["pages", "export"] = "pages"
        self.credits_spent = 0
        self.task_id: str | None = None
        self.history_id: int | None = None
        self.reason = ""
        self._drift_seen: set[str] = set()
        self.defer_warnings = False
        self.deferred: list[tuple[str, type[Warning]]] = []
        self._provenance: Provenance | None = None

    # -- planning -------------------------------------------------------------------------

    def plan(self, *, with_balance: bool) -> ReadPlan:
        """Count the matches (one free request) and choose the method.

        The balance (one more request) is looked up only for a dry run; an export start
        checks it anyway.
        """
        rows: int | None = None
        if self.filters is not None:
            if not self.filters.is_resolved():
                self.filters = self.filters.resolve(self.client)
            first = self._page(1)
            if first is None:  # no page 1: nothing matches; the preview still says so
                first = self.client.search(self.filters)
                self.first_page = None
            else:
                self.first_page = first
            self.search_id = first.search_id
            self.total_count = first.total_count
            rows = self.total_count if self.nrows is None else min(self.total_count, self.nrows)
        method, why = self._choose(rows)
        self.method = method
        if method == "export":
            needed: int | None = self.total_count
        else:
            needed = 0
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

    def _choose(self, rows: int | None) -> tuple[Literal["pages", "export"], str]:
        if self.filters is None:
            if self.method_asked == "pages":
                raise ValueError(
                    "method='pages' needs filters; a search id alone can only be exported"
                )
            return "export", "a search id alone can only be read by an export"
        assert rows is not None  # set whenever filters are known
        cost = f"{self.total_count:,} credits" if self.total_count else "no credits"
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
        from .errors import BudgetError

        if (
            plan.method == "export"
            and self.max_credits is not None
            and plan.credits_needed is not None
            and plan.credits_needed > self.max_credits
        ):
            raise BudgetError(
                f"This export would cost {plan.credits_needed:,} credits, more than "
                f"max_credits={self.max_credits:,}; nothing was spent. Narrow the filters, "
                "raise max_credits, or use method='pages' (free, emails masked)."
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
        import json

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
        path = self._export_to_disk()
        try:
            with Bar.rows(self.progress, self.total_count, "parsing") as bar:
                table = frames.read_csv(
                    path, columns=self.columns, nrows=self.nrows, warn_drift=False,
                )
                bar.update(table.num_rows)
            self._check_drift(table)
            return table
        finally:
            shutil.rmtree(path.parent, ignore_errors=True)

    def tables(self, chunksize: int) -> Iterator[pa.Table]:
        """Read the result as tables of *chunksize* rows, lazily (nothing runs until asked)."""
        if self.method == "pages":
            yield from self._page_tables(chunksize)
            return
        path = self._export_to_disk()
        try:
            with Bar.rows(self.progress, self.total_count, "parsing") as bar:
                for table in frames.iter_csv(
                    path, chunksize=chunksize, columns=self.columns, nrows=self.nrows,
                    warn_drift=False,
                ):
                    self._check_drift(table)
                    bar.update(table.num_rows)
                    yield table
        finally:
            shutil.rmtree(path.parent, ignore_errors=True)

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
            message = (
                f"Unknown column(s) {new} kept as strings; the API sent fields this version "
                "of scoutframe does not know."
            )
            self._warn(message, SchemaDriftWarning)

    def _warn(self, message: str, category: type[Warning]) -> None:
        if self.defer_warnings:
            self.deferred.append((message, category))
        else:
            warnings.warn(message, category, stacklevel=6)

    # -- pages ------------------------------------------------------------------------------

    def _page(self, number: int) -> SearchPage | None:
        from .errors import NotFoundError, RateLimitError

        for attempt in range(_RATE_LIMIT_ATTEMPTS + 1):
            try:
                return self.client.search(self.filters, page=number)
            except NotFoundError:  # a page past the last: the result shrank
                return None
            except RateLimitError as exc:
                if attempt == _RATE_LIMIT_ATTEMPTS:
                    raise
                wait = min(exc.retry_after or 1.0, 60.0) * (1 + random.random() / 4)
                logger.info("read_spherescout: page %d rate-limited; waiting %.1f s",
                            number, wait)
                time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _fetch(self, first: SearchPage, n_pages: int) -> Iterator[SearchPage | None]:
        """Yield pages 1..n in order, fetching up to ``concurrency`` ahead."""
        yield first
        if n_pages <= 1:
            return
        window = self.concurrency * 2
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="scoutframe-page") as pool:
            pending: deque[Future[SearchPage | None]] = deque()
            next_page = 2
            try:
                while pending or next_page <= n_pages:
                    while next_page <= n_pages and len(pending) < window:
                        pending.append(pool.submit(self._page, next_page))
                        next_page += 1
                    page = pending.popleft().result()
                    yield page
                    if page is None:
                        return
            finally:
                for future in pending:
                    future.cancel()

    def _page_records(self) -> Iterator[list[dict[str, Any]]]:
        """Yield the new unique records page by page; walk again while counts disagree."""
        seen: set[str] = set()
        limit = self.nrows
        first = self.first_page
        history: list[str] = []
        with Bar.rows(self.progress, self._expected(first), "pages") as bar:
            for attempt in range(1, MAX_PAGE_PASSES + 1):
                if first is None:
                    return
                expected = self._expected(first)
                n_pages = math.ceil(expected / PAGE_SIZE)
                totals: list[int] = []
                in_pass: set[str] = set()
                for page in self._fetch(first, n_pages):
                    if page is None:
                        totals.append(-1)
                        break
                    totals.append(page.total_count)
                    fresh: list[dict[str, Any]] = []
                    for record in page.contacts:
                        place_id = str(record.get("place_id"))
                        in_pass.add(place_id)
                        if place_id not in seen and (limit is None or len(seen) < limit):
                            seen.add(place_id)
                            fresh.append(record)
                    bar.update(len(fresh))
                    if fresh:
                        yield fresh
                    if limit is not None and len(seen) >= limit:
                        return
                counts = sorted(set(totals))
                if len(counts) == 1 and counts[0] >= 0 and len(in_pass) >= expected:
                    return
                history.append(
                    f"pass {attempt}: totalCount {first.total_count:,} at page 1, "
                    f"{'/'.join(f'{c:,}' for c in counts if c >= 0)} seen, "
                    f"{len(in_pass):,} distinct rows in {len(totals)} pages"
                    + ("; a page past the end answered 404" if -1 in counts else "")
                )
                logger.info("read_spherescout: pages changed while reading (%s); reading "
                            "them again", history[-1])
                first = self._page(1)
                if first is not None:
                    self.total_count = first.total_count
                    bar.set_total(self._expected(first))
        self._warn(
            f"The result kept changing while it was paged ({'; '.join(history)}). "
            f"Returning the {len(seen):,} distinct rows seen; the latest totalCount is "
            f"{self.total_count:,}. Read again, or use method='export' for a consistent "
            "snapshot.",
            PageDriftWarning,
        )

    def _expected(self, page: SearchPage | None) -> int:
        total = 0 if page is None else page.total_count
        return total if self.nrows is None else min(total, self.nrows)

    def _page_tables(self, rows: int) -> Iterator[pa.Table]:
        """Group page records into Arrow tables of *rows* rows."""
        buffer: list[dict[str, Any]] = []
        for records in self._page_records():
            buffer.extend(records)
            while len(buffer) >= rows:
                yield self._records_table(buffer[:rows])
                del buffer[:rows]
        if buffer:
            yield self._records_table(buffer)

    def _records_table(self, records: list[dict[str, Any]]) -> pa.Table:
        table = frames.records_to_table(records, columns=self.columns, warn_drift=False)
        self._check_drift(table)
        return table

    # -- export -----------------------------------------------------------------------------

    def _export_to_disk(self) -> Path:
        """Run the export job and stream its CSV into a fresh temporary directory."""
        target: Filters | str
        if self.filters is not None:
            target = self.filters
        else:
            assert self.search_id is not None  # one of the two is always set
            target = self.search_id
        job = self.client.exports.start(target, max_credits=self.max_credits)
        self._note_job(job)
        with Bar.export(self.progress) as bar:
            job.wait(on_status=_export_status_callback(bar))
        self._note_job(job)
        directory = Path(tempfile.mkdtemp(prefix="scoutframe-"))
        try:
            with Bar.download(self.progress) as bar:

                def on_bytes(done: int, total: int | None) -> None:
                    bar.set_total(total)
                    bar.set_progress(done)

                path = job.download(directory / "export.csv", on_bytes=on_bytes)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        self._note_job(job)
        return path

    def _note_job(self, job: ExportJob) -> None:
        self.search_id = job.search_id or self.search_id
        self.task_id = job.task_id
        self.history_id = getattr(job, "history_id", None)
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
