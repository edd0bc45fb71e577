"""The sandbox's modules import each other without a circle (run-time imports, at any depth)."""

from __future__ import annotations

import ast
from pathlib import Path

import scoutframe.sandbox

SANDBOX = Path(scoutframe.sandbox.__file__).parent
PACKAGE = "scoutframe.sandbox"


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:`` (imports for annotations only)."""
    nodes: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        nodes.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                stack.extend(child.orelse)
                continue
            stack.append(child)
    return nodes


def _target(module: str, names: set[str]) -> str | None:
    """The sandbox module that importing ``module`` runs (``__init__`` for the package)."""
    if module == PACKAGE:
        return "__init__"
    if module.startswith(PACKAGE + "."):
        first = module.removeprefix(PACKAGE + ".").split(".")[0]
        return first if first in names else None
    return None


def _edges(path: Path, names: set[str]) -> set[str]:
    """The sandbox modules ``path`` imports at run time, inside functions included."""
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # the package is flat: only ``from .x`` stays inside it
                module = (f"{PACKAGE}.{module}" if module else PACKAGE) if node.level == 1 else ""
            if module == PACKAGE:
                # ``from scoutframe.sandbox import x``: the module x, or a name of __init__
                found.update(a.name if a.name in names else "__init__" for a in node.names)
            elif (target := _target(module, names)) is not None:
                found.add(target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if (target := _target(alias.name, names)) is not None:
                    found.add(target)
    found.discard(path.stem)
    return found


def import_graph(directory: Path = SANDBOX) -> dict[str, set[str]]:
    """Map each module of ``directory`` to the sibling modules it imports at run time."""
    paths = sorted(directory.glob("*.py"))
    names = {p.stem for p in paths}
    return {p.stem: _edges(p, names) for p in paths}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one cycle as a path ``[a, b, ..., a]``, or None when the graph has none."""
    done: set[str] = set()

    def visit(path: list[str]) -> list[str] | None:
        for following in sorted(graph.get(path[-1], ())):
            if following in path:
                return [*path[path.index(following):], following]
            if following not in done:
                cycle = visit([*path, following])
                if cycle is not None:
                    return cycle
        done.add(path[-1])
        return None

    for start in sorted(graph):
        if start not in done and (cycle := visit([start])) is not None:
            return cycle
    return None


def test_the_sandbox_has_no_import_cycle() -> None:
    graph = import_graph()
    assert {"server", "app", "cli", "dataset"} <= set(graph)  # the scan sees the package
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_scan_sees_imports_inside_functions_and_skips_type_checking(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from scoutframe.sandbox.c import C\n"
        "def f():\n    from scoutframe.sandbox.b import g\n    return g\n"
    )
    (tmp_path / "b.py").write_text("import scoutframe.sandbox.a\n")
    (tmp_path / "c.py").write_text("from scoutframe.sandbox import a, Name\n")
    graph = import_graph(tmp_path)
    assert graph == {"a": {"b"}, "b": {"a"}, "c": {"a", "__init__"}}
    assert find_cycle(graph) == ["a", "b", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
