"""The published metadata says what the nox matrix tests, in classifiers trove knows."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from trove_classifiers import classifiers as known

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _noxfile_constant(name: str) -> object:
    """A literal of noxfile.py, read without importing nox."""
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                assert node.value is not None
                return ast.literal_eval(node.value)
    raise AssertionError(f"noxfile.py has no {name}")


def test_every_classifier_is_a_trove_classifier() -> None:
    unknown = [c for c in PROJECT["classifiers"] if c not in known]
    assert unknown == []


def test_the_python_classifiers_are_the_tested_pythons() -> None:
    pythons = _noxfile_constant("PYTHONS")
    listed = [
        c.rsplit(" :: ", 1)[1]
        for c in PROJECT["classifiers"]
        if c.startswith("Programming Language :: Python :: 3.")
    ]
    assert listed == list(pythons)  # type: ignore[arg-type]
    assert PROJECT["requires-python"] == f">={pythons[0]}"  # type: ignore[index]


def test_the_pandas_floor_is_the_oldest_pandas_line_tested() -> None:
    lines = _noxfile_constant("PANDAS")
    assert "pandas>=2.2" in PROJECT["dependencies"]
    assert min(lines, key=lambda line: tuple(map(int, line.split(".")))) == "2.2"  # type: ignore[arg-type]
    cells = [pandas for _, pandas, _ in ast.literal_eval(_cells_source())]
    assert set(cells) == set(lines)  # type: ignore[arg-type]


def _cells_source() -> str:
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "CELLS" for t in node.targets
        ):
            # QUICK is a name in CELLS: replace it by an empty tuple to read the rest
            return ast.unparse(node.value).replace("QUICK", "()")
    raise AssertionError("noxfile.py has no CELLS")


def test_no_test_tool_is_in_a_published_extra() -> None:
    tools = {"pytest", "ruff", "mypy", "nox", "nbval", "hypothesis", "sphinx", "pre-commit"}
    for extra, requirements in PROJECT["optional-dependencies"].items():
        names = {r.split(">")[0].split("=")[0].split("[")[0].strip() for r in requirements}
        assert not names & tools, extra
