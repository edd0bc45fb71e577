"""scoutframe: SphereScout business contacts as pandas DataFrames.

``import scoutframe`` registers ``pd.read_spherescout`` and the ``df.spherescout`` accessor.
Everything else is imported on first use (module ``__getattr__``), so the import stays cheap
and never pulls in tqdm, ipywidgets or the sandbox.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import pandas as pd

from ._version import __version__
from .read import read_spherescout

if TYPE_CHECKING:
    from .api.client import Client
    from .api.filters import Filters
    from .api.jobs import ExportJob
    from .cache import Cache
    from .errors import (
        AnswerTooLargeError,
        APIError,
        ArgumentError,
        AuthenticationError,
        BadRequestError,
        BudgetError,
        CacheError,
        CacheMissError,
        ConfigurationError,
        ConsentError,
        DiskFullError,
        DownloadExpiredError,
        EdgeBlockedError,
        ExportError,
        ExportFailedError,
        ExportParseError,
        ExportTimeoutError,
        FilterError,
        InsufficientCreditsError,
        LocalFileError,
        NotFoundError,
        PermissionDeniedError,
        RateLimitError,
        ScoutError,
        ServerError,
        TransportError,
    )
    from .models import (
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
    from .read import PageDriftWarning, read_export_csv
    from .tables.datasets import open_dataset, write_dataset
    from .tables.delta import read_delta, write_delta
    from .tables.merge import upsert
    from .tables.parquet import read_parquet
    from .tables.schema import MaskedEmailWarning, SchemaDriftWarning
    from .widgets import SearchForm, search_form

__all__ = [
    "APIError",
    "AnswerTooLargeError",
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
    "DiskFullError",
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
    "LocalFileError",
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
    "read_delta",
    "read_export_csv",
    "read_parquet",
    "read_spherescout",
    "search_form",
    "upsert",
    "write_dataset",
    "write_delta",
]

# Where each lazily imported public name lives.
_LAZY = {
    "ApiKey": "scoutframe.models",
    "Cache": "scoutframe.cache",
    "Client": "scoutframe.api.client",
    "Delta": "scoutframe.models",
    "Freshness": "scoutframe.models",
    "HistoryEntry": "scoutframe.models",
    "ExportJob": "scoutframe.api.jobs",
    "ExportStatus": "scoutframe.models",
    "Filters": "scoutframe.api.filters",
    "MaskedEmailWarning": "scoutframe.tables.schema",
    "PageDriftWarning": "scoutframe.read",
    "Profile": "scoutframe.models",
    "Provenance": "scoutframe.models",
    "ReadPlan": "scoutframe.models",
    "read_export_csv": "scoutframe.read",
    "SchemaDriftWarning": "scoutframe.tables.schema",
    "SearchForm": "scoutframe.widgets",
    "SearchPage": "scoutframe.models",
    "search_form": "scoutframe.widgets",
    "open_dataset": "scoutframe.tables.datasets",
    "read_delta": "scoutframe.tables.delta",
    "read_parquet": "scoutframe.tables.parquet",
    "upsert": "scoutframe.tables.merge",
    "write_dataset": "scoutframe.tables.datasets",
    "write_delta": "scoutframe.tables.delta",
    **{name: "scoutframe.errors" for name in __all__ if name.endswith("Error")},
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


def register_pandas() -> None:
    """Expose ``pd.read_spherescout`` and register the ``df.spherescout`` accessor.

    Run by ``import scoutframe``; calling it again changes nothing. In a running IPython
    (a notebook), contacts frames also display their list cells as ``a@b.fr, c@d.fr``.
    """
    from . import accessor  # noqa: F401 - importing it registers the accessor
    from .display import register_in_ipython

    pd.read_spherescout = read_spherescout  # type: ignore[attr-defined]
    register_in_ipython()


def load_ipython_extension(ipython: Any) -> None:
    """Register the ``%%spherescout`` cell magic: ``%load_ext scoutframe`` runs this.

    See :mod:`scoutframe.magic`.
    """
    from .magic import load_ipython_extension as load

    load(ipython)


register_pandas()
