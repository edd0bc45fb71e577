"""Bad input from the user: every mistake is a specific scoutframe error that shows the fix.

A table of wrong calls against a real sandbox (misspelt names, ids of the wrong type,
impossible combinations, numbers out of range, unknown columns and options, a cache directory
that cannot be one, a search id that does not exist, frames that did not come from scoutframe).
Each case checks the error class, a key phrase of the fix in its message, that nothing but a
:class:`~scoutframe.errors.ScoutError` escaped (the accessor's documented ``AttributeError``
on a frame that is not a contacts frame aside), and that the account's credit ledger did not
move.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sandboxdata import linked_data_dir

import scoutframe
from scoutframe.errors import (
    ArgumentError,
    BudgetError,
    CacheError,
    FilterError,
    NotFoundError,
    ScoutError,
)
from scoutframe.sandbox import Sandbox
from scoutframe.tables.schema import MaskedEmailWarning

CONTACTS = 5_000


@dataclass
class Env:
    """What a case may use: the sandbox, a client on it, a private directory."""

    sb: Sandbox
    client: scoutframe.Client
    account_id: int
    tmp: Path

    def read(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("client", self.client)
        kwargs.setdefault("progress", False)
        return scoutframe.read_spherescout(*args, **kwargs)


@pytest.fixture(scope="module")
def module_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    data_dir = linked_data_dir(tmp_path_factory, "sandbox-bad-input", CONTACTS)
    home = tmp_path_factory.mktemp("bad-input-client")
    with Sandbox(contacts=CONTACTS, data_dir=data_dir, rate_limit=0) as sb:
        client = scoutframe.Client(
            sb.api_key,
            base_url=sb.url,
            allow_http=True,
            state_dir=home / "state",
            config_file=home / "none.toml",
            max_retries=1,
            backoff_factor=0.01,
            poll_interval=(0.01, 0.05),
        )
        with client:
            account = client.profile().id
            assert account is not None
            yield Env(sb, client, account, home)


@pytest.fixture
def env(module_env: Env, tmp_path: Path) -> Env:
    return Env(module_env.sb, module_env.client, module_env.account_id, tmp_path)


@dataclass(frozen=True)
class Case:
    """One wrong call: what it raises and a phrase of the fix its message must hold."""

    call: Callable[[Env], Any]
    error: type[BaseException]
    phrases: tuple[str, ...]
    also: tuple[type[BaseException], ...] = ()  # other accepted classes (either will do)


def _file(env: Env) -> Path:
    path = env.tmp / "not-a-directory"
    path.write_text("a file, not a directory\n")
    return path


def _under_a_file(env: Env) -> Path:
    return _file(env) / "cache"


FR: dict[str, Any] = {"countries": "FR"}

CASES: dict[str, Case] = {
    # -- names that match nothing: the closest valid names ------------------------------------
    "misspelt country name": Case(
        lambda e: e.read(countries="Frnace", dry_run=True), FilterError, ("Did you mean", "France")
    ),
    "unknown country code": Case(
        lambda e: e.read(countries="XX", dry_run=True),
        FilterError,
        ("Unknown country 'XX'", "client.countries()"),
    ),
    "misspelt category": Case(
        lambda e: e.read(**FR, category="Plumbr", dry_run=True),
        FilterError,
        ("Did you mean", "Plumber"),
    ),
    "unknown category id": Case(
        lambda e: e.read(**FR, category=1, dry_run=True),
        FilterError,
        ("Unknown category id 1", "client.categories("),
    ),
    "misspelt region": Case(
        lambda e: e.read(**FR, level1_locations="Ile-de-Frnce", dry_run=True),
        FilterError,
        ("Did you mean", "Île-de-France"),
    ),
    "misspelt city": Case(
        lambda e: e.read(**FR, level3_locations="Pariss", dry_run=True),
        FilterError,
        ("Did you mean", "Paris"),
    ),
    "city given as a region": Case(
        lambda e: e.read(**FR, level1_locations="Paris", dry_run=True),
        FilterError,
        ("another level", "level3"),
    ),
    "misspelt keyword filter": Case(
        lambda e: e.read(countrie="FR", dry_run=True), FilterError, ("Did you mean", "countries")
    ),
    "unknown keyword filter": Case(
        lambda e: e.read(**FR, colour="red", dry_run=True),
        FilterError,
        ("Unknown filter 'colour'", "Valid filters"),
    ),
    "unknown keyword filter in client.search": Case(
        lambda e: e.client.search(countries="FR", categroy="Plumber"),
        FilterError,
        ("Did you mean", "category"),
    ),
    # -- values of the wrong type ------------------------------------------------------------
    "country as a number": Case(
        lambda e: e.read(countries=5, dry_run=True), FilterError, ("ISO codes", "countries='FR'")
    ),
    "category as a float": Case(
        lambda e: e.read(**FR, category=3.5, dry_run=True),
        FilterError,
        ("integer ids or names", "category=[8059"),
    ),
    "location as a boolean": Case(
        lambda e: e.read(**FR, level1_locations=True, dry_run=True),
        FilterError,
        ("integer ids or names",),
    ),
    "empty category": Case(
        lambda e: e.read(**FR, category="", dry_run=True),
        FilterError,
        ("empty name", "leave category out"),
    ),
    "empty country": Case(
        lambda e: e.read(countries="", dry_run=True), FilterError, ("empty value", "countries='FR'")
    ),
    "negative location id": Case(
        lambda e: e.read(**FR, level3_locations=-1, dry_run=True),
        FilterError,
        ("positive integers", "client.locations.search"),
    ),
    "boolean filter as text": Case(
        lambda e: e.read(**FR, email="yes", dry_run=True),
        FilterError,
        ("True, False or None", "email=True"),
    ),
    "filters of the wrong type": Case(
        lambda e: e.read(["FR"], dry_run=True), FilterError, ("a Filters, a dict or None",)
    ),
    # -- impossible combinations -------------------------------------------------------------
    "search id plus keyword filters": Case(
        lambda e: e.read("srch_0123abcd", countries="FR", method="export"),
        ArgumentError,
        ("either a search id or filters",),
    ),
    "filters= as a keyword": Case(
        lambda e: e.read(filters={"countries": "FR"}, dry_run=True),
        ArgumentError,
        ("first positional argument",),
    ),
    "no filters without all=True": Case(
        lambda e: e.read(method="export"), ArgumentError, ("all=True",)
    ),
    "a search id read by pages": Case(
        lambda e: e.read("srch_0123abcd", method="pages"), ArgumentError, ("needs filters",)
    ),
    "a search id through the cache": Case(
        lambda e: e.read("srch_0123abcd", method="export", cache=True, cache_dir=e.tmp / "c"),
        ArgumentError,
        ("pass the filters",),
    ),
    "chunksize with polars": Case(
        lambda e: e.read(**FR, chunksize=10, return_type="polars", method="pages"),
        ArgumentError,
        ("chunksize is not supported",),
    ),
    "max_age without the cache": Case(
        lambda e: e.read(**FR, max_age="1h", method="pages"), ArgumentError, ("needs cache=True",)
    ),
    # -- numbers out of range or of the wrong type -------------------------------------------
    "negative nrows": Case(lambda e: e.read(**FR, nrows=-1), ArgumentError, ("nrows must be",)),
    "float nrows": Case(lambda e: e.read(**FR, nrows=2.5), ArgumentError, ("whole number",)),
    "string nrows": Case(lambda e: e.read(**FR, nrows="10"), ArgumentError, ("write nrows=10",)),
    "boolean nrows": Case(lambda e: e.read(**FR, nrows=True), ArgumentError, ("whole number",)),
    "huge nrows": Case(
        lambda e: e.read(**FR, nrows=10**30, method="pages", cache=True, cache_dir=e.tmp / "cache"),
        ArgumentError,
        ("nrows",),
    ),
    "zero chunksize": Case(
        lambda e: e.read(**FR, chunksize=0), ArgumentError, ("chunksize must be >= 1",)
    ),
    "negative chunksize": Case(
        lambda e: e.read(**FR, chunksize=-5), ArgumentError, ("chunksize must be >= 1",)
    ),
    "float chunksize": Case(
        lambda e: e.read(**FR, chunksize=1.5), ArgumentError, ("whole number",)
    ),
    "string chunksize": Case(
        lambda e: e.read(**FR, chunksize="100"), ArgumentError, ("write chunksize=100",)
    ),
    "negative max_credits": Case(
        lambda e: e.read(**FR, max_credits=-1), ArgumentError, ("max_credits must be >= 0",)
    ),
    "float max_credits": Case(
        lambda e: e.read(**FR, max_credits=2.5), ArgumentError, ("whole number",)
    ),
    "string max_credits": Case(
        lambda e: e.read(**FR, max_credits="100"), ArgumentError, ("write max_credits=100",)
    ),
    "zero max_credits on an export": Case(
        lambda e: e.read(**FR, method="export", max_credits=0),
        BudgetError,
        ("max_credits=0", "nothing was spent"),
    ),
    "zero concurrency": Case(
        lambda e: e.read(**FR, concurrency=0, method="pages"),
        ArgumentError,
        ("concurrency must be >= 1",),
    ),
    "float concurrency": Case(
        lambda e: e.read(**FR, concurrency=2.5, method="pages"), ArgumentError, ("whole number",)
    ),
    "string concurrency": Case(
        lambda e: e.read(**FR, concurrency="8", method="pages"),
        ArgumentError,
        ("write concurrency=8",),
    ),
    "huge concurrency": Case(
        lambda e: e.read(**FR, concurrency=10**6, method="pages"), ArgumentError, ("concurrency",)
    ),
    "page zero": Case(
        lambda e: e.client.search(countries="FR", page=0), ArgumentError, ("page must be >= 1",)
    ),
    # -- unknown columns and options ---------------------------------------------------------
    "unknown column": Case(
        lambda e: e.read(**FR, columns=["nmae"], dry_run=True),
        ArgumentError,
        ("Unknown column(s) ['nmae']", "known columns"),
    ),
    "no column": Case(
        lambda e: e.read(**FR, columns=[], dry_run=True),
        ArgumentError,
        ("selects no column", "pass None"),
    ),
    "unknown dtype_backend": Case(
        lambda e: e.read(**FR, dtype_backend="numpy"), ArgumentError, ("'numpy_nullable'",)
    ),
    "unknown return_type": Case(
        lambda e: e.read(**FR, return_type="excel"), ArgumentError, ("'pandas'", "'arrow'")
    ),
    "unknown method": Case(
        lambda e: e.read(**FR, method="fast"), ArgumentError, ("'auto'", "'pages'", "'export'")
    ),
    "unknown cache mode": Case(
        lambda e: e.read(**FR, cache="sometimes"),
        ArgumentError,
        ("True, False, 'refresh' or 'only'",),
    ),
    "unreadable max_age": Case(
        lambda e: e.read(**FR, cache=True, max_age="soon"), ArgumentError, ("'12h'", "timedelta")
    ),
    # -- a cache directory that cannot be one ------------------------------------------------
    "cache_dir is a file": Case(
        lambda e: e.read(**FR, method="pages", cache=True, cache_dir=_file(e)),
        CacheError,
        ("not-a-directory", "cache_dir="),
    ),
    "cache_dir under a file": Case(
        lambda e: e.read(**FR, method="pages", cache=True, cache_dir=_under_a_file(e)),
        CacheError,
        ("not-a-directory", "cache_dir="),
        also=(ArgumentError,),
    ),
    # -- a search id that does not exist -----------------------------------------------------
    "unknown search id": Case(
        lambda e: e.read("srch_doesnotexist", method="export"), NotFoundError, ("Check the id",)
    ),
    # -- frames that did not come from scoutframe --------------------------------------------
    "refresh() of a foreign frame": Case(
        lambda _: pd.DataFrame({"place_id": ["x"]}).spherescout.refresh(),
        ArgumentError,
        ("provenance", "read_spherescout"),
    ),
    "freshness() of a foreign frame": Case(
        lambda _: pd.DataFrame({"place_id": ["x"]}).spherescout.freshness(),
        ArgumentError,
        ("provenance", "read_spherescout"),
    ),
    "filters of a foreign frame": Case(
        lambda _: pd.DataFrame({"place_id": ["x"]}).spherescout.filters,
        ArgumentError,
        ("provenance", "read_spherescout"),
    ),
    "accessor on a frame without place_id": Case(
        lambda _: pd.DataFrame({"name": ["x"]}).spherescout.refresh(),
        AttributeError,
        ("'place_id'", "pd.read_spherescout"),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(env: Env, name: str, figures: Any) -> None:
    case = CASES[name]
    figures.add("bad inputs tried", 1)
    ledger = env.sb.admin.ledger(env.account_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MaskedEmailWarning)  # a pages read that went ahead
        with pytest.raises(Exception) as caught:
            case.call(env)
    error = caught.value
    assert isinstance(error, (case.error, *case.also)), f"{type(error).__name__}: {error}"
    if case.error is not AttributeError:
        assert isinstance(error, ScoutError), f"{type(error).__name__} escaped: {error}"
    if isinstance(error, ArgumentError):
        assert isinstance(error, TypeError)
        assert isinstance(error, ValueError)
    for phrase in case.phrases:
        assert phrase in str(error), f"{phrase!r} not in: {error}"
    assert env.sb.admin.ledger(env.account_id) == ledger  # nothing charged


def test_ids_from_the_clients_own_frames_are_accepted(env: Env) -> None:
    """A category id taken from ``client.categories()`` (a NumPy integer) is a valid id."""
    ids = env.client.categories()["id"]
    chosen = ids.iloc[0]
    assert isinstance(chosen, np.integer)
    plan = env.read(countries="FR", category=chosen, dry_run=True)
    assert plan.search_id is not None
    page = env.client.search(countries="FR", category=np.int64(int(chosen)))
    assert page.total_count == plan.total_count
