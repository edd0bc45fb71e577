"""The ``df.spherescout`` accessor: provenance and conversions of a contacts frame.

Registered by :func:`scoutframe.read.register_pandas` (run by ``import scoutframe``). It keeps
no state of its own: everything comes from the frame and its ``attrs``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from .models import PROVENANCE_ATTR, Provenance

if TYPE_CHECKING:
    import polars
    import pyarrow as pa

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

    @property
    def emails_masked(self) -> bool:
        """Whether the ``email`` column holds masked placeholders (read by pages)."""
        provenance = self.provenance
        return bool(provenance and provenance.emails_masked)

    def to_arrow(self) -> pa.Table:
        """Return the frame as a ``pyarrow.Table`` with the contacts schema (no index)."""
        from .frames import table_from_pandas

        return table_from_pandas(self._df)

    def to_polars(self) -> polars.DataFrame:
        """Return the frame as a Polars DataFrame (zero-copy for Arrow-backed columns)."""
        from .frames import to_polars

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
            first = phones.map(lambda values: values[0] if len(values) else None).astype("string")
        return self._df.assign(primary_phone=first)
