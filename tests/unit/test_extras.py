"""The one-line "install the extra" message (scoutframe.extras); tests/bare meets it for real."""

from __future__ import annotations

import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from scoutframe.extras import SANDBOX_MODULES, require

ROOT = Path(__file__).resolve().parents[2]


def test_a_missing_module_names_the_feature_and_the_extra_in_one_line() -> None:
    with pytest.raises(ModuleNotFoundError) as caught:
        require("scoutframe_absent_module", feature="to_thing", extra="things")
    message = str(caught.value)
    assert message == (
        "to_thing needs scoutframe_absent_module, which is not installed: "
        'pip install "scoutframe[things]"'
    )
    assert "\n" not in message
    assert caught.value.name == "scoutframe_absent_module"
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_an_installed_module_that_fails_to_import_keeps_its_own_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "scoutframe_broken_module.py").write_text("import scoutframe_its_own_dep\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="scoutframe_its_own_dep") as caught:
        require("scoutframe_broken_module", feature="x", extra="y")
    assert "pip install" not in str(caught.value)


def test_an_installed_module_is_returned() -> None:
    assert require("json", feature="x", extra="y") is sys.modules["json"]


def test_the_sandbox_modules_are_those_of_the_sandbox_extra() -> None:
    """Each distribution of the extra provides one of SANDBOX_MODULES, and nothing else is."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extra = {Requirement(r).name.lower() for r in meta["optional-dependencies"]["sandbox"]}
    provided: dict[str, set[str]] = {}
    for module, dists in packages_distributions().items():
        for dist in dists:
            provided.setdefault(dist.lower(), set()).add(module)
    by_dist = {dist: provided[dist] & SANDBOX_MODULES for dist in extra}
    assert all(len(modules) == 1 for modules in by_dist.values()), by_dist
    assert set().union(*by_dist.values()) == SANDBOX_MODULES
