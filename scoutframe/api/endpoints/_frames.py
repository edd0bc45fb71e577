"""Small helpers to turn reference lists into typed DataFrames (extra keys kept as columns)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ...errors import APIError

__all__ = ["records_frame", "require_list"]


def require_list(data: Any, what: str, key: str | None = None) -> list[Mapping[str, Any]]:
    """Return the list of objects in ``data`` (a bare list, or under ``key``)."""
    items = data.get(key) if key is not None and isinstance(data, Mapping) else data
    if not isinstance(items, list):
        raise APIError(
            200,
            f"expected a list of {what}, got {type(items).__name__}",
            data,
            hint="Check that base_url points at the SphereScout API",
        )
    return [item for item in items if isinstance(item, Mapping)]


def records_frame(items: Sequence[Mapping[str, Any]], dtypes: Mapping[str, str]) -> pd.DataFrame:
    """Build a DataFrame: the ``dtypes`` columns first (always present), then any extra keys."""
    frame = pd.DataFrame.from_records(list(items)) if items else pd.DataFrame()
    columns: dict[str, pd.Series] = {}
    for name, dtype in dtypes.items():
        values = frame[name] if name in frame.columns else pd.Series([None] * len(frame))
        if dtype.startswith(("Int", "Float")):
            values = pd.to_numeric(values, errors="coerce")
        columns[name] = values.reset_index(drop=True).astype(dtype)  # type: ignore[call-overload]
    out = pd.DataFrame(columns, index=pd.RangeIndex(len(frame)))
    for name in frame.columns:
        if name not in out.columns:
            out[name] = frame[name].to_numpy()
    return out
