"""Planning a read: count the matches (free), choose pages or export, make its source.

``method="auto"`` reads by pages when the read returns at most :data:`AUTO_PAGES_MAX_ROWS`
rows (the matching contacts, or ``nrows`` when smaller), otherwise by an export. The choice
and its reason are logged (logger ``scoutframe.read``) and kept in the :class:`ReadPlan`.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..errors import APIError, ArgumentError, FilterError, TransportError
from ..models import ReadPlan
from .consent import has_consent
from .export import ExportSource
from .pages import fetch_page
from .request import AUTO_PAGES_MAX_ROWS
from .sources import PagesSource, Source

if TYPE_CHECKING:
    from ..api.filters import Filters
    from ..models import SearchPage
    from .request import ReadRequest

__all__ = ["AUTO_PAGES_MAX_ROWS", "Planned", "make_source", "plan_read"]

logger = logging.getLogger("scoutframe.read")


@dataclass(frozen=True)
class Planned:
    """A plan and what was learnt making it: the resolved filters and page 1."""

    plan: ReadPlan
    filters: Filters | None
    first_page: SearchPage | None


def plan_read(request: ReadRequest) -> Planned:
    """Count the matches (one free request) and choose the method.

    The balance (one more request) is looked up only for a dry run; an export start checks
    it anyway.
    """
    client = request.client
    with_balance = request.dry_run
    rows: int | None = None
    total: int | None = None
    search_id = request.search_id
    filters = request.filters
    first: SearchPage | None = None
    known = ""
    if filters is not None:
        filters = filters.resolve(client)
        first = fetch_page(client, filters, 1)
        counted = first if first is not None else client.search(filters)  # 0 matches: preview
        search_id, total = counted.search_id, counted.total_count
        rows = _rows(total, request.nrows)
    else:  # a bare search id: what this client knows of it (free)
        total, known = _look_up_search_id(request)
        rows = None if total is None else _rows(total, request.nrows)
    method, why = _choose(request, rows, total)
    why += known
    needed = total if method == "export" else 0
    available = client.profile().credits if with_balance else None
    if method == "export" and needed and available is not None and needed > available:
        why += f"; the account has only {available:,} credits"
    if request.max_credits is not None and needed is not None and needed > request.max_credits:
        why += f"; over max_credits={request.max_credits:,}"
    if method == "export" and not has_consent(request):
        why += (
            "; needs your consent to spend: pass max_credits= or method='export' "
            "(or method='pages', free)"
        )
    logger.info("read_spherescout: method %s: %s", method, why)
    plan = ReadPlan(
        rows=rows,
        method=method,
        credits_needed=needed,
        credits_available=available,
        search_id=search_id,
        why=why,
        total_count=total,
    )
    return Planned(plan, filters, first)


def _rows(total: int, nrows: int | None) -> int:
    return total if nrows is None else min(total, nrows)


def _look_up_search_id(request: ReadRequest) -> tuple[int | None, str]:
    """Find a bare search id among saved handles and the export history (free calls).

    Returns the matching contacts (``None`` when unknown) and words for the plan's ``why``.
    The API has no free lookup of a search id that was never exported, so such an id is
    reported as unchecked rather than refused.
    """
    client = request.client
    sid = str(request.search_id)
    record = client.job_store.describe(sid)
    if record is None:
        return None, (
            f"; search id {sid!r} is not in this client's saved exports nor the export "
            "history, and the API has no free lookup of a search id, so it is unchecked: "
            "an unknown id is refused (404, nothing spent) when the export starts"
        )
    count = record.row_count
    if record.filters is not None:
        # A fresh count (free) when possible; the recorded count stands in otherwise.
        with contextlib.suppress(APIError, TransportError, FilterError):
            page = client.search(record.filters.resolve(client))
            if page.search_id in (None, sid):
                count = page.total_count
    if count is None:
        return None, f"; search {sid} found in {record.where} (its size is not recorded)"
    return int(count), f"; search {sid} found in {record.where}"


def _choose(
    request: ReadRequest, rows: int | None, total: int | None
) -> tuple[Literal["pages", "export"], str]:
    if request.filters is None:
        if request.method == "pages":
            raise ArgumentError(
                "method='pages' needs filters; a search id alone can only be exported"
            )
        return "export", "a search id alone can only be read by an export"
    assert rows is not None  # set whenever filters are
    assert total is not None
    nrows = request.nrows
    cost = f"{total:,} credits" if total else "no credits"
    if nrows is not None and nrows < total:
        cost += f" (all {total:,} matching contacts, although nrows={nrows:,})"
    if request.method == "pages":
        return "pages", f"method='pages' asked: {rows:,} rows free, emails masked"
    if request.method == "export":
        return "export", f"method='export' asked: full data for {cost}"
    if rows <= AUTO_PAGES_MAX_ROWS:
        return "pages", (
            f"auto: {rows:,} rows <= {AUTO_PAGES_MAX_ROWS} read by pages (free, emails masked)"
        )
    return "export", (
        f"auto: {rows:,} rows > {AUTO_PAGES_MAX_ROWS} read by export (full data, {cost})"
    )


def make_source(request: ReadRequest, planned: Planned) -> Source:
    """Return the source the plan chose."""
    if planned.plan.method == "pages":
        return PagesSource(request, planned)
    return ExportSource(request, planned)
