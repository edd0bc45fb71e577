"""Tests for a bare ``pip install scoutframe``: run by ``nox -s bare``, in a venv without extras.

The repository's pytest settings leave this directory out (``--ignore=tests/bare``): with
the extras installed, what these tests check cannot happen. Run here anyway, they fail
(not skip) and say why.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import scoutframe

ROOT = Path(__file__).resolve().parents[2]

#: One module of each optional part these tests need absent.
ABSENT = {"ipywidgets": "notebook", "openpyxl": "excel", "polars": "polars", "fastapi": "sandbox"}


@pytest.fixture(autouse=True, scope="session")
def _no_extra_installed() -> None:
    present = [module for module in ABSENT if importlib.util.find_spec(module) is not None]
    assert not present, (
        f"{present} are installed: tests/bare checks an install without extras; "
        "run it with `nox -s bare`"
    )


@pytest.fixture(autouse=True, scope="session")
def _the_installed_wheel() -> None:
    """The package under test is the installed wheel, not the source tree beside the tests."""
    assert Path(scoutframe.__file__).resolve().parent != ROOT / "scoutframe", scoutframe.__file__


@pytest.fixture(autouse=True)
def _outside_the_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Subprocesses (``python -m scoutframe.cli``) would import the source tree from here."""
    monkeypatch.chdir(tmp_path)
