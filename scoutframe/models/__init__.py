"""Typed records of the API's answers and of the client's own facts: one home for each.

Frozen dataclasses built leniently from JSON: each record reads the fields it knows (under the
documented name or a known live spelling), tolerates missing optional ones and keeps every
other key in ``extra``, so a new field on the server never breaks the client.
"""

from ._coerce import optional_int, parse_datetime
from .account import ApiKey, LoginUser, Profile, SearchPage
from .exports import (
    Delta,
    ExportStatus,
    Flavor,
    Freshness,
    HandleState,
    HistoryEntry,
    JobHandle,
    ServerFlavor,
    StatusName,
    link_is_valid,
    normalize_status,
)
from .reads import PROVENANCE_ATTR, Provenance, ReadPlan

__all__ = [
    "PROVENANCE_ATTR",
    "ApiKey",
    "Delta",
    "ExportStatus",
    "Flavor",
    "Freshness",
    "HandleState",
    "HistoryEntry",
    "JobHandle",
    "LoginUser",
    "Profile",
    "Provenance",
    "ReadPlan",
    "SearchPage",
    "ServerFlavor",
    "StatusName",
    "link_is_valid",
    "normalize_status",
    "optional_int",
    "parse_datetime",
]
