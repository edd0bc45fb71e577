"""Fixtures shared by every test directory."""

from __future__ import annotations

import os

import pytest

_SCRUBBED_PREFIXES = ("SPHERESCOUT_", "SCOUTFRAME_")
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test without the developer's SphereScout settings or proxies."""
    for name in list(os.environ):
        upper = name.upper()
        if upper.startswith(_SCRUBBED_PREFIXES) or upper in _PROXY_VARS:
            monkeypatch.delenv(name, raising=False)
