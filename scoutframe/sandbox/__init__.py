"""A local emulator of the SphereScout API.

``Sandbox`` runs it (thread or subprocess); ``AdminControl`` drives its ``/_sandbox/``
control plane. Names are loaded lazily so importing the package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scoutframe.sandbox.control import AdminControl
    from scoutframe.sandbox.faults import FaultConfig
    from scoutframe.sandbox.server import Sandbox

__all__ = ["AdminControl", "FaultConfig", "Sandbox"]

_LAZY = {
    "AdminControl": "scoutframe.sandbox.control",
    "FaultConfig": "scoutframe.sandbox.faults",
    "Sandbox": "scoutframe.sandbox.server",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'scoutframe.sandbox' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
