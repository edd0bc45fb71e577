"""The ``df.spherescout`` accessor: provenance, refresh and conversions of a contacts frame.

Registered by :func:`scoutframe.register_pandas` (run by ``import scoutframe``). It keeps
no state of its own: everything comes from the frame and its ``attrs``; the work is done by
the modules it delegates to.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .errors import ArgumentError
from .extras import require
from .models import PROVENANCE_ATTR, Provenance

if TYPE_CHECKING:
    import polars
    import pyarrow as pa

    from .api.client import Client
    from .api.filters import Filters
    from .models import Freshness

__all__ = ["SphereScoutAccessor"]


@pd.api.extensions.register_dataframe_accessor("spherescout")
class SphereScoutAccessor:
    """Helpers on a frame of SphereScout contacts (``df.spherescout``).

    Raises
    ------
    AttributeError
        When the frame has no ``place_id`` column, so it is not a contacts frame.
    """

    def __init__(self, df: pd.DataFrame) -> None:
        if "place_id" not in df.columns:
            raise AttributeError(
                "df.spherescout needs a frame of SphereScout contacts (with a 'place_id' "
                "column), as returned by pd.read_spherescout"
            )
        self._df = df

    @property
    def provenance(self) -> Provenance | None:
        """Where the frame came from, or ``None`` when it carries no provenance.

        pandas carries ``attrs`` through copies, slices and ``pd.concat`` of frames with
        equal ``attrs`` (the chunks of one read); concatenating frames of different reads
        drops them, and this is then ``None``.
        """
        data = self._df.attrs.get(PROVENANCE_ATTR)
        return Provenance.from_dict(data) if data else None

    def _required(self, what: str) -> Provenance:
        provenance = self.provenance
        if provenance is None:
            raise ArgumentError(
                f"df.spherescout.{what} needs the frame's provenance, and this frame has none "
                "(df.attrs['scoutframe'] is missing: it did not come from read_spherescout, "
                "or pandas dropped the attrs, e.g. in a concat of different reads)"
            )
        return provenance

    @property
    def filters(self) -> Filters:
        """The search's filters (from the provenance)."""
        from .api.filters import Filters

        return Filters.from_any(dict(self._required("filters").filters))

    @property
    def search_id(self) -> str | None:
        """The API's id of the search (from the provenance)."""
        return self._required("search_id").search_id

    @property
    def cache_entry(self) -> str | None:
        """The key of the cache entry the frame came from, or ``None`` when it was not cached.

        ``scoutframe.Cache(df.attrs["scoutframe"]["cache_dir"]).get(key)`` reads it back.
        """
        return self._required("cache_entry").cache_entry

    @property
    def cache_location(self) -> str | None:
        """Where the frame's cache entry is, for other readers (``None`` when not cached).

        On the local disk its directory: ``pyarrow.dataset.dataset(location)``, DuckDB's
        ``read_parquet(f"{location}/*.parquet")`` and Spark read the table as it is. On S3
        its URI (``s3://bucket/prefix/<key>``); a Delta entry's is the table's root.
        """
        provenance = self._required("cache_location")
        if provenance.cache_entry is None:
            return None
        from .cache import Cache

        # The location alone: no request to the store (whose credentials may be elsewhere).
        return Cache(provenance.cache_dir).backend.uri(provenance.cache_entry)

    def freshness(self, *, client: Client | None = None) -> Freshness:
        """Ask how many contacts are new since the frame's export (free).

        Raises
        ------
        ArgumentError
            The frame was not read by export (pages have no history entry).
        """
        provenance = self._required("freshness()")
        ids = provenance.history_ids or (
            () if provenance.history_id is None else (provenance.history_id,)
        )
        if not ids:
            raise ArgumentError(
                "df.spherescout.freshness() needs an export's history entry; this frame was "
                f"read by {provenance.method}, which has none"
            )
        own = client is None
        if client is None:
            from .api.client import Client

            client = Client()
        try:
            return client.history.freshness(ids[-1])
        finally:
            if own:
                client.close()

    def refresh(
        self, *, full: bool = False, max_credits: int | None = None, client: Client | None = None
    ) -> pd.DataFrame:
        """Return the frame brought up to date.

        From its cache entry when it has one (by delta for an export, paying only what
        changed; pages are read again for free); an export frame that was not cached takes
        the delta since its history entry, merged by ``place_id``; ``full=True`` reads it
        again whole (an export then pays in full). Calling it is the consent to pay for the
        delta; ``max_credits`` bounds it.

        Raises
        ------
        ArgumentError
            The frame did not come from scoutframe (no provenance).
        BudgetError
            The delta costs more than ``max_credits``; nothing is spent.
        """
        from .read.refresh import refresh_frame

        self._required("refresh()")
        return refresh_frame(self._df, full=full, max_credits=max_credits, client=client)

    @property
    def emails_masked(self) -> bool:
        """Whether the ``email`` column holds masked placeholders (read by pages)."""
        provenance = self.provenance
        return bool(provenance and provenance.emails_masked)

    def to_parquet(self, path: str | os.PathLike[str]) -> Path:
        """Write the frame to Parquet, atomically.

        ``scoutframe.read_parquet(path)`` gives back the dtypes, the lists and the provenance;
        plain ``pd.read_parquet(path)`` reads it too (see :mod:`scoutframe.tables.parquet`).
        """
        from .tables.parquet import to_parquet

        return to_parquet(self._df, path)

    def to_csv(self, path: str | os.PathLike[str], *, escape_formulas: bool = True) -> Path:
        """Write the frame in the API's export CSV format (``read_export_csv`` reads it back).

        Text cells a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``,
        ``@``, a tab or a carriage return; numbers and phone numbers such as ``+33 1 23 45 67
        89`` aside) get an apostrophe in front, which ``read_export_csv`` takes off again;
        ``escape_formulas=False`` writes them as they are (see
        :mod:`scoutframe.tables.formulas`).
        """
        from .tables.exportcsv import to_csv

        return to_csv(self._df, path, escape_formulas=escape_formulas)

    def to_excel(self, path: str | os.PathLike[str], *, escape_formulas: bool = True) -> Path:
        """Write the frame to an Excel workbook (``pip install "scoutframe[excel]"``).

        Timestamps are written without their zone, named in the header (``(UTC)``); lists
        are joined with ``"; "``; zip codes stay text. A text a spreadsheet would run as a
        formula is written as a text cell (Excel's invisible quote prefix), unless
        ``escape_formulas=False``.
        """
        from .tables.excel import to_excel

        return to_excel(self._df, path, escape_formulas=escape_formulas)

    def to_dataset(
        self,
        path: str | os.PathLike[str],
        *,
        partition_by: Sequence[str] = ("country",),
        storage_options: Mapping[str, Any] | None = None,
    ) -> Path | str:
        """Write the frame as a hive-partitioned Parquet dataset, swapped in atomically.

        ``path`` may be ``s3://bucket/prefix`` (see :func:`scoutframe.write_dataset`).
        """
        from .tables.datasets import write_dataset

        return write_dataset(
            self._df, path, partition_by=partition_by, storage_options=storage_options
        )

    def to_delta(
        self,
        uri: str | os.PathLike[str],
        *,
        mode: str = "merge",
        storage_options: Mapping[str, str] | None = None,
        partition_by: Sequence[str] | None = None,
    ) -> int:
        """Write the frame to a Delta Lake table (``pip install "scoutframe[delta]"``).

        ``mode="merge"`` (default) upserts by ``place_id`` with :func:`scoutframe.upsert`'s
        rule through delta-rs's ``MERGE``; ``"overwrite"`` replaces the rows (old versions
        stay readable); ``"append"`` adds them. Returns the table version written. See
        :func:`scoutframe.write_delta`.
        """
        require("deltalake", feature="to_delta", extra="delta")
        from .tables.delta import write_delta

        return write_delta(
            self._df,
            uri,
            mode=mode,  # type: ignore[arg-type]
            storage_options=storage_options,
            partition_by=None if partition_by is None else list(partition_by),
        )

    def to_arrow(self) -> pa.Table:
        """Return the frame as a ``pyarrow.Table`` with the contacts schema (no index)."""
        from .tables.frames import table_from_pandas

        return table_from_pandas(self._df)

    def to_polars(self) -> polars.DataFrame:
        """Return the frame as a Polars DataFrame (zero-copy for Arrow-backed columns)."""
        from .tables.frames import to_polars

        return to_polars(self._df)

    def explode_emails(self) -> pd.DataFrame:
        """Return one row per email address (contacts without one are dropped)."""
        exploded = self._df.explode("email", ignore_index=True)
        return exploded[exploded["email"].notna()].reset_index(drop=True)

    def with_primary_phone(self) -> pd.DataFrame:
        """Return a copy with a ``primary_phone`` column: the first phone, or null."""
        phones = self._df["phone"]
        first: pd.Series
        if isinstance(phones.dtype, pd.ArrowDtype):
            import pyarrow as pa
            import pyarrow.compute as pc

            lists = pa.chunked_array(pa.array(phones.array))
            # list_element fails on empty lists, so they become nulls first
            lists = pc.if_else(pc.equal(pc.list_value_length(lists), 0), None, lists)
            values = pc.list_element(lists, 0)
            first = pd.Series(values, index=phones.index, dtype=pd.ArrowDtype(values.type))
        else:
            from .tables.frames import NULLABLE_STRING

            first = phones.map(lambda values: values[0] if len(values) else None)
            first = first.astype(NULLABLE_STRING)
        return self._df.assign(primary_phone=first)
