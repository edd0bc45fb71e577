"""Fixtures shared by every test directory."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest

#: The reliability suite's figures of this run: name -> count (summed over the tests that
#: report it and, under pytest-xdist, over the workers: each sends its own to the controller).
FIGURES: Counter[str] = Counter()

_SCRUBBED_PREFIXES = ("SPHERESCOUT_", "SCOUTFRAME_")
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test without the developer's SphereScout settings or proxies."""
    for name in list(os.environ):
        upper = name.upper()
        if upper.startswith(_SCRUBBED_PREFIXES) or upper in _PROXY_VARS:
            monkeypatch.delenv(name, raising=False)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak",
        action="store_true",
        default=False,
        help="reliability suite: run the long soak (more seeds and crash points)",
    )


@pytest.fixture(scope="session")
def s3_server():  # type: ignore[no-untyped-def]
    """A real S3 API (moto's server) on a free loopback port, for the whole session."""
    from s3server import S3Server

    with S3Server() as server:
        yield server


class FakeClock:
    """The retry clock for tests: sleeping only moves time forward and is recorded."""

    def __init__(self) -> None:
        from datetime import UTC, datetime

        self.sleeps: list[float] = []
        self.mono = 1000.0
        self.start = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.mono += seconds

    def now(self):  # type: ignore[no-untyped-def]
        from datetime import timedelta

        return self.start + timedelta(seconds=self.mono - 1000.0)


@pytest.fixture
def fake_clock():  # type: ignore[no-untyped-def]
    """Swap scoutframe's retry clock (every sleep and timeout of the client) for a fake one."""
    from scoutframe import clock as seam

    clock = FakeClock()
    with seam.use_clock(clock):  # type: ignore[arg-type]
        yield clock


class Figures:
    """Add to the run's figures: ``figures.add("loads tried", 1)``."""

    def add(self, name: str, value: int = 1) -> None:
        FIGURES[name] += int(value)

    def __getitem__(self, name: str) -> int:
        return FIGURES[name]


@pytest.fixture(scope="session")
def figures() -> Figures:
    return Figures()


class _FiguresFromWorkers:
    """The xdist controller's side: add each worker's figures when it finishes."""

    @pytest.hookimpl
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        FIGURES.update(getattr(node, "workeroutput", {}).get("reliability_figures", {}))


def pytest_configure(config: pytest.Config) -> None:
    # Registered only with xdist: a bare environment (tests/bare) has no such hook.
    if config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(_FiguresFromWorkers(), "reliability-figures")


def pytest_sessionfinish(session: pytest.Session) -> None:
    output = getattr(session.config, "workeroutput", None)
    if output is not None:  # an xdist worker: the controller prints the sums
        output["reliability_figures"] = dict(FIGURES)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("reliability figures")
    width = max(len(name) for name in FIGURES)
    for name in sorted(FIGURES):
        terminalreporter.write_line(f"{name:<{width}}  {FIGURES[name]:>8,}")
