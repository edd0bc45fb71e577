"""List cells shown as ``a@b.fr, c@d.fr`` in the notebook HTML of contacts frames only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from scoutframe import display
from scoutframe.tables import frames

RECORDS = [
    {"place_id": "p1", "name": "Léon", "email": ["a@b.fr", "c@d.fr"], "phone": ["01 02"]},
    {"place_id": "p2", "name": "Zoé", "email": [], "phone": "03 04", "categories": ["Plumber"]},
]


@pytest.fixture(params=["pyarrow", "numpy_nullable"])
def contacts(request: pytest.FixtureRequest) -> pd.DataFrame:
    table = frames.records_to_table(RECORDS)
    return frames.to_pandas(table, dtype_backend=request.param)


def test_list_cells_are_joined_and_the_frame_is_unchanged(contacts: pd.DataFrame) -> None:
    before = contacts.dtypes.copy()
    html = display.contacts_html(contacts)
    assert html is not None
    assert "<td>a@b.fr, c@d.fr</td>" in html
    assert "<td>03 04</td>" in html  # the live API's string phone, a one-element list
    assert "[" not in html.split("<tbody>")[1]  # no list repr left in any cell
    assert contacts.dtypes.equals(before)
    assert list(contacts.loc[0, "email"]) == ["a@b.fr", "c@d.fr"]


def test_numpy_arrays_from_parquet_are_joined_too(tmp_path) -> None:
    frame = pd.DataFrame(
        {"place_id": ["p1"], "email": pd.Series([np.array(["a@b.fr", "c@d.fr"])], dtype=object)}
    )
    assert "<td>a@b.fr, c@d.fr</td>" in display.contacts_html(frame)


def test_the_html_is_pandas_own_apart_from_the_list_cells(contacts: pd.DataFrame) -> None:
    """Same table, classes, truncation and dimensions footer as ``_repr_html_``."""
    long = pd.concat([contacts] * 40, ignore_index=True)  # 80 rows: truncated
    scalars = long.drop(columns=["email", "phone", "categories"])
    with pd.option_context("display.max_rows", 20, "display.min_rows", 6):
        ours = display.contacts_html(long)
        theirs = long._repr_html_()
        assert display.contacts_html(scalars) == scalars._repr_html_()
    assert ours is not None
    assert ours.count("<tr>") == theirs.count("<tr>")
    assert "80 rows \u00d7 20 columns" in ours
    assert ours.splitlines()[:3] == theirs.splitlines()[:3]


def test_a_selection_without_place_id_is_joined_too(contacts: pd.DataFrame) -> None:
    assert "<td>a@b.fr, c@d.fr</td>" in display.contacts_html(contacts[["name", "email"]])


def test_other_frames_keep_pandas_display() -> None:
    for other in (
        pd.DataFrame({"tags": [["a", "b"]]}),  # a list column the contacts do not have
        pd.DataFrame({"email": ["a@b.fr"]}),  # an email column of plain strings
        pd.DataFrame({"email": [None, None]}, dtype=object),
    ):
        assert display.contacts_html(other) == other._repr_html_()


def test_joined() -> None:
    assert display.joined(["a", "b"]) == "a, b"
    assert display.joined(np.array(["a"])) == "a"
    assert display.joined([]) == ""
    assert display.joined(pa.scalar(1).as_py()) == "1"


class _Formatter:
    def __init__(self) -> None:
        self.types: dict[type, object] = {}

    def for_type(self, kind: type, func: object) -> None:
        self.types[kind] = func


class _Shell:
    def __init__(self) -> None:
        self.display_formatter = type("F", (), {"formatters": {"text/html": _Formatter()}})()


def test_register_in_ipython_only_when_a_shell_runs() -> None:
    assert display.register_in_ipython({}) is False  # no IPython imported
    idle = type("IPython", (), {"get_ipython": staticmethod(lambda: None)})
    assert display.register_in_ipython({"IPython": idle}) is False  # imported, no shell
    shell = _Shell()
    running = type("IPython", (), {"get_ipython": staticmethod(lambda: shell)})
    assert display.register_in_ipython({"IPython": running}) is True
    assert shell.display_formatter.formatters["text/html"].types[pd.DataFrame] is (
        display.contacts_html
    )
