"""The search form's model, driven from code over the sandbox: no widget, no front end."""

from __future__ import annotations

import ast
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

import scoutframe
from scoutframe.api.client import Client
from scoutframe.widgets._debounce import Debouncer
from scoutframe.widgets.model import SearchModel

Ledger = Callable[[], list[dict[str, Any]]]


def _model(client: Client, **kwargs: Any) -> SearchModel:
    kwargs.setdefault("progress", False)
    return SearchModel(client, **kwargs)


def test_importing_the_package_and_the_model_leaves_ipywidgets_alone() -> None:
    code = (
        "import sys, json, scoutframe, scoutframe.widgets; "
        "from scoutframe.widgets import SearchModel; "
        "before = 'ipywidgets' in sys.modules; "
        "from scoutframe.widgets import SearchForm; "
        "print(json.dumps([before, 'ipywidgets' in sys.modules]))"
    )
    before, after = json.loads(subprocess.check_output([sys.executable, "-c", code], text=True))
    assert before is False
    assert after is True


def test_count_and_cost_follow_the_choices(client: Client, ledger: Ledger) -> None:
    model = _model(client, debounce=0.5)
    assert model.count is None
    assert "France (FR)" in dict(model.country_options())

    model.set_countries(["FR"])
    assert "figures" in model.pending  # debounced: nothing counted yet
    model.settle()
    in_france = client.search(countries="FR").total_count
    assert (model.count, model.cost, model.balance) == (in_france, in_france, 5_000)
    assert model.plan is not None
    assert model.plan.method == "export"

    model.set_category("Plumber")
    model.settle()
    plumbers = client.search(countries="FR", category="Plumber").total_count
    assert 0 < plumbers < in_france
    assert (model.count, model.cost) == (plumbers, plumbers)
    assert model.category_suggestions[0] == "Plumber"

    regions = model.level_options(1)
    assert regions
    assert all(p.country == "FR" and p.level == 1 for p in regions)
    counts = {
        p.id: client.search(countries="FR", category="Plumber", level1_locations=p.id).total_count
        for p in regions
    }
    region = max(regions, key=lambda p: counts[p.id])
    model.set_location(1, region.id)
    model.settle()
    assert model.count == counts[region.id]
    assert 0 < model.count < plumbers
    assert model.filters == scoutframe.Filters(
        countries="FR", category="Plumber", level1_locations=region.id
    )
    assert model.message == ""
    assert ledger() == []  # counting and costing are free


def test_debounce_runs_once_after_quiet_and_settle_runs_at_once() -> None:
    ran: list[str] = []
    done = threading.Event()

    def run(name: str) -> None:
        ran.append(name)
        done.set()

    slow = Debouncer(run, delay=0.2)
    for _ in range(5):
        slow.schedule("figures")
    assert ran == []
    assert done.wait(5)
    time.sleep(0.3)  # a second run, if there were one, would have happened by now
    assert ran == ["figures"]

    slow.schedule("figures")
    slow.schedule("categories")
    slow.flush(("categories", "figures"))
    assert ran == ["figures", "categories", "figures"]
    assert slow.pending == set()

    inline = Debouncer(run, delay=0)
    inline.schedule("x")
    assert ran[-1] == "x"


def test_preview_and_pages_are_free(client: Client, ledger: Ledger) -> None:
    model = _model(client)
    model.set_countries("FR")
    model.set_category("plumber")
    preview = model.load("preview")
    assert preview is not None
    assert 0 < len(preview) <= 10
    assert preview is model.preview
    assert preview["email"].explode().dropna().str.contains(r"\*").all()
    assert model.status.startswith("Preview:")

    with pytest.warns(scoutframe.MaskedEmailWarning):
        df = model.load("pages")
    assert df is not None
    assert df is model.df
    assert len(df) == model.count
    with pytest.warns(scoutframe.MaskedEmailWarning):
        expected = scoutframe.read_spherescout(
            model.filters, client=client, method="pages", progress=False
        )
    pd.testing.assert_frame_equal(df, expected)
    assert model.plan is not None
    assert model.plan.method == "pages"
    assert model.plan.credits_needed == 0
    assert ledger() == []


def test_export_spends_exactly_its_rows_and_the_code_reads_the_same_frame(
    client: Client, ledger: Ledger
) -> None:
    model = _model(client)
    model.set_countries("FR")
    model.set_category("Plumber")
    model.set_max_credits("1,000")
    model.settle()
    cost = model.cost
    assert cost is not None
    assert cost > 0
    df = model.load("export")
    assert model.message == ""
    assert df is not None
    assert len(df) == cost
    assert not df["email"].explode().dropna().str.contains(r"\*").any()  # full data
    assert [row["delta"] for row in ledger()] == [-cost]
    assert model.balance == 5_000 - cost
    assert model.plan is not None
    assert model.plan.method == "export"

    code = model.code()
    assert "method='export'" in code
    assert "max_credits=1000" in code
    assert "category='Plumber'" in code
    assert "client=client" in code
    namespace: dict[str, Any] = {"pd": pd, "scoutframe": scoutframe, "client": client}
    exec(code, namespace)
    pd.testing.assert_frame_equal(namespace["df"], df)
    again = scoutframe.read_spherescout(
        model.filters, client=client, method="export", max_credits=1_000, progress=False
    )
    pd.testing.assert_frame_equal(again, df)
    assert [row["delta"] for row in ledger()] == [-cost]  # read again without paying again


def test_unknown_category_is_a_message_not_an_exception(client: Client, ledger: Ledger) -> None:
    model = _model(client)
    model.set_countries("FR")
    model.set_category("Plumbr")
    model.settle()
    assert model.count is None
    assert model.message.startswith("FilterError: Unknown category 'Plumbr'")
    assert "Plumber" in model.message  # the suggestion
    assert model.load("pages") is None  # reported, not raised
    assert model.load("preview") is None
    assert "FilterError" in model.message
    assert model.df is None
    model.set_category("Plumber")
    model.settle()
    assert model.message == ""
    assert model.count
    assert ledger() == []


def test_an_export_over_max_credits_is_refused_before_spending(
    client: Client, ledger: Ledger
) -> None:
    model = _model(client)
    model.set_countries("FR")
    model.set_max_credits(10)
    model.settle()
    assert model.cost is not None
    assert model.cost > 10
    assert model.load("export") is None
    assert model.message.startswith("BudgetError: ")
    assert "max_credits=10" in model.message
    assert model.df is None
    assert ledger() == []
    model.set_max_credits("ten")
    assert "max_credits must be a whole number" in model.message
    assert model.state.max_credits == 10


def test_a_load_without_filters_says_so(client: Client) -> None:
    model = _model(client)
    assert model.load("pages") is None
    assert model.message.startswith("ArgumentError: No filters were given")
    assert model.load("preview") is None
    assert "Pick a country" in model.message
    assert model.load("everything") is None
    assert "method" in model.message


def test_free_text_location_search_sets_the_whole_chain(client: Client) -> None:
    model = _model(client)
    model.set_category("Plumber")
    model.search_locations("Paris")
    model.settle()
    cities = [p for p in model.location_matches if p.name == "Paris" and p.level == 3]
    assert len(cities) == 1
    model.pick_location(cities[0].id)
    state = model.state
    assert state.countries == ("FR",)
    assert state.level3 == cities[0]
    assert state.level2 is not None
    assert state.level2.id == cities[0].parent_id
    assert state.level1 is not None
    assert state.level1.id == state.level2.parent_id
    assert state.level3 in model.level_options(3)
    model.settle()
    assert (
        model.count
        == client.search(
            countries="FR", category="Plumber", level3_locations=cities[0].id
        ).total_count
    )
    assert "level3_locations='Paris'" in model.code()
    # Another country drops the place; picking an unknown match is a message.
    model.set_countries(["DE"])
    assert model.state.place is None
    model.pick_location(123)
    assert "not among the search results" in model.message


def test_broken_calls_are_reported_and_logged(
    client: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    model = _model(client)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the wire is cut")

    monkeypatch.setattr(client, "search", broken)
    with caplog.at_level(logging.DEBUG, logger="scoutframe.widgets"):
        model.set_countries("FR")
        model.settle()
        assert model.load("preview") is None
    assert model.message.startswith("Unexpected error (RuntimeError): the wire is cut")
    assert any(r.exc_info and "the wire is cut" in str(r.exc_info[1]) for r in caplog.records)


# -- code generation: names where they lead back to the ids, ids otherwise ---------------------


class _StubLocations:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def search(self, q: str, *, country: str | None = None) -> pd.DataFrame:
        return pd.DataFrame([r for r in self.rows if r["name"] == q])


class _StubClient:
    """Just the reference lists ``Filters.resolve`` asks for."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.locations = _StubLocations(rows)

    def countries(self) -> pd.DataFrame:
        return pd.DataFrame({"code": ["FR"], "name": ["France"]})

    def categories(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"id": [1, 2], "name": ["Baker", "Baker"], "gcid": ["gcid:a", "gcid:b"]}
        )


def test_code_uses_an_id_where_the_name_is_ambiguous() -> None:
    from scoutframe.widgets import codegen
    from scoutframe.widgets.state import FormState, Place

    twins = [
        {"id": 7, "name": "Saint-Denis", "type": "level3", "country": "FR", "parent_id": 5},
        {"id": 8, "name": "Saint-Denis", "type": "level3", "country": "FR", "parent_id": 6},
    ]
    stub: Any = _StubClient(twins)
    state = FormState(
        countries=("FR",),
        category="Baker",
        level3=Place(8, "Saint-Denis", 3, "FR", 6),
        toggles=(("email", True), ("website", False)),
    )
    text = codegen.render_call(
        codegen.filter_arguments(state, stub), method="pages", max_credits=None
    )
    tree = ast.parse(text)
    call = tree.body[0].value  # type: ignore[attr-defined]
    given = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg != "client"}
    assert given == {
        "countries": "FR",
        "category": "Baker",
        "level3_locations": 8,
        "email": True,
        "website": False,
        "method": "pages",
    }
    assert "# Saint-Denis (its name alone is ambiguous)" in text
    # The second "Baker" (id 2) is not what the name finds: its id is written.
    state = FormState(category="2")
    text = codegen.render_call(
        codegen.filter_arguments(state, stub), method="export", max_credits=5
    )
    assert "category=2,  # Baker" in text
    assert "max_credits=5," in text
    # A name that leads back to its place is written as the name.
    stub.locations.rows = twins[:1]
    state = FormState(countries=("FR",), level3=Place(7, "Saint-Denis", 3, "FR", 5))
    text = codegen.render_call(
        codegen.filter_arguments(state, stub), method="pages", max_credits=None
    )
    assert "level3_locations='Saint-Denis'," in text
