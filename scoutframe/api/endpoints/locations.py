"""Locations (free): fuzzy search, browsing by level, lookup by id: ``client.locations``."""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

from ...errors import FilterError
from ._frames import records_frame, require_list

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["LOCATION_DTYPES", "Locations"]

LOCATION_DTYPES = {
    "id": "Int64",
    "name": "string",
    "type": "string",
    "country": "string",
    "parent_id": "Int64",
}


class Locations:
    """Find and browse locations (regions, counties/departments, cities).

    Every method returns a DataFrame with columns ``id`` (Int64), ``name``, ``type``
    (``"level1"``/``"level2"``/``"level3"``), ``country`` and ``parent_id`` (Int64), plus any
    extra fields the server sends. Answers are cached on the client.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._cache: dict[tuple[Any, ...], pd.DataFrame] = {}

    def __repr__(self) -> str:
        return "Locations()"

    def _get(self, path: str, params: list[tuple[str, str]]) -> pd.DataFrame:
        key = (path, tuple(params))
        cached = self._cache.get(key)
        if cached is None:
            data = self._client.transport.get_json(path, params=params or None)
            items = require_list(
                data, "locations", key="locations" if isinstance(data, Mapping) else None
            )
            cached = self._cache[key] = records_frame(items, LOCATION_DTYPES)
        return cached.copy()

    def search(self, q: str, *, country: str | None = None) -> pd.DataFrame:
        """Fuzzy search by bare place name (``"Paris"``), at most 10 per level.

        Parameters
        ----------
        q
            The place name.
        country
            An ISO alpha-2 code to search within.

        Returns
        -------
        pandas.DataFrame
            Best matches first; empty when nothing matches.
        """
        if not isinstance(q, str) or not q.strip():
            raise FilterError(f"q must be a non-empty place name, not {q!r}")
        params = [("q", q.strip())]
        if country:
            params.append(("country", _code(country)))
        return self._get("/api/locations/search", params)

    def level1(self, country: str) -> pd.DataFrame:
        """Every level-1 area (region, state) of ``country``."""
        return self._get("/api/locations/level1", [("country", _code(country))])

    def level2(self, country: str, level1: int) -> pd.DataFrame:
        """Every level-2 area (county, department) inside the level-1 area ``level1``."""
        return self._get(
            "/api/locations/level2", [("country", _code(country)), ("states", str(_id(level1)))]
        )

    def level3(self, country: str, level2: int) -> pd.DataFrame:
        """Every level-3 area (city) inside the level-2 area ``level2``."""
        return self._get(
            "/api/locations/level3",
            [("country", _code(country)), ("counties", str(_id(level2)))],
        )

    def lookup(self, ids: int | Iterable[int]) -> pd.DataFrame:
        """Look locations up by id, whatever their level."""
        items: Iterable[Any] = (
            [ids] if isinstance(ids, numbers.Integral) else cast(Iterable[Any], ids)
        )
        wanted = [_id(i) for i in items]
        if not wanted:
            return records_frame([], LOCATION_DTYPES)
        params = [("ids", str(i)) for i in wanted]
        frames = [self._get(f"/api/locations/level{n}", params) for n in (1, 2, 3)]
        found = (
            pd.concat([f for f in frames if len(f)], ignore_index=True)
            if any(len(f) for f in frames)
            else frames[0]
        )
        return found.drop_duplicates(subset="id").reset_index(drop=True)


def _code(country: str) -> str:
    if not isinstance(country, str) or len(country.strip()) != 2:
        raise FilterError(f"country must be an ISO alpha-2 code such as 'FR', not {country!r}")
    return country.strip().upper()


def _id(value: Any) -> int:
    # NumPy and pandas integers (from the library's own tables) are whole numbers too.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise FilterError(f"location ids are integers, not {value!r}")
    return int(value)
