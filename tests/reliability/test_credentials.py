"""Credentials: no secret in any log line, repr, message, traceback, file or CLI output.

Two runs against a real sandbox with every logger at DEBUG: one with an API key, one with a
username and password (JWT: log in, refresh after the access token's lifetime, log in again
after the refresh token's). Each searches, reads by pages, reads by export into the cache,
refreshes that entry by delta, manages API keys, meets errors (a wrong key, a revoked key, a
wrong password, a tampered download link) and runs the CLI. Then every secret it saw (the key,
the password, every access and refresh token, the full key of the created API key, every
signature of a download URL) is searched for in every text it produced; none may be found. The
storage origin's request log shows whether an ``Authorization`` header ever reached it.
"""

from __future__ import annotations

import json
import logging
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pyarrow.parquet as pq
import pytest
from sandboxdata import linked_data_dir

import scoutframe
from scoutframe.api.auth import JWTAuth
from scoutframe.api.transport import Transport
from scoutframe.cache.entry import CacheEntry
from scoutframe.cli import main as cli_main
from scoutframe.errors import APIError, AuthenticationError, ConfigurationError, ScoutError
from scoutframe.sandbox import Sandbox
from scoutframe.tables.schema import MaskedEmailWarning

CONTACTS = 5_000
FR: dict[str, Any] = {"countries": "FR"}
ACCESS_LIFETIME = 15 * 60
REFRESH_LIFETIME = 7 * 86_400


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(
        contacts=CONTACTS,
        data_dir=linked_data_dir(tmp_path_factory, "sandbox-credentials", CONTACTS),
        rate_limit=0,
    ) as sandbox:
        yield sandbox


# -- what a run saw and what it produced ----------------------------------------------------------


@dataclass
class Evidence:
    """Secrets seen, and texts produced, by one run."""

    secrets: dict[str, str] = field(default_factory=dict)  # value -> what it is
    texts: list[tuple[str, str]] = field(default_factory=list)  # (where, text)

    def secret(self, name: str, value: str | None) -> None:
        assert value, f"{name} is empty: the run did not see it"
        assert len(value) >= 12, f"{name} is too short to search for safely"
        self.secrets.setdefault(value, name)

    def text(self, where: str, value: object) -> None:
        self.texts.append((where, value if isinstance(value, str) else repr(value)))

    def obj(self, where: str, value: object) -> None:
        """Its repr, its str and its notebook card."""
        self.text(f"repr({where})", repr(value))
        self.text(f"str({where})", str(value))
        html = getattr(value, "_repr_html_", None)
        if callable(html):
            self.text(f"html({where})", html())
        to_dict = getattr(value, "to_dict", None)
        if callable(to_dict) and not hasattr(value, "columns"):  # not a DataFrame
            self.text(f"to_dict({where})", json.dumps(to_dict(), default=str))

    def error(self, where: str, exc: BaseException) -> None:
        """Its message, repr and full traceback (chained causes and notes included)."""
        self.text(f"str({where})", str(exc))
        self.text(f"repr({where})", repr(exc))
        self.text(f"traceback({where})", "".join(traceback.format_exception(exc)))

    def frame(self, where: str, df: Any) -> None:
        self.text(f"attrs({where})", json.dumps(df.attrs, default=str))
        self.obj(f"{where}.spherescout.provenance", df.spherescout.provenance)

    def files(self, where: str, root: Path) -> int:
        """Every file under ``root`` (Parquet metadata decoded too); return how many."""
        if root.is_file():
            paths = [root]
        else:
            paths = sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
        for path in paths:
            data = path.read_bytes()
            self.text(f"file {where}: {path}", data.decode("latin-1"))
            if data[:4] == b"PAR1":  # Parquet: its key-value metadata, decoded
                metadata = pq.read_schema(path).metadata or {}
                self.text(f"parquet metadata {path}", repr(metadata))
        return len(paths)

    def logs(self, records: list[logging.LogRecord]) -> None:
        for record in records:
            where = f"log {record.name}:{record.levelname}"
            self.text(where, record.getMessage())
            self.text(where, str(record.msg))
            self.text(where, repr(record.args))
            if record.exc_info and record.exc_info[1] is not None:
                self.error(where, record.exc_info[1])
            if record.exc_text:
                self.text(where, record.exc_text)

    def leaks(self) -> list[tuple[str, str]]:
        return [
            (where, name)
            for where, text in self.texts
            for value, name in self.secrets.items()
            if value in text
        ]


@dataclass
class Spies:
    """Every signed download URL sent, and every JWT issued, in this process."""

    urls: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    logins: list[JWTAuth] = field(default_factory=list)  # each successful login
    refreshes: list[JWTAuth] = field(default_factory=list)  # each successful refresh

    def signatures(self) -> list[str]:
        return [
            value
            for url in self.urls
            for key, value in parse_qsl(urlsplit(url).query)
            if key == "signature"
        ]


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> Spies:
    seen = Spies()
    download = Transport.download
    login = JWTAuth.login
    refresh = JWTAuth._refresh_access

    def spy_download(self: Transport, url: str, **kwargs: Any) -> Any:
        seen.urls.append(url)
        return download(self, url, **kwargs)

    def keep_tokens(auth: JWTAuth) -> None:
        seen.tokens.extend(t for t in (auth._access, auth._refresh) if t)

    def spy_login(self: JWTAuth, transport: Transport) -> None:
        login(self, transport)
        seen.logins.append(self)
        keep_tokens(self)

    def spy_refresh(self: JWTAuth, transport: Transport) -> bool:
        done = refresh(self, transport)
        if done:
            seen.refreshes.append(self)
        keep_tokens(self)
        return done

    monkeypatch.setattr(Transport, "download", spy_download)
    monkeypatch.setattr(JWTAuth, "login", spy_login)
    monkeypatch.setattr(JWTAuth, "_refresh_access", spy_refresh)
    return seen


@dataclass
class Run:
    """One run's client, directories and evidence."""

    sb: Sandbox
    tmp: Path
    evidence: Evidence
    clients: list[scoutframe.Client] = field(default_factory=list)

    @property
    def state_dir(self) -> Path:
        return self.tmp / "state"

    @property
    def cache_dir(self) -> Path:
        return self.tmp / "cache"

    def client(self, api_key: str | None = None, **kwargs: Any) -> scoutframe.Client:
        options: dict[str, Any] = {
            "base_url": self.sb.url,
            "allow_http": True,
            "state_dir": self.state_dir,
            "config_file": self.tmp / "none.toml",
            "max_retries": 1,
            "backoff_factor": 0.01,
            "poll_interval": (0.01, 0.05),
        }
        options.update(kwargs)
        client = scoutframe.Client(api_key, **options)
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()


@pytest.fixture
def run(sb: Sandbox, tmp_path: Path) -> Iterator[Run]:
    made = Run(sb, tmp_path, Evidence())
    try:
        yield made
    finally:
        made.close()


def expect(kind: type[ScoutError], call: Callable[[], Any]) -> ScoutError:
    with pytest.raises(kind) as caught:
        call()
    return caught.value


# -- the steps both runs take ---------------------------------------------------------------------


def free_reads(run: Run, client: scoutframe.Client) -> None:
    """Search, plan and read by pages (free)."""
    ev = run.evidence
    page = client.search(**FR, email=True)
    ev.obj("search page", page)
    plan = scoutframe.read_spherescout(**FR, client=client, dry_run=True)
    ev.obj("plan", plan)
    with pytest.warns(MaskedEmailWarning):
        df = scoutframe.read_spherescout(
            **FR, email=True, method="pages", client=client, progress=False
        )
    assert len(df) == page.total_count
    ev.frame("pages frame", df)
    ev.obj("profile", client.profile())


def paid_reads(run: Run, client: scoutframe.Client) -> None:
    """An export into the cache, then a delta refresh of that entry after new contacts."""
    ev = run.evidence
    common: dict[str, Any] = {"client": client, "progress": False, "cache_dir": run.cache_dir}
    df = scoutframe.read_spherescout(**FR, method="export", cache=True, **common)
    ev.frame("export frame", df)
    provenance = df.spherescout.provenance
    assert provenance is not None
    assert provenance.method == "export"
    ev.obj("freshness", df.spherescout.freshness(client=client))
    run.sb.admin.add_contacts(50)
    fresh = scoutframe.read_spherescout(
        **FR, method="export", cache="refresh", max_credits=100_000, **common
    )
    ev.frame("refreshed frame", fresh)
    cache = scoutframe.Cache(run.cache_dir)
    ev.obj("cache", cache)
    entries = cache.entries()
    ev.text("cache entries", entries.to_string())
    for key in entries["key"]:
        manifest = CacheEntry(cache.backend, key).manifest()
        assert manifest is not None
        ev.obj("manifest", manifest)


def own_export(run: Run, client: scoutframe.Client) -> None:
    """An export started, waited for and downloaded by hand; its signed URL is a secret."""
    ev = run.evidence
    job = client.exports.start({"countries": "BE"})
    ev.obj("job", job)
    status = job.wait(timeout=60)
    ev.obj("status", status)
    assert job.last_status is not None
    assert job.last_status.download_url
    url = job.last_status.download_url
    for key, value in parse_qsl(urlsplit(url).query):
        if key == "signature":
            ev.secret("download URL signature (job.last_status)", value)
    path = job.download(run.tmp / "be.csv")
    ev.obj("downloaded job", job)
    ev.obj("history", client.history.entries())
    # A tampered link: the storage refuses it, and says so without quoting the signature.
    signature = dict(parse_qsl(urlsplit(url).query))["signature"]
    tampered = url.replace(signature, signature[::-1])
    ev.secret("tampered signature", signature[::-1])
    error = expect(APIError, lambda: client.transport.download(tampered).close())
    ev.error("tampered download", error)
    assert path.is_file()


def key_management(run: Run, client: scoutframe.Client) -> None:
    """Create, list and revoke an API key; the revoked key must stop working."""
    ev = run.evidence
    created = client.api_keys.create(name="leak-check")
    assert created.key
    assert created.id is not None
    ev.secret("created API key", created.key)
    ev.obj("created key", created)
    ev.obj("api key list", client.api_keys.list())
    client.api_keys.revoke(created.id)
    revoked = run.client(created.key)
    ev.error("revoked key", expect(AuthenticationError, revoked.profile))


def objects(run: Run, client: scoutframe.Client) -> None:
    ev = run.evidence
    ev.obj("client", client)
    ev.obj("transport", client.transport)
    ev.obj("auth", client.transport.auth)
    ev.obj("exports", client.exports)
    ev.obj("job store", client.job_store)
    for job in client.exports.list_saved(include_done=True):
        ev.obj("saved job", job)


def cli(
    run: Run,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    credentials: dict[str, str],
) -> Path:
    """Run the CLI with the credentials in the environment; return its output file."""
    home = run.tmp / "cli-home"
    for name in ("XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        monkeypatch.setenv(name, str(home / name.lower()))
    monkeypatch.setenv("SCOUTFRAME_CACHE_DIR", str(home / "cache"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    monkeypatch.setenv("SPHERESCOUT_BASE_URL", run.sb.url)
    for name, value in credentials.items():
        monkeypatch.setenv(name, value)
    output = run.tmp / "cli-out" / "fr.parquet"
    output.parent.mkdir()
    capsys.readouterr()  # what came before is not the CLI's
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MaskedEmailWarning)
        assert (
            cli_main(
                [
                    "search",
                    "-o",
                    str(output),
                    "--countries",
                    "FR",
                    "--method",
                    "export",
                    "--max-credits",
                    "100000",
                    "--verbose",
                ]
            )
            == 0
        )
        assert cli_main(["profile"]) == 0
        assert cli_main(["keys", "list"]) == 0
        assert cli_main(["history"]) == 0
    out, err = capsys.readouterr()
    assert output.is_file()
    assert "export" in err
    run.evidence.text("CLI stdout", out)
    run.evidence.text("CLI stderr", err)
    run.evidence.files("CLI home", home)
    return output


def finish(
    run: Run,
    spies: Spies,
    caplog: pytest.LogCaptureFixture,
    figures: Any,
    roots: dict[str, Path],
) -> None:
    """Add the spied secrets, the logs and the files; assert that nothing leaked."""
    ev = run.evidence
    for signature in spies.signatures():
        ev.secret("download URL signature (sent)", signature)
    for token in spies.tokens:
        ev.secret("JWT", token)
    for where, root in roots.items():
        ev.files(where, root)
    assert caplog.records, "DEBUG logging caught nothing: the check would be empty"
    ev.logs(caplog.records)
    ev.text("caplog text", caplog.text)
    # A control: the texts are the real ones (the account and its data are in them).
    assert any(run.sb.url in text for _, text in ev.texts)
    assert any("/exports/" in text for where, text in ev.texts if where.startswith("log"))
    leaks = ev.leaks()
    figures.add("secrets searched", len(ev.secrets))
    figures.add("texts searched", len(ev.texts))
    figures.add("leaks found", len(leaks))
    assert leaks == [], leaks


# -- the two runs ---------------------------------------------------------------------------------


def watched_account(run: Run, caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    """Every logger at DEBUG; a fresh funded account whose key and password are secrets."""
    caplog.set_level(logging.DEBUG)
    account = run.sb.admin.create_account(credits=100_000)
    run.evidence.secret("API key", account["api_key"])
    run.evidence.secret("password", account["password"])
    return account


def test_api_key_run_leaks_nothing(
    run: Run,
    spies: Spies,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    figures: Any,
) -> None:
    account = watched_account(run, caplog)
    ev = run.evidence
    client = run.client(account["api_key"])
    free_reads(run, client)
    paid_reads(run, client)
    own_export(run, client)
    key_management(run, client)
    wrong = account["api_key"][:-4] + (
        "0000" if not account["api_key"].endswith("0000") else "1111"
    )
    ev.secret("wrong API key", wrong)
    ev.error("wrong key", expect(AuthenticationError, run.client(wrong).profile))
    ev.error(
        "plain http",
        expect(
            ConfigurationError,
            lambda: scoutframe.Client(
                account["api_key"], "http://example.com", config_file=run.tmp / "none.toml"
            ),
        ),
    )
    objects(run, client)
    output = cli(run, monkeypatch, capsys, {"SPHERESCOUT_API_KEY": account["api_key"]})
    finish(
        run,
        spies,
        caplog,
        figures,
        {"state": run.state_dir, "cache": run.cache_dir, "CLI output": output},
    )
    assert len(spies.signatures()) >= 3  # the read, the hand-made export, the CLI's


def test_password_run_leaks_nothing(
    run: Run,
    spies: Spies,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    figures: Any,
) -> None:
    account = watched_account(run, caplog)
    sb, ev = run.sb, run.evidence
    client = run.client(username=account["email"], password=account["password"])
    auth = client.transport.auth
    assert isinstance(auth, JWTAuth)
    free_reads(run, client)
    assert spies.logins == [auth]
    first = (auth._access, auth._refresh)
    ev.secret("access token (login)", first[0])
    ev.secret("refresh token (login)", first[1])

    sb.admin.advance_clock(ACCESS_LIFETIME + 60)  # the access token expires: refreshed
    paid_reads(run, client)
    assert spies.refreshes == [auth], "the access token was not refreshed"
    assert spies.logins == [auth]
    assert auth._access != first[0]
    ev.secret("access token (refreshed)", auth._access)

    sb.admin.advance_clock(REFRESH_LIFETIME + 60)  # the refresh token expires too: log in
    own_export(run, client)
    assert spies.logins == [auth, auth], "the client did not log in again"
    assert auth._refresh != first[1]
    ev.secret("access token (second login)", auth._access)
    ev.secret("refresh token (second login)", auth._refresh)
    key_management(run, client)

    wrong = run.client(username=account["email"], password="not-" + account["password"])
    ev.secret("wrong password", "not-" + account["password"])
    ev.error("wrong password", expect(AuthenticationError, wrong.profile))
    objects(run, client)
    output = cli(
        run,
        monkeypatch,
        capsys,
        {"SPHERESCOUT_USERNAME": account["email"], "SPHERESCOUT_PASSWORD": account["password"]},
    )
    finish(
        run,
        spies,
        caplog,
        figures,
        {"state": run.state_dir, "cache": run.cache_dir, "CLI output": output},
    )
    assert len(spies.tokens) >= 5  # two logins (2 each), a refresh, and the CLI's login


def test_storage_never_receives_authorization(
    sb: Sandbox, run: Run, spies: Spies, figures: Any
) -> None:
    """Whatever ran before in this module, plus one download of its own."""
    client = run.client(sb.api_key)
    job = client.exports.start({"countries": "BE", "email": True})
    job.download(run.tmp / "be-email.csv")
    assert spies.urls
    requests = sb.admin.storage_requests()
    assert requests, "the storage origin logged no request"
    assert [r for r in requests if r["authorization"] or r["proxy_authorization"]] == []
    assert all(r["path"].startswith("/exports/") for r in requests)
    figures.add("storage requests checked", len(requests))
