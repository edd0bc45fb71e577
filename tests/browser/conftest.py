"""Real-browser tests: JupyterLab on loopback, driven by Playwright with Debian's Chromium.

Registers the ``browser`` marker here, so these tests run before it is listed in
``pyproject.toml`` (``--strict-markers`` would refuse an unknown one).
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives a real browser (Chromium) against a local JupyterLab"
    )
