"""Walking a search's pages: concurrent fetches, deduplication, reconciliation, drift warning.

``/api/companies?paginate=true`` serves 50 rows a page, free, with **emails masked**. A
:class:`PageWalker` fetches a few pages at a time on the client's session, yields them in
order, keeps each ``place_id`` once and reconciles the rows against ``totalCount``: when the
count changes under it or pages overlap or skip, the pages are walked again (only unseen rows
are added) and, if they still disagree, a :class:`PageDriftWarning` says exactly what was seen.
No row read is ever dropped.

Errors raised in the worker threads reach the caller as they were raised (``Future.result``
re-raises the original exception), so a failed page is the same scoutframe error as a failed
single request.
"""

from __future__ import annotations

import logging
import math
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..clock import clock
from ..progress import Bar
from ..tables.schema import PageDriftWarning, warn_from_caller
from .request import DEFAULT_CONCURRENCY, MAX_CONCURRENCY

if TYPE_CHECKING:
    from ..api.client import Client
    from ..api.filters import Filters
    from ..models import SearchPage

__all__ = [
    "DEFAULT_CONCURRENCY",
    "MAX_CONCURRENCY",
    "MAX_PAGE_PASSES",
    "PAGE_SIZE",
    "PageDriftWarning",
    "PageWalker",
    "batched_tables",
    "fetch_page",
]

# Logged under the front door's name: users switch on one logger for a read.
logger = logging.getLogger("scoutframe.read")

#: Rows per search page (fixed by the API).
PAGE_SIZE = 50
#: How many times the pages are walked before giving up on a consistent count.
MAX_PAGE_PASSES = 3

Records = list[dict[str, Any]]


#: Pages of a read that failed part-way are kept this long on the client, so that the same
#: read, run again with the same client, continues where it stopped.
KEEP_PAGES_SECONDS = 600.0


@dataclass
class _Kept:
    """The pages a failed walk had read, valid while the search and its count are the same."""

    search_id: str | None
    total_count: int
    pages: dict[int, SearchPage] = field(default_factory=dict)
    until: float = 0.0


# Per client (weakly: gone with the client), per search (canonical filters).
_KEPT: weakref.WeakKeyDictionary[Client, dict[str, _Kept]] = weakref.WeakKeyDictionary()


def fetch_page(client: Client, filters: Filters, number: int) -> SearchPage | None:
    """Fetch page ``number``; ``None`` for a page past the end (404: the result shrank).

    A page whose transport retries all met 429s is tried again under the client's
    ``page_rate_limited`` budget; a ``Retry-After`` above ``retry_after_cap`` is raised at once
    (:class:`~scoutframe.errors.RateLimitError`), never slept through.
    """
    from ..api import retry
    from ..errors import NotFoundError, RateLimitError

    policy = client.retry

    def again(exc: Exception) -> float | None:
        if isinstance(exc, RateLimitError):
            return policy.retry_after(exc.retry_after)
        return None

    try:
        return retry.call_with_retries(
            policy.page_rate_limited(), lambda: client.search(filters, page=number), again
        )
    except NotFoundError:
        return None


class PageWalker:
    """The pages of one search, read once through (several passes if the result moves).

    Parameters
    ----------
    client
        The client whose ``search(filters, page=n)`` serves the pages.
    filters
        Resolved filters of the search.
    nrows
        Stop after this many distinct rows (``None``: all).
    concurrency
        Page requests in flight at once.
    progress
        Show a ``pages`` bar.
    """

    def __init__(
        self,
        client: Client,
        filters: Filters,
        *,
        nrows: int | None,
        concurrency: int,
        progress: bool,
    ) -> None:
        self.client = client
        self.filters = filters
        self.nrows = nrows
        self.concurrency = concurrency
        self.progress = progress
        #: ``totalCount`` of the latest page 1 (updated when a pass starts again).
        self.total_count = 0
        self._kept: _Kept | None = None

    def fetch(self, number: int) -> SearchPage | None:
        """Fetch page ``number`` (see :func:`fetch_page`); page 1 updates the total."""
        page = fetch_page(self.client, self.filters, number)
        if number == 1 and page is not None:
            self.total_count = page.total_count
        return page

    def expected(self, page: SearchPage | None) -> int:
        """Rows a walk that starts from ``page`` (page 1) should return."""
        total = 0 if page is None else page.total_count
        return total if self.nrows is None else min(total, self.nrows)

    def records(self, first: SearchPage | None) -> Iterator[Records]:
        """Yield the new unique records page by page; walk again while counts disagree.

        A walk that fails part-way keeps the pages it read on the client (for
        :data:`KEEP_PAGES_SECONDS`) and says so in a note on the error: the same read, run
        again with the same client, fetches only the pages it lacks.
        """
        self._kept = self._kept_pages(first)
        try:
            yield from self._walk(first)
        except (Exception, KeyboardInterrupt) as exc:
            self._note_progress(exc)
            raise
        self._forget()

    def _kept_pages(self, first: SearchPage | None) -> _Kept | None:
        if first is None:
            return None
        by_search = _KEPT.setdefault(self.client, {})
        key = self.filters.cache_key
        kept = by_search.get(key)
        now = clock().monotonic()
        fresh = (
            kept is not None
            and kept.until > now
            and kept.search_id == first.search_id
            and kept.total_count == first.total_count
        )
        if not fresh:
            kept = by_search[key] = _Kept(first.search_id, first.total_count)
        assert kept is not None
        kept.until = now + KEEP_PAGES_SECONDS
        kept.pages[1] = first
        return kept

    def _forget(self) -> None:
        _KEPT.get(self.client, {}).pop(self.filters.cache_key, None)

    def _note_progress(self, exc: BaseException) -> None:
        kept = self._kept
        if kept is None or len(kept.pages) <= 1:
            return
        rows = sum(len(page.contacts) for page in kept.pages.values())
        last = max(kept.pages)
        exc.add_note(
            f"scoutframe: {len(kept.pages):,} pages ({rows:,} of {kept.total_count:,} rows) "
            "were read before this failure and are kept on this client for "
            f"{KEEP_PAGES_SECONDS / 60:g} minutes: run the same read_spherescout call again "
            f"with the same client to fetch only the missing pages (page {last + 1} on)"
        )

    def _walk(self, first: SearchPage | None) -> Iterator[Records]:
        seen: set[str] = set()
        limit = self.nrows
        history: list[str] = []
        with Bar.rows(self.progress, self.expected(first), "pages") as bar:
            for attempt in range(1, MAX_PAGE_PASSES + 1):
                if first is None:
                    return
                expected = self.expected(first)
                totals: list[int] = []
                in_pass: set[str] = set()
                for page in self._in_order(first, math.ceil(expected / PAGE_SIZE)):
                    if page is None:
                        totals.append(-1)
                        break
                    totals.append(page.total_count)
                    fresh: Records = []
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
                logger.info(
                    "read_spherescout: pages changed while reading (%s); reading them again",
                    history[-1],
                )
                self._forget()  # the result moved: pages kept from before are no longer good
                first = self.fetch(1)
                self._kept = self._kept_pages(first)
                bar.set_total(self.expected(first))
        warn_from_caller(
            f"The result kept changing while it was paged ({'; '.join(history)}). "
            f"Returning the {len(seen):,} distinct rows seen; the latest totalCount is "
            f"{self.total_count:,}. Read again, or use method='export' for a consistent "
            "snapshot.",
            PageDriftWarning,
        )

    def _in_order(self, first: SearchPage, n_pages: int) -> Iterator[SearchPage | None]:
        """Yield pages 1..n in order, fetching up to ``concurrency`` ahead."""
        yield first
        if n_pages <= 1:
            return
        window = self.concurrency * 2
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="scoutframe-page")
        pending: deque[Future[SearchPage | None]] = deque()
        next_page = 2
        wait = True
        try:
            while pending or next_page <= n_pages:
                while next_page <= n_pages and len(pending) < window:
                    pending.append(self._page(pool, next_page))
                    next_page += 1
                page = pending.popleft().result()  # re-raises the worker's own exception
                yield page
                if page is None:
                    break
        except (Exception, KeyboardInterrupt):
            # An error or Ctrl-C returns at once: the requests in flight finish on their own.
            wait = False
            raise
        finally:
            pool.shutdown(wait=wait, cancel_futures=True)

    def _fetch_keeping(self, number: int) -> SearchPage | None:
        page = self.fetch(number)
        if page is not None and self._kept is not None:
            self._kept.pages[number] = page
        return page

    def _page(self, pool: ThreadPoolExecutor, number: int) -> Future[SearchPage | None]:
        """Return a page kept from an earlier failed walk, or a fetch of it."""
        kept = None if self._kept is None else self._kept.pages.get(number)
        if kept is not None:
            done: Future[SearchPage | None] = Future()
            done.set_result(kept)
            return done
        return pool.submit(self._fetch_keeping, number)


def batched_tables(
    records: Iterator[Records], rows: int, to_table: Callable[[Records], Any]
) -> Iterator[Any]:
    """Group record lists into tables of ``rows`` rows (the last may be shorter)."""
    buffer: Records = []
    for part in records:
        buffer.extend(part)
        while len(buffer) >= rows:
            yield to_table(buffer[:rows])
            del buffer[:rows]
    if buffer:
        yield to_table(buffer)
