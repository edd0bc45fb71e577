"""Shared pieces of the reliability suite: seeds, the soak switch and the figures report.

Every test here is marked ``reliability``. The default run is bounded (fixed seeds, a few
minutes); ``--soak`` (or ``SCOUTFRAME_SOAK=1`` in the environment of pytest) runs more seeds
and more crash points. Tests add their counts through the ``figures``
fixture (``tests/conftest.py``: summed over xdist's workers); the run prints them at the end
(and ``docs/reliability.md`` quotes them).
"""

from __future__ import annotations

import os

import pytest

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
