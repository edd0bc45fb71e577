"""Lenient readers of JSON values, shared by every record: a wrong type means "absent"."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from ..errors import APIError

__all__ = [
    "extra_fields",
    "optional_float",
    "optional_int",
    "optional_str",
    "parse_datetime",
    "require_mapping",
]

_T = TypeVar("_T")


def parse_datetime(value: Any) -> datetime | None:
    """Parse an ISO-8601 timestamp to a UTC datetime (naive taken as UTC); ``None`` if absent."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(float(value), tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _optional(kind: Callable[[Any], _T], value: object) -> _T | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return kind(value)
    except (TypeError, ValueError, OverflowError):
        return None


def optional_int(value: object) -> int | None:
    """Return ``value`` as an int; ``None`` when absent or not a number."""
    return _optional(int, value)


def optional_float(value: object) -> float | None:
    """Return ``value`` as a float; ``None`` when absent or not a number."""
    return _optional(float, value)


def optional_str(value: object) -> str | None:
    """Return ``value`` as a string; ``None`` when absent."""
    return None if value is None else str(value)


def require_mapping(data: Any, what: str) -> Mapping[str, Any]:
    """Return ``data`` when it is a JSON object; else an :class:`APIError` saying what came."""
    if not isinstance(data, Mapping):
        raise APIError(
            200,
            f"expected a JSON object for {what}, got {type(data).__name__}",
            data,
            hint="Check that base_url points at the SphereScout API",
        )
    return data


def extra_fields(data: Mapping[str, Any], known: set[str] | frozenset[str]) -> dict[str, Any]:
    """Return the keys of ``data`` a record does not read, as sent."""
    return {k: v for k, v in data.items() if k not in known}
