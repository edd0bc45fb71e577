"""Carries out one checked :class:`~scoutframe.read.request.ReadRequest`: plan, source, output."""

from __future__ import annotations

from typing import Any

from ..api.jobs import naming_paid_exports
from ..errors import AuthenticationError
from ..tables.schema import MaskedEmailWarning, warn_from_caller
from . import output
from .consent import check_spending
from .plan import Planned, make_source, plan_read
from .request import ReadRequest

__all__ = ["execute"]

_MASKED = (
    "Emails from search pages are masked (e.g. 'j***@d*****.fr'), not real addresses; "
    "df.attrs['scoutframe']['emails_masked'] is True. Use method='export' (1 credit a "
    "contact) for full data."
)


def execute(request: ReadRequest) -> Any:
    """Run the read; close a client built for it (after the last chunk, when chunked)."""
    try:
        return _execute(request)
    except AuthenticationError as exc:
        # A credential revoked or expired while an export was paid and not delivered: say so.
        waiting = request.client.job_store.handles(states=("provisional", "active"))
        raise naming_paid_exports(exc, [h.job_id for h in waiting]) from exc


def _execute(request: ReadRequest) -> Any:
    streaming = False
    try:
        if request.cache is not None:
            from .cached import read_cached

            result = read_cached(request)
            streaming = request.chunksize is not None and not request.dry_run
            return result
        planned = plan_read(request)
        if request.dry_run:
            return planned.plan
        if not _may_reuse(request, planned):
            check_spending(request, planned.plan)  # now, not at the first chunk
        if planned.plan.method == "pages":
            warn_from_caller(_MASKED, MaskedEmailWarning)
        source = make_source(request, planned)
        if request.chunksize is not None:
            streaming = True
            return output.chunks(request, planned, source)
        return output.whole(request, planned, source)
    finally:
        if request.own_client and not streaming:
            request.client.close()


def _may_reuse(request: ReadRequest, planned: Planned) -> bool:
    """Whether this client holds an export of the search that a read could reuse for free.

    A look at the saved handles only (no request): without one, consent and budget are
    checked before the read returns (a chunk iterator too); with one, the export source checks
    them once it knows whether the export can be reused.
    """
    if planned.plan.method != "export":
        return False
    handles = request.client.job_store.same_search(
        planned.filters, planned.plan.search_id, states=("provisional", "active", "done")
    )
    return bool(handles)
