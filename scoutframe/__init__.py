"""scoutframe: SphereScout business contacts as pandas DataFrames.

``import scoutframe`` registers ``pd.read_spherescout`` and the ``df.spherescout`` accessor.
Everything else is imported on first use (module ``__getattr__``), so the import stays cheap
and never pulls in tqdm, ipywidgets or the sandbox.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from scoutframe.read import read_spherescout, register_pandas

__version__ = "0.1.0"

if TYPE_CHECKING:
    from scoutframe.client import Client
    from scoutframe.endpoints.history import Delta, Freshness, HistoryEntry
    from scoutframe.errors import (
        APIError,
        AuthenticationError,
        BadRequestError,
        BudgetError,
        ConfigurationError,
        DownloadExpiredError,
        EdgeBlockedError,
        ExportError,
        ExportFailedError,
        ExportTimeoutError,
        FilterError,
        InsufficientCreditsError,
        NotFoundError,
        PermissionDeniedError,
        RateLimitError,
        ScoutError,
        ServerError,
        TransportError,
    )
    from scoutframe.filters import Filters
    from scoutframe.frames import MaskedEmailWarning, Provenance, SchemaDriftWarning
    from scoutframe.jobs import ExportJob, ExportStatus
    from scoutframe.models import ApiKey, Profile, SearchPage
    from scoutframe.read import PageDriftWarning, ReadPlan, read_export_csv

__all__ = [
    "APIError",
    "ApiKey",
    "AuthenticationError",
    "BadRequestError",
    "BudgetError",
    "Client",
    "ConfigurationError",
    "Delta",
    "DownloadExpiredError",
    "EdgeBlockedError",
    "ExportError",
    "ExportFailedError",
    "ExportJob",
    "ExportStatus",
    "ExportTimeoutError",
    "FilterError",
    "Filters",
    "Freshness",
    "HistoryEntry",
    "InsufficientCreditsError",
    "MaskedEmailWarning",
    "NotFoundError",
    "PageDriftWarning",
    "PermissionDeniedError",
    "Profile",
    "Provenance",
    "RateLimitError",
    "ReadPlan",
    "SchemaDriftWarning",
    "ScoutError",
    "SearchPage",
    "ServerError",
    "TransportError",
    "__version__",
    "read_export_csv",
    "read_spherescout",
]

# Where each lazily imported public name lives.
_LAZY = {
    "ApiKey": "scoutframe.models",
    "Client": "scoutframe.client",
    "Delta": "scoutframe.endpoints.history",
    "Freshness": "scoutframe.endpoints.history",
    "HistoryEntry": "scoutframe.endpoints.history",
    "ExportJob": "scoutframe.jobs",
    "ExportStatus": "scoutframe.jobs",
    "Filters": "scoutframe.filters",
    "MaskedEmailWarning": "scoutframe.frames",
    "PageDriftWarning": "scoutframe.read",
    "Profile": "scoutframe.models",
    "Provenance": "scoutframe.frames",
    "ReadPlan": "scoutframe.read",
    "read_export_csv": "scoutframe.read",
    "SchemaDriftWarning": "scoutframe.frames",
    "SearchPage": "scoutframe.models",
    **{
        name: "scoutframe.errors"
        for name in __all__
        if name.endswith("Error")
    },
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'scoutframe' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


register_pandas()
