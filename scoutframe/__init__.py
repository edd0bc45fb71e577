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
    from scoutframe.cache import Cache
    from scoutframe.client import Client
    from scoutframe.datasets import open_dataset, write_dataset
    from scoutframe.errors import (
        APIError,
        ArgumentError,
        AuthenticationError,
        BadRequestError,
        BudgetError,
        CacheError,
        CacheMissError,
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
    from scoutframe.formats import read_parquet
    from scoutframe.jobs import ExportJob
    from scoutframe.merge import upsert
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
    from scoutframe.widgets import SearchForm, search_form

__all__ = [
    "APIError",
    "ApiKey",
    "ArgumentError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetError",
    "Cache",
    "CacheError",
    "CacheMissError",
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
    "SearchForm",
    "SearchPage",
    "ServerError",
    "TransportError",
    "__version__",
    "open_dataset",
    "read_export_csv",
    "read_parquet",
    "read_spherescout",
    "search_form",
    "upsert",
    "write_dataset",
]

# Where each lazily imported public name lives.
_LAZY = {
    "ApiKey": "scoutframe.models",
    "Cache": "scoutframe.cache",
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
    "SearchForm": "scoutframe.widgets",
    "SearchPage": "scoutframe.models",
    "search_form": "scoutframe.widgets",
    "open_dataset": "scoutframe.datasets",
    "read_parquet": "scoutframe.formats",
    "upsert": "scoutframe.merge",
    "write_dataset": "scoutframe.datasets",
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
