"""scoutframe: SphereScout business contacts as pandas DataFrames."""

from __future__ import annotations

__version__ = "0.1.0"
