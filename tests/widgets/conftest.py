"""A sandbox for the search-form tests, started once per session, and a fresh account per test.

Fixtures
--------
form_sandbox
    ``Sandbox(contacts=20_000, data_dir=tmp, rate_limit=0)`` on loopback.
account
    A new funded account (``{"id", "api_key", ...}``, 5,000 credits): its ledger starts clean.
client
    A client of that account (http on loopback, a private ``state_dir``, no config file).
ledger
    ``ledger()`` → the account's ledger rows after the opening balance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scoutframe.api.client import Client
from scoutframe.sandbox import Sandbox

CREDITS = 5_000


@pytest.fixture(scope="session")
def form_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    data_dir = tmp_path_factory.mktemp("form-sandbox")
    with Sandbox(contacts=20_000, data_dir=data_dir, rate_limit=0) as sb:
        yield sb


@pytest.fixture
def account(form_sandbox: Sandbox) -> dict[str, Any]:
    return form_sandbox.admin.create_account(credits=CREDITS)


@pytest.fixture
def client(form_sandbox: Sandbox, account: dict[str, Any], tmp_path: Path) -> Iterator[Client]:
    with Client(
        account["api_key"],
        form_sandbox.url,
        allow_http=True,
        state_dir=tmp_path / "state",
        config_file=tmp_path / "no-config.toml",
        backoff_factor=0.01,
        poll_interval=(0.01, 0.05),
    ) as made:
        yield made


@pytest.fixture
def ledger(form_sandbox: Sandbox, account: dict[str, Any]) -> Callable[[], list[dict[str, Any]]]:
    def spent() -> list[dict[str, Any]]:
        rows = form_sandbox.admin.ledger(account["id"])
        assert rows[0]["reason"] == "opening balance"
        assert rows[0]["delta"] == CREDITS
        return rows[1:]

    return spent


@pytest.fixture(autouse=True)
def _no_progress_bars(_clean_environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Code run with ``exec`` has no ``progress=``: keep its bars off stderr."""
    monkeypatch.setenv("SCOUTFRAME_PROGRESS", "0")
