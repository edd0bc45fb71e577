"""Consent to spend: a read buys an export only when the caller said so, within its budget.

An export needs ``method="export"`` or a budget (the read's ``max_credits``, else the
client's); without either, a read that would buy stops with a
:class:`~scoutframe.errors.ConsentError` that shows the plan and the ways on.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import ConsentError

if TYPE_CHECKING:
    from ..models import ReadPlan
    from .request import ReadRequest

__all__ = ["check_spending", "consent_message", "has_consent"]


def has_consent(request: ReadRequest) -> bool:
    """Whether the caller agreed to spend: ``method="export"``, or a budget of any source."""
    return request.method == "export" or request.max_credits is not None


def check_spending(request: ReadRequest, plan: ReadPlan) -> None:
    """Refuse, before anything is spent, an export without consent or over ``max_credits``."""
    from ..api.billing import check_budget as refuse_over

    if plan.method != "export":
        return
    if not has_consent(request):
        balance = request.client.profile().credits  # free: the error shows what is at stake
        raise ConsentError(
            consent_message(plan, balance), plan=replace(plan, credits_available=balance)
        )
    refuse_over(
        plan.credits_needed,
        request.max_credits,
        what="this export",
        hint="Narrow the filters, raise max_credits, or use method='pages' (free, emails masked).",
    )


def consent_message(plan: ReadPlan, balance: int | None) -> str:
    """Say what a read would buy and the three ways on (Python spelling)."""
    has = "" if balance is None else f" (the account has {balance:,})"
    if plan.credits_needed is None:
        what, exact = f"an unknown number of contacts, 1 credit each{has}", "N"
    else:
        rows = plan.rows if plan.rows is not None else plan.credits_needed
        what = f"{rows:,} contacts for {plan.credits_needed:,} credits{has}"
        exact = str(plan.credits_needed)
    return (
        f"This read would buy an export: {what}, and no budget was given, so nothing was "
        "spent. "
        "Choose one: method='pages' reads them for free, with masked emails; "
        f"max_credits={exact} (or method='export') buys the full data; narrower filters "
        "(a region or city, email=True, ...) make it smaller. A default budget for every "
        "read: Client(max_credits=...) or SCOUTFRAME_MAX_CREDITS."
    )
