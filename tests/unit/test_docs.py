"""The documentation says what the code is: the architecture map and the API reference."""

from __future__ import annotations

import re
from pathlib import Path

import scoutframe

PACKAGE = Path(scoutframe.__file__).parent
DOCS = PACKAGE.parent / "docs"
ARCHITECTURE = (DOCS / "architecture.md").read_text(encoding="utf-8")


def _modules() -> list[Path]:
    skip = {"__init__.py", "__main__.py"}
    return sorted(p.relative_to(PACKAGE) for p in PACKAGE.rglob("*.py") if p.name not in skip)


def _rows(text: str = ARCHITECTURE) -> list[tuple[str, set[str]]]:
    """Each table row of the map: its first cell, and every `name` written in the row."""
    rows = []
    for line in text.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1].strip()
            rows.append((first, set(re.findall(r"`([^`]+)`", line))))
    return rows


def _documented(module: Path, rows: list[tuple[str, set[str]]]) -> bool:
    path = module.as_posix()
    sandbox = ARCHITECTURE[ARCHITECTURE.index("## The sandbox") :]
    if module.parts[0] == "sandbox":
        return f"`{module.name}`" in sandbox
    for first, names in rows:
        if path in names:
            return True
        folder = f"`{module.parent.as_posix()}/`"
        if first == folder and module.name in names:
            return True
    return False


def test_every_module_is_on_the_map() -> None:
    rows = _rows()
    missing = [m.as_posix() for m in _modules() if not _documented(m, rows)]
    assert len(_modules()) > 90
    assert not missing, f"docs/architecture.md does not say what these modules do: {missing}"


def test_every_module_the_map_names_exists() -> None:
    client_side = ARCHITECTURE[: ARCHITECTURE.index("## The sandbox")]
    named = set()
    for first, names in _rows(client_side):
        if first.endswith("/`"):  # a folder: the modules written in its row are in it
            folder = first.strip("`")
            named |= {f"{folder}{n}" for n in names if n.endswith(".py")}
        elif first.endswith(".py`"):
            named.add(first.strip("`"))
    gone = sorted(n for n in named if not (PACKAGE / n).exists())
    assert len(named) > 60
    assert not gone, f"docs/architecture.md names modules that do not exist: {gone}"


def test_the_api_reference_lists_exactly_the_public_names() -> None:
    reference = (DOCS / "api.rst").read_text(encoding="utf-8")
    listed = set(re.findall(r"^   (\w+)$", reference, re.MULTILINE)) - {"SphereScoutAccessor"}
    assert listed == set(scoutframe.__all__) - {"__version__"}
