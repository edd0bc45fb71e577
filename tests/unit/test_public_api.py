"""The package's public surface: ``__all__``, lazy imports and the pandas registration."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

import scoutframe
import scoutframe.errors


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert scoutframe.__all__ == sorted(scoutframe.__all__)
    for name in scoutframe.__all__:
        assert getattr(scoutframe, name) is not None, name


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Clinet'"):
        _ = scoutframe.Clinet  # type: ignore[attr-defined]


def test_every_public_error_derives_from_scout_error() -> None:
    errors = [getattr(scoutframe, name) for name in scoutframe.__all__ if name.endswith("Error")]
    assert len(errors) >= 15
    for error in errors:
        assert issubclass(error, scoutframe.ScoutError), error
    # No exception class may shadow a builtin name (ConnectionError, PermissionError, ...).
    import builtins

    for name in dir(scoutframe.errors):
        if isinstance(getattr(scoutframe.errors, name), type):
            assert not hasattr(builtins, name) or getattr(builtins, name) is getattr(
                scoutframe.errors, name
            ), name


def test_import_registers_pandas_reader_and_accessor() -> None:
    assert pd.read_spherescout is scoutframe.read_spherescout  # type: ignore[attr-defined]
    frame = pd.DataFrame({"place_id": ["a"], "name": ["x"]})
    assert frame.spherescout is not None  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="place_id"):
        _ = pd.DataFrame({"x": [1]}).spherescout  # type: ignore[attr-defined]


def test_import_is_light() -> None:
    """``import scoutframe`` pulls in no widgets, progress bars, HTTP stack or sandbox."""
    code = "import sys, json, scoutframe; print(json.dumps(sorted(m for m in sys.modules)))"
    loaded = set(json.loads(subprocess.check_output([sys.executable, "-c", code], text=True)))
    for heavy in (
        "tqdm",
        "ipywidgets",
        "fastapi",
        "uvicorn",
        "scoutframe.sandbox",
        "requests",
        "urllib3",
        "IPython",
        "scoutframe.magic",
    ):
        assert heavy not in loaded, heavy
    assert "scoutframe.read" in loaded


def test_version_matches_package_metadata() -> None:
    from importlib.metadata import version

    assert scoutframe.__version__ == version("scoutframe")
