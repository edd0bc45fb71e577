"""The contract's 20 contact columns, declared once (contract section 6).

The dataset's schema, the CSV header, the API's contact records and the OpenAPI contact
schema all derive from `CONTACT_COLUMNS`; this module imports nothing so each can use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

__all__ = ["CONTACT_COLUMNS", "per_column"]

_T = TypeVar("_T")

#: The 20 contract columns, in the CSV order.
CONTACT_COLUMNS: tuple[str, ...] = (
    "place_id",
    "name",
    "email",
    "phone",
    "website",
    "instagram",
    "facebook",
    "address",
    "city",
    "zipcode",
    "level1_location",
    "level2_location",
    "level3_location",
    "country",
    "categories",
    "rating",
    "review_count",
    "latitude",
    "longitude",
    "collected_at",
)


def per_column(values: Mapping[str, _T], default: _T) -> dict[str, _T]:
    """Map every contact column, in `CONTACT_COLUMNS` order, to ``values[name]`` or ``default``.

    Parameters
    ----------
    values
        What differs from ``default``, by column name.
    default
        What every other column gets.

    Returns
    -------
    dict
        One entry per contact column, in contract order.

    Raises
    ------
    ValueError
        When ``values`` names something that is not a contact column (a misspelt name would
        otherwise silently leave its column at ``default``).
    """
    unknown = sorted(set(values) - set(CONTACT_COLUMNS))
    if unknown:
        raise ValueError(f"not contact columns: {', '.join(unknown)}")
    return {name: values.get(name, default) for name in CONTACT_COLUMNS}
