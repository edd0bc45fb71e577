"""``read_spherescout``: a search as a DataFrame, by pages (free) or by an export (full data).

The front door: signatures, documentation and argument checks. A checked call becomes a
frozen :class:`~scoutframe.read.request.ReadRequest` that the private executor carries out
(:mod:`scoutframe.read.plan` chooses, :mod:`scoutframe.read.sources` reads,
:mod:`scoutframe.read.output` converts).

Methods
-------
``"pages"``
    Walks the search's pages (50 rows a page, free, **emails masked**), deduplicated and
    reconciled against ``totalCount`` (:mod:`scoutframe.read.pages`). No row read is ever
    dropped.
``"export"``
    Runs an export job (one credit per **matching** contact, whatever ``nrows`` says),
    downloads its CSV and parses it column-wise with pyarrow.
``"auto"`` (default)
    Pages when the read returns at most :data:`~scoutframe.read.request.AUTO_PAGES_MAX_ROWS`
    rows, otherwise an export; the choice and its reason are in the plan and the provenance.

This module imports nothing heavy at import time (no tqdm, no requests, no sandbox), so
``import scoutframe`` can expose it as ``pd.read_spherescout``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast, overload

import pandas as pd
import pyarrow as pa

from .. import checks
from ..checks import DtypeBackend
from ..errors import ArgumentError
from ..extras import require
from ..models import ReadPlan
from ..progress import progress_enabled
from ..tables.schema import check_columns
from .request import (
    DEFAULT_CONCURRENCY,
    FORMATS,
    MAX_CONCURRENCY,
    CacheFormat,
    CacheMode,
    CacheRequest,
    Method,
    ReadRequest,
    ReturnType,
)

if TYPE_CHECKING:
    import polars

    from ..api.client import Client
    from ..api.filters import Filters

__all__ = ["read_export_csv", "read_spherescout"]


# Overloads: a plan for dry runs, an iterator with chunksize, else one object per return_type.


@overload
def read_spherescout(
    filters: Filters | Mapping[str, Any] | str | None = ...,
    /,
    *,
    dry_run: Literal[True],
    client: Client | None = ...,
    method: Method = ...,
    columns: Sequence[str] | None = ...,
    nrows: int | None = ...,
    chunksize: int | None = ...,
    dtype_backend: DtypeBackend = ...,
    return_type: ReturnType = ...,
    progress: bool | None = ...,
    max_credits: int | None = ...,
    concurrency: int = ...,
    all: bool = ...,
    cache: bool | Literal["refresh", "only"] = ...,
    max_age: timedelta | str | float | None = ...,
    cache_dir: str | os.PathLike[str] | None = ...,
    storage_options: Mapping[str, Any] | None = ...,
    filesystem: Any = ...,
    cache_format: CacheFormat | None = ...,
    as_of: int | datetime | str | None = ...,
    **filter_kwargs: Any,
) -> ReadPlan: ...


@overload
def read_spherescout(
    filters: Filters | Mapping[str, Any] | str | None = ...,
    /,
    *,
    chunksize: int,
    return_type: Literal["pandas"] = ...,
    dry_run: Literal[False] = ...,
    client: Client | None = ...,
    method: Method = ...,
    columns: Sequence[str] | None = ...,
    nrows: int | None = ...,
    dtype_backend: DtypeBackend = ...,
    progress: bool | None = ...,
    max_credits: int | None = ...,
    concurrency: int = ...,
    all: bool = ...,
    cache: bool | Literal["refresh", "only"] = ...,
    max_age: timedelta | str | float | None = ...,
    cache_dir: str | os.PathLike[str] | None = ...,
    storage_options: Mapping[str, Any] | None = ...,
    filesystem: Any = ...,
    cache_format: CacheFormat | None = ...,
    as_of: int | datetime | str | None = ...,
    **filter_kwargs: Any,
) -> Iterator[pd.DataFrame]: ...


@overload
def read_spherescout(
    filters: Filters | Mapping[str, Any] | str | None = ...,
    /,
    *,
    chunksize: int,
    return_type: Literal["arrow"],
    dry_run: Literal[False] = ...,
    client: Client | None = ...,
    method: Method = ...,
    columns: Sequence[str] | None = ...,
    nrows: int | None = ...,
    dtype_backend: DtypeBackend = ...,
    progress: bool | None = ...,
    max_credits: int | None = ...,
    concurrency: int = ...,
    all: bool = ...,
    cache: bool | Literal["refresh", "only"] = ...,
    max_age: timedelta | str | float | None = ...,
    cache_dir: str | os.PathLike[str] | None = ...,
    storage_options: Mapping[str, Any] | None = ...,
    filesystem: Any = ...,
    cache_format: CacheFormat | None = ...,
    as_of: int | datetime | str | None = ...,
    **filter_kwargs: Any,
) -> Iterator[pa.Table]: ...


@overload
def read_spherescout(
    filters: Filters | Mapping[str, Any] | str | None = ...,
    /,
    *,
    chunksize: None = ...,
    return_type: Literal["pandas"] = ...,
    dry_run: Literal[False] = ...,
    client: Client | None = ...,
    method: Method = ...,
    columns: Sequence[str] | None = ...,
    nrows: int | None = ...,
    dtype_backend: DtypeBackend = ...,
    progress: bool | None = ...,
    max_credits: int | None = ...,
    concurrency: int = ...,
    all: bool = ...,
    cache: bool | Literal["refresh", "only"] = ...,
    max_age: timedelta | str | float | None = ...,
    cache_dir: str | os.PathLike[str] | None = ...,
    storage_options: Mapping[str, Any] | None = ...,
    filesystem: Any = ...,
    cache_format: CacheFormat | None = ...,
    as_of: int | datetime | str | None = ...,
    **filter_kwargs: Any,
) -> pd.DataFrame: ...


@overload
def read_spherescout(
    filters: Filters | Mapping[str, Any] | str | None = ...,
    /,
    *,
    return_type: Literal["arrow"],
    chunksize: None = ...,
    dry_run: Literal[False] = ...,
    client: Client | None = ...,
    method: Method = ...,
    columns: Sequence[str] | None = ...,
    nrows: int | None = ...,
    dtype_backend: DtypeBackend = ...,
    progress: bool | None = ...,
    max_credits: int | None = ...,
    concurrency: int = ...,
    all: bool = ...,
    cache: bool | Literal["refresh", "only"] = ...,
    max_age: timedelta | str | float | None = ...,
    cache_dir: str | os.PathLike[str] | None = ...,
    storage_options: Mapping[str, Any] | None = ...,
    filesystem: Any = ...,
    cache_format: CacheFormat | None = ...,
    as_of: int | datetime | str | None = ...,
    **filter_kwargs: Any,
) -> pa.Table: ...


@overload
def read_spherescout(
    filters: Filters | Mapping[str, Any] | str | None = ...,
    /,
    *,
    return_type: Literal["polars"],
    chunksize: None = ...,
    dry_run: Literal[False] = ...,
    client: Client | None = ...,
    method: Method = ...,
    columns: Sequence[str] | None = ...,
    nrows: int | None = ...,
    dtype_backend: DtypeBackend = ...,
    progress: bool | None = ...,
    max_credits: int | None = ...,
    concurrency: int = ...,
    all: bool = ...,
    cache: bool | Literal["refresh", "only"] = ...,
    max_age: timedelta | str | float | None = ...,
    cache_dir: str | os.PathLike[str] | None = ...,
    storage_options: Mapping[str, Any] | None = ...,
    filesystem: Any = ...,
    cache_format: CacheFormat | None = ...,
    as_of: int | datetime | str | None = ...,
    **filter_kwargs: Any,
) -> polars.DataFrame: ...


def read_spherescout(
    filters: Filters | Mapping[str, Any] | str | None = None,
    /,
    *,
    client: Client | None = None,
    method: Method = "auto",
    columns: Sequence[str] | None = None,
    nrows: int | None = None,
    chunksize: int | None = None,
    dtype_backend: DtypeBackend = "pyarrow",
    return_type: ReturnType = "pandas",
    progress: bool | None = None,
    max_credits: int | None = None,
    dry_run: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    all: bool = False,  # the word a user expects: read_spherescout(all=True)
    cache: bool | Literal["refresh", "only"] = False,
    max_age: timedelta | str | float | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    storage_options: Mapping[str, Any] | None = None,
    filesystem: Any = None,
    cache_format: CacheFormat | None = None,
    as_of: int | datetime | str | None = None,
    **filter_kwargs: Any,
) -> Any:
    """Read the contacts matching a search into a DataFrame.

    Also available as ``pd.read_spherescout`` once ``scoutframe`` is imported.

    Parameters
    ----------
    filters
        A :class:`~scoutframe.api.filters.Filters`, a mapping of filters, or a search id string
        (export only). Keyword filters (``countries="FR"``, ``category="Plumber"``,
        ``email=True``, ...) are merged in, as ``Filters.from_any`` accepts them.
    client
        The client to use; default: one built from the environment (``SPHERESCOUT_API_KEY``,
        ``SPHERESCOUT_BASE_URL``), closed afterwards.
    method
        ``"auto"`` (default), ``"pages"`` (free, emails masked) or ``"export"`` (full data,
        1 credit per matching contact). See the module documentation.
    columns
        Return only these columns, in this order.
    nrows
        Return at most this many rows. With ``method="auto"`` a small ``nrows`` (at most
        :data:`AUTO_PAGES_MAX_ROWS`) reads by pages, free. **An export still charges every
        matching contact**, however few rows are returned; ``dry_run=True`` shows the cost.
    chunksize
        Return an iterator of frames of this many rows (bounded memory).
    dtype_backend
        ``"pyarrow"`` (``pd.ArrowDtype`` columns) or ``"numpy_nullable"``.
    return_type
        ``"pandas"`` (default), ``"arrow"`` (a ``pyarrow.Table``; provenance in the schema
        metadata under ``b"scoutframe"``) or ``"polars"``.
    progress
        Show progress bars; default: on unless ``SCOUTFRAME_PROGRESS=0``.
    max_credits
        The read's budget, and the consent to spend it: refuse with
        :class:`~scoutframe.errors.BudgetError`, before spending anything, when the read would
        cost more. Default: the client's (``Client(max_credits=...)``,
        ``SCOUTFRAME_MAX_CREDITS``, ``max_credits`` in the config file). **Without a budget,
        a read spends credits only with** ``method="export"``: ``method="auto"`` reads by
        pages (free) when that is what it would do, and otherwise stops with a
        :class:`~scoutframe.errors.ConsentError` that shows the plan and the ways on.
    dry_run
        Spend nothing; return the :class:`ReadPlan`.
    concurrency
        Page requests in flight at once (``method="pages"``).
    all
        Allow a search without any filter (every contact of the database). Without it such a
        read is refused, since it is almost always a mistake and a costly one.
    cache
        Keep the result in the Parquet cache (see ``docs/caching.md``): ``True`` returns the
        stored frame when it is younger than ``max_age`` and otherwise brings it up to date
        (pages: read again, free; export: by delta, paying only what changed); ``"refresh"``
        brings it up to date now; ``"only"`` never touches the network
        (:class:`~scoutframe.errors.CacheMissError` without an entry). The whole result is
        stored; ``nrows`` and ``columns`` apply to what is returned.
    max_age
        With ``cache=True``: how old an entry may be before it is refreshed, as a
        ``timedelta``, seconds, or ``"12h"``, ``"7d"``; ``None``: any age.
    cache_dir
        Where the cache lives: a directory, or a URI such as ``s3://bucket/prefix`` (any
        store pyarrow or fsspec knows); default ``SCOUTFRAME_CACHE_DIR``, else the user
        cache directory.
    storage_options
        Credentials and endpoint of a remote ``cache_dir`` (``aws_access_key_id``,
        ``aws_secret_access_key``, ``aws_region``, ``aws_endpoint_url``, ...); default: the
        environment and profiles, as boto3 finds them. Never stored or shown.
    filesystem
        A ``pyarrow.fs.FileSystem`` or fsspec filesystem to keep the cache on instead
        (``cache_dir`` is then a path on it).
    cache_format
        The table format of a new entry: ``"parquet"`` (default; ``SCOUTFRAME_CACHE_FORMAT``)
        or ``"delta"`` (a Delta Lake table, refreshed by a MERGE, one version per refresh,
        readable as of a version or time). An existing entry keeps its format.
    as_of
        Serve a Delta entry as it was at this table version (an ``int``) or time (a
        ``datetime`` or ISO-8601 text), without refreshing it or touching the network for
        its data.
    **filter_kwargs
        Filters by keyword.

    Returns
    -------
    pandas.DataFrame or Iterator[pandas.DataFrame] or pyarrow.Table or ReadPlan
        Every frame carries its provenance in ``df.attrs["scoutframe"]``. pandas keeps
        ``attrs`` through ``df.copy()``, slicing, column selection and ``pd.concat`` of
        frames with equal ``attrs`` (the chunks of one read share theirs); it drops them when
        concatenating frames of different reads. ``df.spherescout.provenance`` is then
        ``None``.

    Warns
    -----
    MaskedEmailWarning
        Once per read by pages: the ``email`` column holds masked placeholders.
    SchemaDriftWarning
        The API sent columns the schema does not know (kept as strings).
    PageDriftWarning
        The result kept changing while it was paged.

    Examples
    --------
    >>> df = pd.read_spherescout(countries="FR", category="Plumber", client=client)
    ... # doctest: +SKIP
    >>> plan = pd.read_spherescout(countries="US", dry_run=True, client=client)
    ... # doctest: +SKIP
    """
    request = build_request(
        filters,
        filter_kwargs,
        client=client,
        method=method,
        columns=columns,
        nrows=nrows,
        chunksize=chunksize,
        dtype_backend=dtype_backend,
        return_type=return_type,
        progress=progress,
        max_credits=max_credits,
        dry_run=dry_run,
        concurrency=concurrency,
        include_all=all,
        cache=_cache_request(
            cache,
            max_age,
            cache_dir,
            storage_options=storage_options,
            filesystem=filesystem,
            cache_format=cache_format,
            as_of=as_of,
        ),
    )
    from ._executor import execute  # on use: keeps `import scoutframe` light

    return execute(request)


def build_request(
    filters: Filters | Mapping[str, Any] | str | None,
    filter_kwargs: Mapping[str, Any],
    *,
    client: Client | None,
    method: object,
    columns: Sequence[str] | None,
    nrows: object,
    chunksize: object,
    dtype_backend: object,
    return_type: object,
    progress: bool | None,
    max_credits: object,
    dry_run: bool,
    concurrency: object,
    include_all: bool,
    cache: CacheRequest | None,
) -> ReadRequest:
    """Check every argument once (:mod:`scoutframe.checks`); build the client if none."""
    checked_method = cast(Method, checks.one_of("method", method, ("auto", "pages", "export")))
    checked_return = cast(
        ReturnType, checks.one_of("return_type", return_type, ("pandas", "arrow", "polars"))
    )
    backend = checks.dtype_backend(dtype_backend)
    rows = checks.optional_whole_number("nrows", nrows, minimum=0)
    chunk = checks.optional_whole_number("chunksize", chunksize, minimum=1)
    budget = checks.optional_whole_number("max_credits", max_credits, minimum=0)
    pages_at_once = checks.whole_number(
        "concurrency", concurrency, minimum=1, maximum=MAX_CONCURRENCY
    )
    if chunk is not None and checked_return == "polars":
        raise ArgumentError("chunksize is not supported with return_type='polars'")
    if checked_return == "polars":  # before any request: never pay for rows it cannot return
        require("polars", feature="return_type='polars'", extra="polars")
    if "filters" in filter_kwargs:
        raise ArgumentError(
            "read_spherescout() takes the filters mapping as its first positional argument, "
            "not filters=...: write read_spherescout({...}) or pass each filter as a keyword "
            "(countries='FR', category='Plumber')"
        )
    search_id: str | None = None
    resolved_filters: Filters | None = None
    if isinstance(filters, str):
        if filter_kwargs:
            raise ArgumentError("Pass either a search id or filters, not both")
        search_id = filters
    else:
        from ..api.filters import Filters

        resolved_filters = Filters.from_any(filters, **filter_kwargs)
        if resolved_filters.is_empty() and not include_all:
            raise ArgumentError(
                "No filters were given: this would read every contact in the database "
                "(one credit each by export). Pass filters (countries='FR', "
                "category='Plumber', ...), or all=True if you really mean all of them"
            )
    selected = check_columns(columns)
    own_client = client is None
    if client is None:
        from ..api.client import Client

        client = Client()
    if budget is None:
        budget = client.max_credits
    return ReadRequest(
        client=client,
        own_client=own_client,
        filters=resolved_filters,
        search_id=search_id,
        method=checked_method,
        columns=selected,
        nrows=rows,
        chunksize=chunk,
        dtype_backend=backend,
        return_type=checked_return,
        progress=progress_enabled(progress),
        max_credits=budget,
        dry_run=bool(dry_run),
        concurrency=pages_at_once,
        cache=cache,
    )


def _cache_request(
    cache: object,
    max_age: object,
    cache_dir: str | os.PathLike[str] | None,
    *,
    storage_options: Mapping[str, Any] | None = None,
    filesystem: Any = None,
    cache_format: object = None,
    as_of: object = None,
) -> CacheRequest | None:
    """Check the cache's arguments; ``None`` when the cache is off."""
    from ..cache.store import parse_age

    if cache is False or cache is None:
        given = {
            "max_age": max_age,
            "cache_dir": cache_dir,
            "storage_options": storage_options,
            "filesystem": filesystem,
            "cache_format": cache_format,
            "as_of": as_of,
        }
        named = [f"{k}=" for k, v in given.items() if v is not None]
        if named:
            what = " and ".join([", ".join(named[:-1]), named[-1]] if len(named) > 1 else named)
            verb = "needs" if len(named) == 1 else "need"
            hint = (
                "; read a Delta table that is not a cache entry with "
                "scoutframe.read_delta(uri, version=...)"
                if as_of is not None or cache_format is not None
                else ""
            )
            raise ArgumentError(f"{what} {verb} cache=True (or 'refresh', 'only'){hint}")
        return None
    modes: dict[object, CacheMode] = {True: "use", "refresh": "refresh", "only": "only"}
    if not isinstance(cache, bool | str) or cache not in modes:
        raise ArgumentError(f"cache must be True, False, 'refresh' or 'only', not {cache!r}")
    age = parse_age(max_age)  # type: ignore[arg-type]
    table_format = cast(
        "CacheFormat | None",
        None if cache_format is None else checks.one_of("cache_format", cache_format, FORMATS),
    )
    if table_format == "delta":  # before any request: nothing is paid for a table not written
        require("deltalake", feature="cache_format='delta'", extra="delta")
    if as_of is not None and (
        isinstance(as_of, bool) or not isinstance(as_of, int | str | datetime)
    ):
        raise ArgumentError(
            f"as_of must be a Delta table version (an int), a datetime or an ISO-8601 text, "
            f"not {as_of!r}"
        )
    where: str | None = None
    if cache_dir is not None:
        from ..filesystems import is_remote

        text = os.fspath(cache_dir)
        where = text if is_remote(text) or filesystem is not None else str(Path(text))
    return CacheRequest(
        mode=modes[cache],
        max_age=age,
        cache_dir=where,
        storage_options=None if storage_options is None else dict(storage_options),
        filesystem=filesystem,
        table_format=table_format,
        as_of=as_of,
    )


def read_export_csv(
    path: str | Path,
    *,
    columns: Sequence[str] | None = None,
    dtype_backend: DtypeBackend = "pyarrow",
    escape_formulas: bool = True,
) -> pd.DataFrame:
    """Read a downloaded export (or delta) CSV into the typed contacts frame.

    ``pd.read_csv`` loses what the API's CSV format means: leading zeros of postal codes
    and phone numbers, ``email``/``phone``/``categories`` lists (they come back as strings),
    UTC timestamps. This parses the file column-wise with the same schema
    ``read_spherescout`` uses, without any request.

    Parameters
    ----------
    path
        The CSV file, as written by ``ExportJob.download`` or ``client.history.download_delta``.
    columns
        Return only these columns, in this order.
    dtype_backend
        ``"pyarrow"`` (``pd.ArrowDtype`` columns, default) or ``"numpy_nullable"``.
    escape_formulas
        Whether the file's formula-like cells were escaped, as ``df.spherescout.to_csv``
        does by default: the apostrophe it put in front of cells a spreadsheet would run is
        taken off, giving back the original text. Only an apostrophe followed by ``=``, ``+``,
        ``-``, ``@``, a tab or a carriage return (after any further apostrophes) is taken, and
        not before a number or phone number (see :mod:`scoutframe.tables.formulas`). Pass
        ``False`` for a file written with ``escape_formulas=False``, or to read every cell
        exactly as it is (the API itself does not escape: a contact whose name starts with
        ``'=`` would lose that apostrophe).

    Returns
    -------
    pandas.DataFrame
        One row per contact, no provenance (``df.attrs`` is empty: the file alone does not
        say which search it came from).

    Raises
    ------
    ExportParseError
        The file misses columns of the export format, or repeats a ``place_id``.

    Warns
    -----
    SchemaDriftWarning
        The file has columns the schema does not know (kept as strings).

    Examples
    --------
    >>> job.download("plumbers.csv")  # doctest: +SKIP
    >>> df = read_export_csv("plumbers.csv")  # doctest: +SKIP
    """
    from ..errors import ExportParseError
    from ..tables import exportcsv, frames
    from ..tables.exportcsv import ContractCheck

    backend = checks.dtype_backend(dtype_backend)
    try:
        check = ContractCheck(path)
        table = exportcsv.read_csv(
            path, columns=check_columns(columns), unescape_formulas=escape_formulas
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ExportParseError(
            f"{path} cannot be read as an export CSV ({type(exc).__name__}: {reason}); read "
            "only files written by ExportJob.download, client.history.download_delta or "
            "df.spherescout.to_csv",
            path=Path(path),
        ) from exc
    check.feed(table)
    if check.problems():
        raise ExportParseError(
            f"{path} does not match the export format: {'; '.join(check.problems())}. Read "
            "only files written by ExportJob.download, client.history.download_delta or "
            "df.spherescout.to_csv",
            path=Path(path),
        )
    return frames.to_pandas(table, dtype_backend=backend, self_destruct=True)
