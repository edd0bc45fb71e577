"""Imports only go down the floors of docs/architecture.md; the sandbox is a separate wing."""

from __future__ import annotations

import ast
from pathlib import Path

import scoutframe

PACKAGE = Path(scoutframe.__file__).parent

# Lower floors first; a module may import its own floor or any floor below it.
FLOORS: list[set[str]] = [
    {"_version", "_redact", "errors", "checks", "files", "config", "auth"},
    {"retry", "wire_errors", "sessions", "transport"},
    # jobs sits with the client: client.exports returns ExportJob handles.
    {"models", "filters", "endpoints", "client", "jobstore", "charging", "downloads", "jobs"},
    {"schema", "csvread", "frames", "progress", "merge", "formats"},
    {"cache", "datasets"},
    {"read"},
    {"accessor", "cli", "demo", "widgets"},
]
# Known exceptions, each with its reason.
ALLOWED_UPWARD = {
    # register_pandas() imports the accessor module, whose import registers df.spherescout.
    ("read", "accessor"),
}
_FLOOR_OF = {name: level for level, names in enumerate(FLOORS) for name in names}


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


def _scoutframe_imports(path: Path) -> set[str]:
    """First-level scoutframe modules a file imports at run time (``TYPE_CHECKING`` aside)."""
    names: set[str] = set()
    package_parts = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package_parts[: len(package_parts) - node.level + 1])
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            if module == "scoutframe":
                names.update(alias.name for alias in node.names)
            elif module.startswith("scoutframe."):
                names.add(module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("scoutframe."):
                    names.add(alias.name.split(".")[1])
    return names


def test_sandbox_imports_nothing_of_the_client() -> None:
    files = sorted((PACKAGE / "sandbox").rglob("*.py"))
    assert len(files) > 5
    for path in files:
        outside = {name for name in _scoutframe_imports(path) if name != "sandbox"}
        assert not outside, f"{path.name} imports {sorted(outside)} from the client side"


def test_client_side_imports_only_go_down() -> None:
    checked = 0
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "sandbox" or relative == Path("__init__.py"):
            continue
        own = relative.parts[0].removesuffix(".py")
        if own not in _FLOOR_OF:
            continue
        checked += 1
        for name in _scoutframe_imports(path) - {own}:
            if name == "sandbox":
                assert own in {"demo", "cli"}, f"{relative} imports the sandbox"
                continue
            assert name in _FLOOR_OF, f"{relative} imports unknown module {name!r}"
            if (own, name) in ALLOWED_UPWARD:
                continue
            assert _FLOOR_OF[name] <= _FLOOR_OF[own], (
                f"{relative} (floor {_FLOOR_OF[own]}) imports {name} (floor {_FLOOR_OF[name]})"
            )
    assert checked >= 30


# getattr(obj, "name", default) hides a misspelt or missing attribute of our own objects from
# mypy (issue 7 found a retry setting read that way from an object that did not have it).
ALLOWED_GETATTR_DEFAULTS = {
    # any iterator the caller passed: only generators and our chunk readers have close()
    ("cli/search.py", "close"),
    # a standard attribute of exceptions that exists only once a note was added
    ("cli/_terms.py", "__notes__"),
    # urllib3's response objects (not ours): read1 and retries depend on the adapter
    ("downloads.py", "read1"),
    ("transport.py", "retries"),
    # a threading.local: the flag exists in a thread only once that thread set it
    ("widgets/view.py", "syncing"),
}


def test_no_getattr_with_a_default_outside_the_known_cases() -> None:
    found = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "sandbox":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "getattr" and len(node.args) == 3):  # fmt: skip
                name = node.args[1]
                label = name.value if isinstance(name, ast.Constant) else ast.unparse(name)
                found.add((relative.as_posix(), label))
    assert found == ALLOWED_GETATTR_DEFAULTS
