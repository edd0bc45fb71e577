"""One read, as checked by the front door: a frozen request the executor carries out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from ..cache.keys import FORMATS
from ..checks import DtypeBackend

if TYPE_CHECKING:
    from ..api.client import Client
    from ..api.filters import Filters

__all__ = [
    "AUTO_PAGES_MAX_ROWS",
    "DEFAULT_CONCURRENCY",
    "FORMATS",
    "MAX_CONCURRENCY",
    "CacheFormat",
    "CacheMode",
    "CacheRequest",
    "Method",
    "ReadRequest",
    "ReturnType",
]

#: ``method="auto"`` reads by pages up to this many rows (10 free requests), by export above.
AUTO_PAGES_MAX_ROWS = 500
#: Concurrent page requests of a pages read (:mod:`scoutframe.read.pages`; here so that the
#: front door needs no HTTP module at import). Against a rate-limited server the limit, not
#: this number, sets the pace: the transport waits out each 429's Retry-After and
#: ``PageWalker.fetch`` pauses and retries a page whose retries ran out. Kept below requests'
#: pool size (10).
DEFAULT_CONCURRENCY = 8
#: At most this many pages in flight: requests keeps 10 connections per host.
MAX_CONCURRENCY = 10

Method = Literal["auto", "pages", "export"]
ReturnType = Literal["pandas", "arrow", "polars"]
CacheMode = Literal["use", "refresh", "full", "only"]
CacheFormat = Literal["parquet", "delta"]


@dataclass(frozen=True)
class CacheRequest:
    """How a read uses the Parquet cache (``cache=True`` is ``"use"``).

    ``cache_dir`` is a local path or a URI (``s3://bucket/prefix``); ``storage_options`` and
    ``filesystem`` reach it, and are never part of a repr.
    """

    mode: CacheMode
    max_age: timedelta | None
    cache_dir: str | None
    storage_options: Mapping[str, Any] | None = field(default=None, repr=False)
    filesystem: Any = field(default=None, repr=False)
    table_format: CacheFormat | None = None
    as_of: int | datetime | str | None = None


@dataclass(frozen=True)
class ReadRequest:
    """Every argument of one ``read_spherescout`` call, checked.

    Exactly one of ``filters`` (as given, names not yet resolved) and ``search_id`` is set.
    ``own_client`` says the client was built for this read and is closed after it.
    ``max_credits`` is the read's budget: its own argument, else the client's default
    (``Client(max_credits=...)``, ``SCOUTFRAME_MAX_CREDITS``, the config file); ``None``
    means no consent to spend unless ``method="export"``.
    """

    client: Client
    own_client: bool
    filters: Filters | None
    search_id: str | None
    method: Method
    columns: list[str] | None
    nrows: int | None
    chunksize: int | None
    dtype_backend: DtypeBackend
    return_type: ReturnType
    progress: bool
    max_credits: int | None
    dry_run: bool
    concurrency: int
    cache: CacheRequest | None = None
