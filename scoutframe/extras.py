"""Optional parts of scoutframe: importing one, or saying in one line which extra installs it.

A bare ``pip install scoutframe`` reads, caches and writes Parquet and CSV. The rest needs an
extra: ``notebook`` (the search form, the ``%%spherescout`` magic), ``excel``
(``to_excel``), ``polars`` (``return_type="polars"``, ``to_polars``), ``sandbox`` (the local
API: ``scoutframe sandbox``, ``scoutframe demo``). Every place that needs one goes through
:func:`require`, so the message is the same everywhere.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["SANDBOX_MODULES", "is_missing", "missing_extra", "require"]

#: The modules of the ``sandbox`` extra's distributions (``pyproject.toml``; a test keeps the
#: two equal): a ``ModuleNotFoundError`` naming one of them means the extra is not installed.
SANDBOX_MODULES = frozenset({"fastapi", "uvicorn", "orjson", "jwt"})


def missing_extra(feature: str, module: str, extra: str) -> ModuleNotFoundError:
    """Return the one-line error for *feature*, which needs *module* from the extra *extra*."""
    return ModuleNotFoundError(
        f'{feature} needs {module}, which is not installed: pip install "scoutframe[{extra}]"',
        name=module,
    )


def is_missing(error: ModuleNotFoundError, modules: frozenset[str] | set[str]) -> bool:
    """Whether *error* says that one of *modules* (top-level names) is not installed."""
    return error.name is not None and error.name.partition(".")[0] in modules


def require(module: str, *, feature: str, extra: str) -> ModuleType:
    """Import *module*, or say in one line that *feature* needs the extra *extra*.

    Parameters
    ----------
    module
        The module to import (``"openpyxl"``).
    feature
        What the user called, as they wrote it (``"to_excel"``).
    extra
        The extra of ``scoutframe`` that installs *module* (``"excel"``).

    Returns
    -------
    types.ModuleType
        The module.

    Raises
    ------
    ModuleNotFoundError
        *module* is not installed: ``to_excel needs openpyxl, which is not installed: pip
        install "scoutframe[excel]"``. A module that is installed but fails to import (a
        missing dependency of its own) raises its own error unchanged.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if not is_missing(err, {module.partition(".")[0]}):
            raise
        raise missing_extra(feature, module, extra) from None
