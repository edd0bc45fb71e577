"""Credentials that change while a paid export is in flight.

Against the sandbox (thread mode, its clock moved by the control plane), with exports held
``processing`` for a few polls so that something happens between the start and the download:

* an API key revoked after the export started: the wait fails with a clear
  :class:`~scoutframe.errors.AuthenticationError` that names the paid export and how to resume
  it; the same read with a new key (same state directory) resumes it, paying nothing again;
* a key revoked once the link is ready: the signed download needs no credential, so it still
  arrives;
* a JWT session whose access *and* refresh tokens expire during the wait: the client logs in
  again by itself, and the export is downloaded once;
* a JWT session that cannot log in again (the password changed): a clear error, and the
  export resumes with the new password.

Each case checks the account's ledger: one charge, for the rows delivered.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sandboxdata import linked_data_dir

import scoutframe
from scoutframe.api.auth import JWTAuth
from scoutframe.errors import AuthenticationError
from scoutframe.sandbox import Sandbox

CONTACTS = 5_000
FILTERS: dict[str, Any] = {"countries": "FR", "category": "Plumber"}
REFRESH_LIFETIME = 7 * 86_400


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(
        contacts=CONTACTS,
        data_dir=linked_data_dir(tmp_path_factory, "sandbox-credential-changes", CONTACTS),
        rate_limit=0,
    ) as sandbox:
        yield sandbox


class Desk:
    """One account and the clients a test makes on it (one state directory)."""

    def __init__(self, sb: Sandbox, tmp: Path) -> None:
        self.sb = sb
        self.tmp = tmp
        self.account = sb.admin.create_account(credits=5_000)
        self.clients: list[scoutframe.Client] = []

    def client(self, api_key: str | None = None, **kwargs: Any) -> scoutframe.Client:
        options: dict[str, Any] = {
            "base_url": self.sb.url,
            "allow_http": True,
            "state_dir": self.tmp / "state",
            "config_file": self.tmp / "none.toml",
            "max_retries": 1,
            "backoff_factor": 0.01,
            "poll_interval": (0.01, 0.05),
        }
        options.update(kwargs)
        client = scoutframe.Client(api_key, **options)
        self.clients.append(client)
        return client

    def charges(self) -> list[int]:
        """The credits each charge of the account took (refunds would show as well)."""
        return [e["delta"] for e in self.sb.admin.ledger(self.account["id"]) if e["delta"] < 0]

    def read(self, client: scoutframe.Client) -> Any:
        return scoutframe.read_spherescout(
            **FILTERS, method="export", client=client, progress=False
        )

    def close(self) -> None:
        for client in self.clients:
            client.close()


@pytest.fixture
def desk(sb: Sandbox, tmp_path: Path, figures: Any) -> Iterator[Desk]:
    sb.admin.set_export_pacing(min_polls=4, delay_seconds=0)
    made = Desk(sb, tmp_path)
    try:
        yield made
    finally:
        made.close()
        sb.admin.set_export_pacing(min_polls=0, delay_seconds=0)
    figures.add("credential changes: cases tried", 1)


def _key_id(client: scoutframe.Client, key: str) -> int:
    return next(k.id for k in client.api_keys.list() if key.startswith(k.token_key))


def test_a_key_revoked_mid_export_resumes_with_the_new_key(desk: Desk, figures: Any) -> None:
    old = desk.account["api_key"]
    first = desk.client(old)
    job = first.exports.start(FILTERS)
    paid = job.lead_count
    assert paid
    assert desk.charges() == [-paid]
    new = first.api_keys.create(name="rotated").key
    first.api_keys.revoke(_key_id(first, old))  # revoked while the export is processing

    with pytest.raises(AuthenticationError) as caught:
        desk.read(first)  # the same read: it finds the paid export and waits for it
    message = str(caught.value)
    assert job.job_id in message  # which export is waiting
    assert f"client.export_job({job.job_id!r})" in message  # and how to go on
    assert "without paying again" in message
    assert old not in message

    second = desk.client(new)
    df = desk.read(second)
    assert len(df) == paid
    assert df["place_id"].is_unique
    assert desk.charges() == [-paid]  # once
    figures.add("credential changes: paid exports resumed with a new credential", 1)


def test_a_key_revoked_once_the_link_is_ready_still_downloads(desk: Desk) -> None:
    old = desk.account["api_key"]
    client = desk.client(old)
    job = client.exports.start(FILTERS)
    job.wait(timeout=30)  # ready: the signed link is known
    other = desk.client(client.api_keys.create(name="admin").key)
    other.api_keys.revoke(_key_id(other, old))
    path = job.download(desk.tmp / "plumbers.csv")  # a signed URL needs no credential
    assert len(scoutframe.read_export_csv(path)) == job.lead_count
    assert desk.charges() == [-(job.lead_count or 0)]


def test_jwt_tokens_expiring_during_the_wait_log_in_again(desk: Desk, sb: Sandbox) -> None:
    client = desk.client(username=desk.account["email"], password=desk.account["password"])
    job = client.exports.start(FILTERS)
    auth = client.transport.auth
    assert isinstance(auth, JWTAuth)
    first = auth.header()
    polls = 0

    def expire_on_second_poll(_status: Any) -> None:
        nonlocal polls
        polls += 1
        if polls == 2:  # mid-wait: both tokens expire
            sb.admin.advance_clock(REFRESH_LIFETIME + 60)

    job.wait(timeout=30, on_status=expire_on_second_poll)
    assert polls >= 3
    assert auth.header() != first  # a new login
    path = job.download(desk.tmp / "plumbers.csv")
    assert len(scoutframe.read_export_csv(path)) == job.lead_count
    assert desk.charges() == [-(job.lead_count or 0)]


def test_jwt_that_cannot_log_in_again_says_so_and_resumes(desk: Desk, sb: Sandbox) -> None:
    client = desk.client(username=desk.account["email"], password=desk.account["password"])
    job = client.exports.start(FILTERS)
    auth = client.transport.auth
    assert isinstance(auth, JWTAuth)
    sb.admin.advance_clock(REFRESH_LIFETIME + 60)  # both tokens expire
    auth._password = "an-old-password"  # as if it had been changed elsewhere meanwhile
    with pytest.raises(AuthenticationError) as caught:
        desk.read(client)
    message = str(caught.value)
    assert "refused" in message
    assert f"client.export_job({job.job_id!r})" in message
    assert desk.account["password"] not in message
    again = desk.client(username=desk.account["email"], password=desk.account["password"])
    df = desk.read(again)
    assert len(df) == job.lead_count
    assert desk.charges() == [-(job.lead_count or 0)]
