"""A Jupyter search form for SphereScout contacts (ipywidgets 8).

``SearchForm(client)`` builds the form; ``search_form(client)`` builds and displays it. Pick
countries, a category (suggested as you type), a region → county → city (or search a place),
contact-method toggles; the form shows the live count and the export cost against the
account's balance (free calls only), a free preview, and loads by pages (free) or by export
(within ``max_credits``). The result is ``form.df``; ``form.code()`` is the equivalent
``pd.read_spherescout(...)`` call.

The model (:class:`~scoutframe.widgets.model.SearchModel`: state, lookups, count and cost,
loading, code) knows nothing of ipywidgets; the view (:mod:`scoutframe.widgets.view`) only
binds widgets to it. This module imports neither at import time: ipywidgets is imported when
``SearchForm`` or ``search_form`` is first used (``pip install "scoutframe[notebook]"``;
without it, that first use says so in one line).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..extras import require

if TYPE_CHECKING:
    from .model import SearchModel
    from .view import SearchForm, search_form

__all__ = ["SearchForm", "SearchModel", "search_form"]

_LAZY = {
    "SearchForm": "scoutframe.widgets.view",
    "SearchModel": "scoutframe.widgets.model",
    "search_form": "scoutframe.widgets.view",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'scoutframe.widgets' has no attribute {name!r}")
    if module == "scoutframe.widgets.view":  # the form needs ipywidgets; the model does not
        require("ipywidgets", feature=name, extra="notebook")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
