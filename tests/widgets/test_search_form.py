"""The search form with real ipywidgets objects (headless), driven through its controls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

import scoutframe
from scoutframe.api.client import Client
from scoutframe.widgets import SearchForm, search_form

Ledger = Callable[[], list[dict[str, Any]]]

FILTER_CONTROLS = {
    "countries",
    "category",
    "level1_locations",
    "level2_locations",
    "level3_locations",
    "location_search",
    "location_matches",
    "email",
    "phone_number",
    "website",
    "instagram",
    "facebook",
    "main_activity_only",
    "max_credits",
}


@pytest.fixture
def form(client: Client) -> Any:
    made = SearchForm(client, progress=False)
    yield made
    made.close()


def test_the_user_journey(form: SearchForm, client: Client, ledger: Ledger) -> None:
    """Country and category, count and cost, a region, preview, export, code, errors."""
    import ipywidgets

    assert isinstance(form.widget, ipywidgets.VBox)
    assert set(form.controls) == FILTER_CONTROLS
    assert "Pick a country" in form._figures.value

    form.controls["countries"].value = ("FR",)
    form.settle()
    in_france = form.count
    assert in_france == client.search(countries="FR").total_count
    assert form.cost == in_france
    assert f"<b>{in_france:,}</b> contacts" in form._figures.value

    form.controls["category"].value = "Plumber"
    form.settle()
    plumbers = form.count
    assert plumbers == client.search(countries="FR", category="Plumber").total_count
    assert plumbers is not None
    assert in_france is not None
    assert 0 < plumbers < in_france
    assert form.cost == plumbers
    assert f"<b>{plumbers:,}</b> contacts" in form._figures.value
    assert "Plumber" in form.controls["category"].options

    regions = form.controls["level1_locations"]
    assert not regions.disabled
    assert regions.options[0] == ("(any)", 0)
    counts = {
        rid: client.search(countries="FR", category="Plumber", level1_locations=rid).total_count
        for _, rid in regions.options[1:]
    }
    region = max(counts, key=counts.__getitem__)
    regions.value = region
    form.settle()
    assert form.count == counts[region]
    assert 0 < counts[region] < plumbers
    assert not form.controls["level2_locations"].disabled
    assert form.controls["level3_locations"].disabled  # no county picked yet

    form.buttons["preview"].click()
    assert form.preview is not None
    assert 0 < len(form.preview) <= 10
    assert '<table class="scoutframe-table"' in form._table.value
    assert "Preview" in form._status.value

    form.controls["max_credits"].value = str(counts[region])
    form.buttons["export"].click()
    assert form.message == ""
    assert form.df is not None
    assert len(form.df) == counts[region]
    assert [row["delta"] for row in ledger()] == [-counts[region]]  # exactly its rows
    assert "Loaded" in form._status.value
    expected = scoutframe.read_spherescout(
        form.filters, client=client, method="export", max_credits=counts[region], progress=False
    )
    pd.testing.assert_frame_equal(form.df, expected)

    form.buttons["code"].click()
    code = form.code()
    assert "method='export'" in code
    assert f"max_credits={counts[region]}" in code
    assert "pd.read_spherescout(" in form._code.value
    namespace: dict[str, Any] = {"pd": pd, "scoutframe": scoutframe, "client": client}
    exec(code, namespace)
    pd.testing.assert_frame_equal(namespace["df"], form.df)
    assert [row["delta"] for row in ledger()] == [-counts[region]]  # no second payment

    # The error for an unknown category, in the message area, nothing raised.
    form.controls["category"].value = "Plumbr"
    form.settle()
    assert form.message.startswith("FilterError: Unknown category 'Plumbr'")
    assert "Unknown category &#x27;Plumbr&#x27;" in form._message.value
    assert "No count" in form._figures.value

    # An export over max_credits: refused before spending, shown in the form.
    form.controls["category"].value = "Plumber"
    regions.value = 0
    form.controls["max_credits"].value = "1"
    form.settle()
    assert "over max_credits=1" in form._figures.value
    form.buttons["export"].click()
    assert form.message.startswith("BudgetError: ")
    assert "max_credits=1" in form._message.value
    assert "Loaded" in form._status.value  # still what the table shows
    assert form.notes == ()  # the export read before had no warnings
    assert [row["delta"] for row in ledger()] == [-counts[region]]


def test_pages_by_button_and_by_load(form: SearchForm, client: Client, ledger: Ledger) -> None:
    form.controls["countries"].value = ("FR",)
    form.controls["category"].value = "Plumber"
    form.controls["phone_number"].value = "with"
    form.settle()
    assert form.filters == scoutframe.Filters(countries="FR", category="Plumber", phone_number=True)
    form.buttons["pages"].click()  # the masked-email warning is a note in the form
    by_button = form.df
    assert by_button is not None
    assert len(by_button) == form.count
    assert by_button["phone"].list.len().min() > 0
    assert len(form.notes) == 1
    assert form.notes[0].startswith("MaskedEmailWarning: Emails from search pages are masked")
    assert "Note: MaskedEmailWarning" in form._status.value
    assert "Loaded" in form._status.value
    by_load = form.load(method="pages")
    assert by_load is not None
    assert form.notes[0].startswith("MaskedEmailWarning")
    pd.testing.assert_frame_equal(by_load, by_button)
    namespace: dict[str, Any] = {"pd": pd, "scoutframe": scoutframe, "client": client}
    code = form.code()
    assert "phone_number=True" in code
    assert "progress=False" in code
    with pytest.warns(scoutframe.MaskedEmailWarning):
        exec(code, namespace)
    pd.testing.assert_frame_equal(namespace["df"], by_load)
    assert ledger() == []


def test_the_table_shows_what_the_model_holds_whatever_its_status_says(form: SearchForm) -> None:
    form.controls["countries"].value = ("FR",)
    form.controls["category"].value = "Plumber"
    form.settle()
    form.buttons["preview"].click()
    assert form.model.showing == "preview"
    assert "Preview (form.preview)" in form._table.value
    with pytest.warns(scoutframe.MaskedEmailWarning):
        form.model.load("pages")
    assert form.model.showing == "frame"
    assert "The loaded frame (form.df)" in form._table.value
    # The status is words for people (it may be reworded or translated): the view must not
    # parse it to decide what the table shows.
    form.model.status = "Fertig: die Vorschau."
    form.model.showing = "preview"
    form.model._notify("result")
    assert "Preview (form.preview)" in form._table.value


def test_toggles_and_checkbox_map_to_filters(form: SearchForm) -> None:
    c = form.controls
    c["countries"].value = ("FR", "BE")
    c["email"].value = "with"
    c["website"].value = "without"
    c["main_activity_only"].value = True
    assert form.filters == scoutframe.Filters(
        countries=["FR", "BE"], email=True, website=False, main_activity_only=True
    )
    assert c["level1_locations"].disabled  # browsing needs exactly one country
    c["email"].value = "either"
    c["main_activity_only"].value = False
    assert form.filters == scoutframe.Filters(countries=["FR", "BE"], website=False)


def test_location_search_through_the_controls(form: SearchForm) -> None:
    form.controls["location_search"].value = "Paris"
    form.settle()
    matches = dict(form.controls["location_matches"].options)
    assert "Paris (city, FR)" in matches
    form.controls["location_matches"].value = matches["Paris (city, FR)"]
    assert form.controls["countries"].value == ("FR",)
    assert form.controls["level3_locations"].value == matches["Paris (city, FR)"]
    assert form.controls["level2_locations"].value != 0
    assert form.controls["level1_locations"].value != 0
    assert form.filters.level3_locations == (matches["Paris (city, FR)"],)
    assert form.controls["location_matches"].value == 0  # ready for another pick
    assert form.message == ""


def test_a_failing_render_is_shown_in_the_form(
    form: SearchForm, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> str:
        raise ValueError("cannot draw")

    monkeypatch.setattr("scoutframe.widgets._html.figures_html", broken)
    form.controls["countries"].value = ("FR",)
    form.settle()  # the count's re-render (in the settling thread) fails
    assert "Unexpected error (ValueError): cannot draw" in form.message
    assert "cannot draw" in form._message.value


def test_a_failing_callback_is_shown_in_the_form(
    form: SearchForm, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(text: str | None) -> None:
        raise KeyError("oops")

    monkeypatch.setattr(form.model, "set_category", broken)
    form.controls["category"].value = "Plumber"  # does not raise
    assert form.message.startswith("Unexpected error (KeyError)")
    assert "Unexpected error (KeyError)" in form._message.value
    form.controls["max_credits"].value = "lots"
    assert "max_credits must be a whole number" in form._message.value


def test_search_form_displays_and_returns_the_form(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    form = search_form(client, progress=False)
    try:
        assert isinstance(form, SearchForm)
        assert "SearchForm" in capsys.readouterr().out  # display() without a front end prints
        bundle = form._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" in bundle
    finally:
        form.close()


def test_a_form_without_credentials_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import keyring

    monkeypatch.setattr(keyring, "get_password", lambda service, name: None)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # no config.toml
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    form = SearchForm(progress=False)  # scoutframe.Client() from the (empty) environment
    try:
        assert form.message.startswith("ConfigurationError: No SphereScout credential")
        assert "SPHERESCOUT_API_KEY" in form._message.value
        assert form.controls["countries"].options == ()
        form.controls["category"].value = "Plumber"
        form.settle()
        assert form.load("preview") is None  # reported, not raised
        assert form.count is None
    finally:
        form.close()
