"""atomic_write: the old file or the new one, never half of one, and no temporary left over."""

from __future__ import annotations

import ast
import stat
from pathlib import Path

import pyarrow as pa
import pytest

import scoutframe.sandbox
from scoutframe.sandbox import csvexport
from scoutframe.sandbox.atomic import atomic_write
from scoutframe.sandbox.columns import CONTACT_COLUMNS

SANDBOX = Path(scoutframe.sandbox.__file__).parent


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_the_new_file_replaces_the_old_one(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")
    with atomic_write(target) as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(".data.bin.")
        assert tmp.name.endswith(".part")
        tmp.write_bytes(b"new")
        assert target.read_bytes() == b"old"  # nothing is visible before the block ends
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert _leftovers(tmp_path) == []


def _write_half_then_fail(target: Path, error: BaseException) -> None:
    with atomic_write(target) as tmp:
        with open(tmp, "wb") as out:
            out.write(b"half of the new")
        raise error


def test_an_exception_mid_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    target.write_bytes(b"old contents")
    with pytest.raises(RuntimeError, match="disk on fire"):
        _write_half_then_fail(target, RuntimeError("disk on fire"))
    assert target.read_bytes() == b"old contents"
    assert _leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.bin"]


def test_a_failed_first_write_creates_nothing(tmp_path: Path) -> None:
    target = tmp_path / "new.bin"
    with pytest.raises(KeyboardInterrupt):
        _write_half_then_fail(target, KeyboardInterrupt())
    assert list(tmp_path.iterdir()) == []


def test_exclusive_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "secret.key"
    with atomic_write(target, mode=0o600, exclusive=True) as tmp:
        tmp.write_bytes(b"first")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError), atomic_write(target, exclusive=True) as tmp:
        tmp.write_bytes(b"second")
    assert target.read_bytes() == b"first"
    assert _leftovers(tmp_path) == []


def test_a_failing_export_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = pa.table({name: pa.array([None], pa.string()) for name in CONTACT_COLUMNS})
    target = tmp_path / "export.csv"
    target.write_bytes(b"previous export")

    def broken(_contacts: object, _indices: object, out: object) -> int:
        out.write(b"place_id,na")  # type: ignore[attr-defined]
        raise OSError("no space left on device")

    monkeypatch.setattr(csvexport, "_write", broken)
    with pytest.raises(OSError, match="no space"):
        csvexport.write_export_csv(table, target)
    assert target.read_bytes() == b"previous export"
    assert _leftovers(tmp_path) == []


def _renames_outside_the_helper(directory: Path = SANDBOX) -> list[str]:
    """``os.replace``/``link``, any ``.rename()`` or ``tempfile`` in modules but atomic.py."""
    found = []
    for path in sorted(directory.glob("*.py")):
        if path.name == "atomic.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and (
                node.attr == "rename"
                or (node.attr in {"replace", "link"} and ast.unparse(node.value) == "os")
            ):
                found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
            elif isinstance(node, ast.Import | ast.ImportFrom):
                modules = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                )
                if "tempfile" in modules:
                    found.append(f"{path.name}:{node.lineno} imports tempfile")
    return found


def test_every_sandbox_file_write_by_rename_goes_through_the_helper() -> None:
    assert _renames_outside_the_helper() == []


def test_the_scan_would_see_a_rename(tmp_path: Path) -> None:
    (tmp_path / "atomic.py").write_text("import os, tempfile\nos.replace('a', 'b')\n")
    (tmp_path / "other.py").write_text(
        "import os\nimport tempfile\n'x'.replace('a', 'b')\nos.replace(a, b)\np.rename(q)\n"
    )
    assert _renames_outside_the_helper(tmp_path) == [
        "other.py:2 imports tempfile",
        "other.py:4 os.replace",
        "other.py:5 p.rename",
    ]
