"""scoutframe: SphereScout business contacts as pandas DataFrames.

``import scoutframe`` registers ``pd.read_spherescout`` and the ``df.spherescout`` accessor.
Everything else is imported on first use (module ``__getattr__``), so the import stays cheap
and never pulls in tqdm, ipywidgets or the sandbox.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from scoutframe._version import __version__
from scoutframe.read import read_spherescout, register_pandas

if TYPE_CHECKING:
    from scoutframe.client import Client
    from scoutframe.errors import (
        APIError,
        ArgumentError,
        AuthenticationError,
        BadRequestError,
        BudgetError,
        ConfigurationError,
        ConsentError,
        DownloadExpiredError,
        EdgeBlockedError,
        ExportError,
        ExportFailedError,
        ExportParseError,
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
    from scoutframe.jobs import ExportJob
    from scoutframe.models import (
        ApiKey,
        Delta,
        ExportStatus,
        Freshness,
        HistoryEntry,
        Profile,
        Provenance,
        ReadPlan,
        SearchPage,
    )
    from scoutframe.read import PageDriftWarning, read_export_csv
    from scoutframe.schema import MaskedEmailWarning, SchemaDriftWarning

__all__ = [
    "APIError",
    "ApiKey",
    "ArgumentError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetError",
    "Client",
    "ConfigurationError",
    "ConsentError",
    "Delta",
    "DownloadExpiredError",
    "EdgeBlockedError",
    "ExportError",
    "ExportFailedError",
    "ExportJob",
    "ExportParseError",
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
    "Delta": "scoutframe.models",
    "Freshness": "scoutframe.models",
    "HistoryEntry": "scoutframe.models",
    "ExportJob": "scoutframe.jobs",
    "ExportStatus": "scoutframe.models",
    "Filters": "scoutframe.filters",
    "MaskedEmailWarning": "scoutframe.schema",
    "PageDriftWarning": "scoutframe.read",
    "Profile": "scoutframe.models",
    "Provenance": "scoutframe.models",
    "ReadPlan": "scoutframe.models",
    "read_export_csv": "scoutframe.read",
    "SchemaDriftWarning": "scoutframe.schema",
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
