"""The package's shape, as docs/architecture.md draws it, checked on the source.

* floors: imports only go down (or stay on their floor);
* the two wings, ``scoutframe.api`` (the REST client) and ``scoutframe.tables`` (the contacts
  table), never import each other: they meet in ``cache`` and ``read``;
* the sandbox is a wing of its own that imports nothing else of scoutframe;
* no import circle at run time anywhere (imports inside functions count; imports under
  ``if TYPE_CHECKING:`` are for annotations and do not).

Every rule is keyed by full module name (``scoutframe.api.client``), read from the ``ast`` of
each file, so a new module is checked the day it is added.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import scoutframe

PACKAGE = Path(scoutframe.__file__).parent
ROOT = "scoutframe"

# Lower floors first; a module may import its own floor or any floor below it. A module
# belongs to the floor of the longest prefix that names it.
FLOORS: list[set[str]] = [
    # base: no scoutframe import above it
    {
        "scoutframe._version",
        "scoutframe._redact",
        "scoutframe.errors",
        "scoutframe.checks",
        "scoutframe.files",
        "scoutframe.filesystems",
        "scoutframe.clock",
        "scoutframe.progress",
        "scoutframe.extras",
    },
    # records of answers and facts, shared by both wings
    {"scoutframe.models"},
    # the two wings
    {"scoutframe.api", "scoutframe.tables"},
    # the Parquet cache: where the wings meet to store a read
    {"scoutframe.cache"},
    # read_spherescout
    {"scoutframe.read"},
    # notebook, shell and the package's front door
    {
        "scoutframe.accessor",
        "scoutframe.cli",
        "scoutframe.demo",
        "scoutframe.display",
        "scoutframe.magic",
        "scoutframe.widgets",
        ROOT,
    },
]
WINGS = ("scoutframe.api", "scoutframe.tables")
SANDBOX = "scoutframe.sandbox"
#: Faces that start the sandbox: `scoutframe demo` and `scoutframe sandbox`.
MAY_IMPORT_SANDBOX = ("scoutframe.cli", "scoutframe.demo")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:`` (imports for annotations only)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def _imports(name: str) -> set[str]:
    """The scoutframe modules that module ``name`` imports at run time (any depth)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target != ROOT and not target.startswith(ROOT + "."):
                continue
            for alias in node.names:  # `from pkg import module` imports the module
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(ROOT + "."))
    found.discard(name)
    return found


GRAPH = {name: _imports(name) for name in MODULES}


def _floor(name: str) -> int:
    best = max(
        (p for floor in FLOORS for p in floor if name == p or name.startswith(p + ".")), key=len
    )
    return next(level for level, floor in enumerate(FLOORS) if best in floor)


def _wing(name: str) -> str | None:
    return next((w for w in WINGS if name == w or name.startswith(w + ".")), None)


def _in(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_every_module_is_on_a_floor_or_in_the_sandbox() -> None:
    assert len(MODULES) > 80
    for name in MODULES:
        if not _in(name, SANDBOX):
            _floor(name)  # raises ValueError (max of nothing) for a module on no floor


def test_imports_only_go_down() -> None:
    for name, targets in GRAPH.items():
        if _in(name, SANDBOX):
            continue
        for target in targets:
            if _in(target, SANDBOX):
                assert name.startswith(MAY_IMPORT_SANDBOX), f"{name} imports the sandbox"
                continue
            assert _floor(target) <= _floor(name), (
                f"{name} (floor {_floor(name)}) imports {target} (floor {_floor(target)})"
            )


def test_the_api_and_tables_wings_never_import_each_other() -> None:
    checked = 0
    for name, targets in GRAPH.items():
        own = _wing(name)
        if own is None:
            continue
        checked += 1
        for target in targets:
            other = _wing(target)
            assert other in (None, own), f"{name} imports {target}: the wings must not meet"
    assert checked > 25


def test_sandbox_imports_nothing_of_the_client() -> None:
    names = [name for name in GRAPH if _in(name, SANDBOX)]
    assert len(names) > 20
    for name in names:
        outside = sorted(t for t in GRAPH[name] if not _in(t, SANDBOX))
        assert not outside, f"{name} imports {outside} from the client side"


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one import circle of ``graph`` (as a path that ends where it starts), if any."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def test_no_import_circle_at_run_time_anywhere() -> None:
    # The package's own __init__ imports read; every module is inside the package, so edges
    # into the root are the one thing left out (Python runs the root first, always).
    graph = {name: {t for t in targets if t != ROOT} for name, targets in GRAPH.items()}
    cycle = _cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_cycle_check_finds_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


# getattr(obj, "name", default) hides a misspelt or missing attribute of our own objects from
# mypy (issue 7 found a retry setting read that way from an object that did not have it).
ALLOWED_GETATTR_DEFAULTS = {
    # any iterator the caller passed: only generators and our chunk readers have close()
    ("cli/search.py", "close"),
    # a standard attribute of exceptions that exists only once a note was added
    ("cli/_terms.py", "__notes__"),
    # urllib3's response objects (not ours): read1 and retries depend on the adapter
    ("api/bodies.py", "read1"),
    ("api/transport.py", "retries"),
    # constants of the platform's os and errno modules (POSIX has them, Windows not all)
    ("api/downloads.py", "O_NOFOLLOW"),
    ("files.py", "EDQUOT"),
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
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "getattr"
                and len(node.args) == 3
            ):
                name = node.args[1]
                label = name.value if isinstance(name, ast.Constant) else ast.unparse(name)
                found.add((relative.as_posix(), label))
    assert found == ALLOWED_GETATTR_DEFAULTS
