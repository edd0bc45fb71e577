"""``%%spherescout`` in a real IPython kernel (nbclient), against the sandbox on loopback.

One notebook, built here, runs in a fresh kernel: ``%load_ext scoutframe``, then reads by
``key: value`` lines and by flags, a dry run, a read refused for want of consent, a paid
read within ``--max-credits``, a cached read served again, and the HTML display of the
result. Each check reads the cell's outputs or the kernel's variables as the kernel
printed them, and the credits from the sandbox itself.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from scoutframe.api.client import Client
from scoutframe.sandbox import Sandbox

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SETUP = """\
import json
import scoutframe
client = scoutframe.Client({key!r}, {url!r}, allow_http=True, state_dir={state!r},
                           config_file={state!r} + "/none.toml", poll_interval=(0.05, 0.2))
cache_var = {state!r} + "/expanded-cache"
%load_ext scoutframe
"""
CELLS = {
    "lines": """\
%%spherescout df --client client --method pages --no-progress
# filters, one a line
countries: FR
category: Plumber""",
    "lines_check": "print(json.dumps([len(df), df.attrs['scoutframe']['method'], "
    "sorted(df.attrs['scoutframe']['filters'])]))",
    "flags": "%spherescout flagged --client client --method pages --no-progress "
    "--countries FR --category Plumber --no-website",
    "flags_check": "print(json.dumps([len(flagged), int(flagged['website'].notna().sum()), "
    "flagged.attrs['scoutframe']['filters'].get('website')]))",
    "dry_run": "%%spherescout planned --client client --dry-run\ncountries: FR",
    "dry_run_check": "print('planned' in globals())",
    "refused": "%%spherescout refused --client client --no-progress\ncountries: FR",
    "refused_check": "print('refused' in globals())",
    "paid": """\
%%spherescout paid --client client --method export --max-credits 100 --no-progress
--cache --cache-dir {cache}
countries: FR
category: Plumber""",
    "paid_check": "print(json.dumps([len(paid), paid.attrs['scoutframe']['method'], "
    "paid.attrs['scoutframe']['credits_spent'], paid['email'].dtype.__class__.__name__]))",
    "again": """\
%%spherescout again --client client --method export --max-credits 100 --no-progress
--cache --cache-dir {cache}
countries: FR
category: Plumber""",
    "again_check": "print(json.dumps([len(again), again.attrs['scoutframe']['credits_spent']]))",
    "html": "paid",
    "html_expect": "print(json.dumps([', '.join(cell) for column in ('email', 'categories') "
    "for cell in paid[column] if len(cell) > 1]))",
    "unknown": "%%spherescout x --client client\ncolour: blue",
    "expanded": "%%spherescout expanded --client client --method pages --no-progress "
    "--cache --cache-dir {{cache_var}}\ncountries: FR\ncategory: Plumber",
}


def _usage_error(cell: Any) -> str:
    """The cell's IPython ``UsageError`` line (IPython prints it; the reply is an error)."""
    stderr = "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stderr")
    lines = [line for line in stderr.splitlines() if line.startswith("UsageError: ")]
    assert len(lines) == 1, stderr
    return lines[0].removeprefix("UsageError: ")


def _outputs(cell: Any) -> tuple[str, str, list[dict[str, Any]]]:
    stdout = "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")
    plain = "".join(
        "".join(o.get("data", {}).get("text/plain", "")) for o in cell.outputs if "data" in o
    )
    errors = [o for o in cell.outputs if o["output_type"] == "error"]
    return stdout, plain, errors


@pytest.fixture(scope="module")
def ran(sandbox_docs: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("magic")
    account = sandbox_docs.admin.create_account(credits=100_000)
    nb = nbformat.v4.new_notebook()
    setup = SETUP.format(key=account["api_key"], url=sandbox_docs.url, state=str(root))
    nb.cells = [nbformat.v4.new_code_cell(setup)] + [
        nbformat.v4.new_code_cell(text.format(cache=root / "cache"), metadata={"name": name})
        for name, text in CELLS.items()
    ]
    NotebookClient(nb, timeout=240, kernel_name="python3", allow_errors=True).execute(cwd=str(root))
    _, _, setup_errors = _outputs(nb.cells[0])
    assert setup_errors == []
    cells = {cell.metadata["name"]: cell for cell in nb.cells[1:]}
    with Client(
        account["api_key"],
        sandbox_docs.url,
        allow_http=True,
        state_dir=root / "own",
        config_file=root / "none.toml",
    ) as client:
        credits_left = client.profile().credits
    return {"cells": cells, "credits_left": credits_left, "root": root}


def _json(ran: dict[str, Any], name: str) -> Any:
    stdout, _, errors = _outputs(ran["cells"][name])
    assert errors == [], errors
    return json.loads(stdout)


def test_key_value_lines_read_into_the_variable(ran) -> None:
    _, plain, errors = _outputs(ran["cells"]["lines"])
    assert errors == []
    assert plain == ""  # the frame went into `df`, nothing displayed
    rows, method, filters = _json(ran, "lines_check")
    assert rows > 0
    assert method == "pages"
    assert filters == ["category", "countries"]


def test_the_read_s_warnings_point_at_the_cell_in_the_flags_words(ran) -> None:
    cell = ran["cells"]["lines"]
    stderr = "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stderr")
    assert "MaskedEmailWarning" in stderr
    assert "--method export" in stderr
    assert "IPython" not in stderr
    assert "scoutframe/" not in stderr  # the cell's own file, not the library's


def test_cli_style_flags_are_filters_too(ran) -> None:
    assert _outputs(ran["cells"]["flags"])[2] == []
    rows, websites, website_filter = _json(ran, "flags_check")
    assert rows > 0
    assert websites == 0  # --no-website: only contacts without one
    assert website_filter is False


def test_dry_run_shows_the_plan_and_binds_nothing(ran) -> None:
    _, plain, errors = _outputs(ran["cells"]["dry_run"])
    assert errors == []
    assert "credits" in plain.lower()
    assert _outputs(ran["cells"]["dry_run_check"])[0].strip() == "False"


def test_a_read_that_would_spend_without_consent_is_refused_in_one_line(ran) -> None:
    message = _usage_error(ran["cells"]["refused"])
    assert "nothing was spent" in message
    assert "--method export" in message
    assert "--max-credits" in message
    assert "method='export'" not in message  # in the magic's words, not Python's
    assert _outputs(ran["cells"]["refused_check"])[0].strip() == "False"


def test_a_budget_buys_the_export_once_and_the_cache_serves_it_again(ran) -> None:
    rows, method, spent, email_dtype = _json(ran, "paid_check")
    assert method == "export"
    assert 0 < spent <= 100
    assert spent == rows
    assert email_dtype == "ArrowDtype"  # the list column keeps its dtype
    again_rows, again_spent = _json(ran, "again_check")
    assert again_rows == rows
    assert again_spent == 0
    assert ran["credits_left"] == 100_000 - spent  # the sandbox's own balance: paid once


def test_the_frame_displays_its_lists_joined(ran) -> None:
    cell = ran["cells"]["html"]
    html = "".join(o["data"]["text/html"] for o in cell.outputs if "data" in o)
    body = html.split("<tbody>")[1]
    joined = _json(ran, "html_expect")  # every list cell of two items or more, as text
    assert joined  # the sandbox's plumbers have secondary categories
    width = 50  # pandas' display.max_colwidth: a longer cell ends in "..." (as pandas does)
    for text in joined:
        shown = f"<td>{escape(text)}</td>" if len(text) <= width else f"<td>{escape(text[:40])}"
        assert shown in body, text
    assert "[" not in body  # no list repr left
    assert "@" in body  # the export's full emails


def test_the_first_line_is_expanded_by_ipython(ran) -> None:
    assert _outputs(ran["cells"]["expanded"])[2] == []
    assert (ran["root"] / "expanded-cache").is_dir()  # {cache_var}: the kernel's variable
    assert not list(ran["root"].glob("{*"))


def test_an_unknown_filter_is_a_usage_error(ran) -> None:
    message = _usage_error(ran["cells"]["unknown"])
    assert message.startswith("Unknown filter 'colour'")


def test_a_refused_read_stops_a_run_of_the_whole_notebook(tmp_path) -> None:
    """IPython's UsageError makes the cell's reply an error: "Run All" stops there."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext scoutframe"),
        nbformat.v4.new_code_cell("%%spherescout df\ncolour: blue"),
        nbformat.v4.new_code_cell("print('ran on')"),
    ]
    with pytest.raises(CellExecutionError, match="Unknown filter 'colour'"):
        NotebookClient(nb, timeout=120, kernel_name="python3").execute(cwd=str(tmp_path))
    assert nb.cells[2].outputs == []
