"""Argument checks shared by every public entry point, each raising one documented type.

:func:`whole_number` and :func:`one_of` raise :class:`~scoutframe.errors.ArgumentError`
(also a ``TypeError`` and a ``ValueError``) with a message that names the argument, what was
given and how to write it instead.
"""

from __future__ import annotations

import numbers
from collections.abc import Collection
from typing import Literal, TypeVar, cast

from .errors import ArgumentError

__all__ = [
    "DTYPE_BACKENDS",
    "DtypeBackend",
    "dtype_backend",
    "one_of",
    "optional_whole_number",
    "positive_number",
    "whole_number",
]

_T = TypeVar("_T")

DtypeBackend = Literal["pyarrow", "numpy_nullable"]
#: The values ``dtype_backend=`` accepts everywhere.
DTYPE_BACKENDS: tuple[DtypeBackend, ...] = ("pyarrow", "numpy_nullable")


#: The largest whole number an argument may take (Arrow's and NumPy's int64).
MAX_WHOLE = 2**63 - 1


def whole_number(name: str, value: object, *, minimum: int = 0, maximum: int = MAX_WHOLE) -> int:
    """Return ``value`` as an ``int`` when it is a whole number in ``[minimum, maximum]``.

    Booleans, floats and numeric strings are refused (with the spelling to use instead), so
    ``nrows="5"`` or ``nrows=2.0`` never slips through as something else.

    Raises
    ------
    ArgumentError
        When ``value`` is not an integer or is below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        hint = ""
        if isinstance(value, str) and value.strip().isdigit():
            hint = f"; write {name}={int(value)} (a number, not a string)"
        elif isinstance(value, float) and value.is_integer():
            hint = f"; write {name}={int(value)}"
        raise ArgumentError(
            f"{name} must be a whole number (int) >= {minimum}, not {value!r} "
            f"({type(value).__name__}){hint}"
        )
    number = int(value)
    if number < minimum:
        raise ArgumentError(f"{name} must be >= {minimum}, not {number}")
    if number > maximum:
        raise ArgumentError(f"{name} must be <= {maximum:,}, not {number:,}")
    return number


def optional_whole_number(
    name: str, value: object, *, minimum: int = 0, maximum: int = MAX_WHOLE
) -> int | None:
    """:func:`whole_number`, letting ``None`` through."""
    return None if value is None else whole_number(name, value, minimum=minimum, maximum=maximum)


def positive_number(name: str, value: object) -> float:
    """Return ``value`` as a ``float`` when it is a real number > 0 (seconds, factors)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or float(value) <= 0:
        raise ArgumentError(f"{name} must be a number > 0, not {value!r}")
    return float(value)


def one_of(name: str, value: _T, choices: Collection[_T]) -> _T:
    """Return ``value`` when it is one of ``choices``; else say which are accepted."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ArgumentError(f"{name} must be one of {listed}, not {value!r}")
    return value


def dtype_backend(value: object) -> DtypeBackend:
    """Check a ``dtype_backend=`` argument: ``"pyarrow"`` or ``"numpy_nullable"``."""
    one_of("dtype_backend", value, DTYPE_BACKENDS)
    return cast(DtypeBackend, value)
