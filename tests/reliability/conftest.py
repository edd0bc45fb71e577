"""Shared pieces of the reliability suite: seeds, the soak switch and the figures report.

Every test here is marked ``reliability``. The default run is bounded (fixed seeds, a few
minutes); ``--soak`` (or ``SCOUTFRAME_SOAK=1`` in the environment of pytest) runs more seeds
and more crash points. Tests add their counts to :data:`FIGURES` through the ``figures``
fixture; the run prints them at the end (and ``docs/reliability.md`` quotes them).
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest

#: Figures of this run: name -> count (summed over the tests that report it).
FIGURES: Counter[str] = Counter()
_SOAK_ENV = "SCOUTFRAME_SOAK"
_SOAK_AT_IMPORT = os.environ.get(_SOAK_ENV, "").strip() not in ("", "0")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.reliability)


def soak_enabled(config: pytest.Config) -> bool:
    """Whether the long run was asked for (``--soak`` or ``SCOUTFRAME_SOAK=1``)."""
    return bool(config.getoption("--soak", default=False)) or _SOAK_AT_IMPORT


@pytest.fixture(scope="session")
def soak(pytestconfig: pytest.Config) -> bool:
    return soak_enabled(pytestconfig)


class Figures:
    """Add to the run's figures: ``figures.add("loads tried", 1)``."""

    def add(self, name: str, value: int = 1) -> None:
        FIGURES[name] += int(value)

    def __getitem__(self, name: str) -> int:
        return FIGURES[name]


@pytest.fixture(scope="session")
def figures() -> Figures:
    return Figures()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("reliability figures")
    width = max(len(name) for name in FIGURES)
    for name in sorted(FIGURES):
        terminalreporter.write_line(f"{name:<{width}}  {FIGURES[name]:>8,}")
