"""The sandbox as a server: access control, fuzzing against its OpenAPI document, rate limits.

a. Every endpoint of both flavours (taken from the OpenAPI document, so none is forgotten)
   with bad credentials of every kind, and with another account's objects: never a 2xx.
b. Schemathesis in-process over ``/openapi.json``: no 5xx, answers conform to the document.
c. A concurrent burst against the rate limits: never more 2xx than the bucket allows.
"""

from __future__ import annotations

import base64
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import pytest
import requests

from scoutframe.sandbox import Sandbox
from scoutframe.sandbox.openapi import operations

CONTACTS = 3_000
FLAVORS = ("docs", "live")


# -- sandboxes -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def new_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Sandbox]]:
    """Start thread-mode sandboxes on a small shared dataset, each with fresh state."""
    from scoutframe.sandbox.dataset import load_or_generate

    base = tmp_path_factory.getbasetemp() / f"reliability-dataset-{CONTACTS}"
    base.mkdir(exist_ok=True)
    load_or_generate(base, contacts=CONTACTS, seed=0)  # generated once per session
    started: list[Sandbox] = []

    def make(**kw: Any) -> Sandbox:
        data_dir = tmp_path_factory.mktemp("sandbox")
        for src in base.glob("*.parquet"):
            os.link(src, data_dir / src.name)
        kw.setdefault("rate_limit", 0)
        sb = Sandbox(CONTACTS, data_dir=data_dir, **kw).start()
        started.append(sb)
        return sb

    yield make
    for sb in started:
        sb.stop()


class Http:
    """Plain requests to one origin, the credential given per call."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.trust_env = False

    def __call__(
        self, method: str, path: str, auth: str | None = None, **kw: Any
    ) -> requests.Response:
        headers = dict(kw.pop("headers", {}))
        if auth is not None:
            headers["Authorization"] = auth
        return self.session.request(method, self.url + path, headers=headers, timeout=30, **kw)


def _wait(http: Http, auth: str, path: str, done: tuple[str, ...]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        body: dict[str, Any] = http("GET", path, auth).json()
        if body["status"] in done or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def _export(http: Http, auth: str, live: bool) -> dict[str, Any]:
    """Run one export to the end; returns its search id, task id (docs) and history id."""
    filters = {"category": "8059"}
    sid = http("GET", "/api/companies", auth, params=filters).json()["search_id"]
    if live:
        assert http("GET", "/api/download-csv/", auth, params=filters).status_code == 200
        status = _wait(http, auth, f"/api/download-status/{sid}/", ("completed", "failed"))
        task_id = None
    else:
        started = http("GET", "/api/download-csv", auth, params={"search_id": sid})
        assert started.status_code == 202
        task_id = started.json()["task_id"]
        status = _wait(http, auth, f"/api/download-status/{task_id}", ("ready", "failed"))
    assert status["status"] in ("ready", "completed")
    entry = http("GET", "/api/user/search-history", auth).json()["results"][0]
    return {"search_id": sid, "task_id": task_id, "entry_id": entry["id"]}


def _key_id(http: Http, auth: str, name: str) -> int:
    keys = http("GET", "/api/user/api-keys", auth).json()
    return int(next(k["id"] for k in keys if k["name"] == name))


# -- a. access control -----------------------------------------------------------------------


def _credential_cases(sb: Sandbox, http: Http, live: bool) -> dict[str, str | None]:
    """Bad credentials of every kind, all belonging to the demo account."""
    prefix = "Token" if live else "Bearer"
    demo = f"{prefix} {sb.api_key}"
    revoked = http("POST", "/api/user/api-keys", demo, json={"name": "revoked"}).json()
    assert http("DELETE", f"/api/user/api-keys/{revoked['id']}", demo).status_code == 204
    now = datetime.fromisoformat(sb.admin.info()["now"].replace("Z", "+00:00"))
    expiry = (now + timedelta(seconds=60)).isoformat()
    expiring = http("POST", "/api/user/api-keys", demo, json={"name": "soon", "expiry": expiry})
    assert expiring.status_code == 201
    tokens = http(
        "POST", "/api/auth/login", json={"username": sb.username, "password": sb.password}
    ).json()
    expiring_auth = f"{prefix} {expiring.json()['key']}"
    jwt_auth = f"Bearer {tokens['access']}"
    assert http("GET", "/api/user/profile", expiring_auth).status_code == 200
    assert http("GET", "/api/user/profile", jwt_auth).status_code == 200
    sb.admin.advance_clock(3600)  # past the key's expiry and the access token's lifetime
    basic = base64.b64encode(f"{sb.username}:{sb.password}".encode()).decode()
    cases: dict[str, str | None] = {
        "no credential": None,
        "empty header": "",
        "scheme only": prefix,
        "Basic login": f"Basic {basic}",
        "Basic with the API key": f"Basic {sb.api_key}",
        "unknown scheme": f"Digest {sb.api_key}",
        "malformed key": f"{prefix} not-a-key",
        "unknown key": f"{prefix} {'0' * 64}",
        "truncated key": f"{prefix} {sb.api_key[:-1]}",
        "malformed JWT": "Bearer a.b.c",
        "tampered JWT": f"Bearer {tokens['access'][:-4]}AAAA",
        "refresh token as access": f"Bearer {tokens['refresh']}",
        "revoked key": f"{prefix} {revoked['key']}",
        "expired key": expiring_auth,
        "expired JWT": jwt_auth,
    }
    if live:
        cases["API key with Bearer (live: Token only)"] = f"Bearer {sb.api_key}"
    return cases


def _requests_for(
    flavor: str, ids: dict[str, Any], sb: Sandbox, refresh: str
) -> list[tuple[str, str, dict[str, Any]]]:
    """One concrete request per documented operation, plus a wrong method per path."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    for method, template in operations(flavor):
        path = template.format(
            key_id=ids["key_id"],
            entry_id=ids["entry_id"],
            task_id=ids["task_id"],
            search_id=ids["search_id"],
        )
        kw: dict[str, Any] = {}
        if template == "/api/download-csv":
            kw["params"] = (
                {"category": "8059"} if flavor == "live" else {"search_id": ids["search_id"]}
            )
        elif template == "/api/auth/login":
            kw["json"] = {"username": sb.username, "password": sb.password}
        elif template == "/api/token/refresh":
            kw["json"] = {"refresh": refresh}
        out.append((method, path, kw))
    for path in sorted({p for _, p, _ in out}):
        out.append(("PUT", path, {}))  # no route serves PUT: 401 before 405
    return out + [(m, p + "/", kw) for m, p, kw in out]  # and with the trailing slash


_OPEN = ("/api/auth/login", "/api/token/refresh", "/api/public/companies")


def _check_unauthorized(r: requests.Response, case: str) -> None:
    where = (r.request.method, r.request.url, case)
    assert r.status_code == 401, (*where, r.status_code, r.text[:200])
    assert r.headers.get("WWW-Authenticate", "").startswith("Bearer"), where
    assert isinstance(r.json()["detail"], str), where
    if case in ("expired JWT", "tampered JWT", "malformed JWT", "refresh token as access"):
        assert r.json().get("code") == "token_not_valid", where


def _victim(sb: Sandbox, http: Http, live: bool) -> dict[str, Any]:
    """Another account with a finished export and a second key: the objects to reach for."""
    info = sb.admin.create_account(credits=10_000)
    auth = f"{'Token' if live else 'Bearer'} {info['api_key']}"
    objects = _export(http, auth, live)
    extra = http("POST", "/api/user/api-keys", auth, json={"name": "victim"}).json()
    return {
        **objects,
        "auth": auth,
        "account_id": info["id"],
        "key_id": extra["id"],
        "extra_auth": f"{'Token' if live else 'Bearer'} {extra['key']}",
    }


def _foreign_requests(live: bool, victim: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    entry, sid = victim["entry_id"], victim["search_id"]
    out: list[tuple[str, str, dict[str, Any]]] = [
        ("DELETE", f"/api/user/api-keys/{victim['key_id']}", {}),
        ("GET", f"/api/user/search-history/{entry}/freshness", {}),
        ("GET", f"/api/user/search-history/{entry}/download-delta", {}),
    ]
    if live:
        out += [
            ("GET", f"/api/download-status/{sid}", {}),
            ("GET", f"/api/download-completed-csv/{sid}", {}),
        ]
    else:
        out += [
            ("GET", f"/api/download-status/{victim['task_id']}", {}),
            ("GET", "/api/download-csv", {"params": {"search_id": sid}}),
        ]
    return out + [(m, p + "/", kw) for m, p, kw in out]


@pytest.mark.parametrize("flavor", FLAVORS)
def test_access_control_matrix(new_sandbox, figures, flavor):
    live = flavor == "live"
    sb = new_sandbox(flavor=flavor, access_token_lifetime=600)
    http = Http(sb.url)
    demo = f"{'Token' if live else 'Bearer'} {sb.api_key}"
    victim = _victim(sb, http, live)
    own = _export(http, demo, live)
    own["key_id"] = _key_id(http, demo, "demo")
    refresh = http(
        "POST", "/api/auth/login", json={"username": sb.username, "password": sb.password}
    ).json()["refresh"]
    cases = _credential_cases(sb, http, live)
    fresh_jwt = (
        "Bearer "
        + http(
            "POST", "/api/auth/login", json={"username": sb.username, "password": sb.password}
        ).json()["access"]
    )
    matrix = _requests_for(flavor, own, sb, refresh)
    # The same requests with the demo account's valid key work (so a 401 below is the
    # credential's doing); revoking its own key is left out.
    for method, path, kw in matrix:
        if method != "DELETE":
            if method == "GET" and "/download-completed-csv/" in path:  # the latest export
                _wait(http, demo, f"/api/download-status/{own['search_id']}", ("completed",))
            status = http(method, path, demo, **kw).status_code
            assert status == 405 if method == "PUT" else 200 <= status < 300, (method, path)
    demo_ledger = sb.admin.ledger(1)
    victim_ledger = sb.admin.ledger(victim["account_id"])
    cells = unexpected = 0

    # Bad credentials on every endpoint (the demo account's own ids in the paths).
    for method, path, kw in matrix:
        is_open = path.rstrip("/") in _OPEN
        reference = http(method, path, None, **kw).status_code if is_open else None
        for case, auth in cases.items():
            r = http(method, path, auth, **kw)
            cells += 1
            assert r.status_code < 500, (method, path, case, r.text[:200])
            if is_open:  # no credential needed: a bad one changes nothing
                assert r.status_code == reference, (method, path, case)
                continue
            unexpected += 200 <= r.status_code < 300
            _check_unauthorized(r, case)
    assert sb.admin.ledger(1) == demo_ledger  # nothing charged, nothing refunded

    # Another account's objects, with a valid API key and a valid JWT of the demo account.
    for attacker in (demo, fresh_jwt):
        for method, path, kw in _foreign_requests(live, victim):
            r = http(method, path, attacker, **kw)
            cells += 1
            unexpected += 200 <= r.status_code < 300
            assert r.status_code == 404, (method, path, r.status_code, r.text[:200])
            assert isinstance(r.json()["detail"], str)
    assert http("GET", "/api/user/profile", victim["extra_auth"]).status_code == 200
    assert sb.admin.ledger(victim["account_id"]) == victim_ledger
    assert sb.admin.ledger(1) == demo_ledger
    victim_entry = f"/api/user/search-history/{victim['entry_id']}/freshness"
    assert http("GET", victim_entry, victim["auth"]).status_code == 200

    figures.add("access-control cells checked", cells)
    figures.add("access-control unexpected 2xx", unexpected)
    assert unexpected == 0
    assert cells > 500


# -- b. fuzzing against the OpenAPI document -------------------------------------------------


class _Fuzz:
    """Run schemathesis cases against one in-process app and keep the score."""

    def __init__(self, app: Any, auth: str, examples: int, derandomize: bool) -> None:
        import schemathesis
        from schemathesis.checks import not_a_server_error
        from schemathesis.specs.openapi import checks

        self.schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        self.auth = auth
        self.examples = examples
        self.derandomize = derandomize
        self.checks = [
            not_a_server_error,
            checks.response_schema_conformance,
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_headers_conformance,
        ]
        self.cases = 0
        self.server_errors = 0
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.failures: list[str] = []

    def operations(self) -> list[Any]:
        ops = [result.ok() for result in self.schema.get_all_operations()]
        # Revoking keys last: a fuzzed id may be the demo key's own.
        return sorted(ops, key=lambda op: op.method.upper() == "DELETE")

    def run(self, op: Any, mode: str = "positive", **fixed: Any) -> None:
        from hypothesis import HealthCheck, Phase, given, settings
        from hypothesis.errors import Unsatisfiable
        from schemathesis import GenerationMode

        @settings(
            max_examples=self.examples,
            deadline=None,
            database=None,
            derandomize=self.derandomize,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=op.as_strategy(generation_mode=GenerationMode(mode), **fixed))
        def one(case: Any) -> None:
            self.cases += 1
            try:
                response = case.call(headers={"Authorization": self.auth})
            except requests.RequestException as exc:  # a reset connection is a failure too
                self.server_errors += 1
                self.failures.append(f"{op.label}: {exc!r}")
                return
            self.statuses[(op.label, response.status_code)] += 1
            self.server_errors += response.status_code >= 500
            try:
                case.validate_response(response, checks=self.checks)
            except BaseExceptionGroup as group:
                self.failures.append(f"{op.label} [{mode}]: {group.exceptions[0]}"[:2000])

        try:
            one()
        except Unsatisfiable:
            assert mode == "negative", op.label  # nothing to negate (no parameters)


@pytest.fixture
def hypothesis_home(tmp_path: Path) -> Iterator[None]:
    """Keep Hypothesis's files (constants cache) out of the working directory."""
    from hypothesis.configuration import set_hypothesis_home_dir

    set_hypothesis_home_dir(tmp_path / ".hypothesis")
    yield
    set_hypothesis_home_dir(None)


@pytest.mark.usefixtures("hypothesis_home")
@pytest.mark.parametrize("flavor", FLAVORS)
def test_fuzz_against_openapi_document(new_sandbox, figures, soak, flavor):
    from scoutframe.sandbox.app import create_app

    live = flavor == "live"
    sb = new_sandbox(flavor=flavor, credits=10**9)
    auth = f"{'Token' if live else 'Bearer'} {sb.api_key}"
    fuzz = _Fuzz(create_app(sb.runtime), auth, 200 if soak else 10, derandomize=not soak)
    # Real ids, so that the success paths are fuzzed too, not only the 404s.
    http = Http(sb.url)
    real = _export(http, auth, live)
    started = time.monotonic()
    ops = fuzz.operations()
    for op in ops:
        fuzz.run(op)
        if op.path_parameters or op.query or op.body:
            fuzz.run(op, "negative")
        fixed: dict[str, Any] = {}
        if op.path.endswith(("/freshness", "/download-delta")):
            fixed["path_parameters"] = {"entry_id": real["entry_id"]}
        elif op.path.startswith(("/api/download-status/", "/api/download-completed-csv/")):
            name = "search_id" if live else "task_id"
            fixed["path_parameters"] = {name: real[name]}
        elif op.path == "/api/download-csv" and not live:
            fixed["query"] = {"search_id": real["search_id"]}
        if fixed:
            fuzz.run(op, **fixed)
    elapsed = time.monotonic() - started

    figures.add("fuzz cases run", fuzz.cases)
    figures.add("fuzz 5xx found", fuzz.server_errors)
    assert fuzz.server_errors == 0, fuzz.failures[:5]
    assert fuzz.failures == [], fuzz.failures[:5]
    assert fuzz.cases >= len(ops) * fuzz.examples
    # The real ids reached the success answers.
    ok = {label for (label, status), _ in fuzz.statuses.items() if status < 300}
    assert {
        f"GET {p}"
        for p in (
            "/api/user/search-history/{entry_id}/freshness",
            "/api/user/profile",
            "/api/companies",
        )
    } <= ok
    figures.add("fuzz: seconds spent (a figure, not a bound)", round(elapsed))


# -- c. rate limits under a concurrent burst -------------------------------------------------


Answers = list[tuple[int, dict[str, str]]]


def _burst(
    url: str, path: str, headers: dict[str, str], n: int, source: str = "127.0.0.1"
) -> tuple[Answers, float]:
    """Fire ``n`` requests at once from ``n`` threads; returns (status, headers) and seconds."""
    host, port = url.removeprefix("http://").split(":")
    barrier = threading.Barrier(n + 1)
    results: list[tuple[int, dict[str, str]]] = []
    lock = threading.Lock()

    def one() -> None:
        conn = HTTPConnection(host, int(port), timeout=60, source_address=(source, 0))
        conn.connect()
        barrier.wait()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        with lock:
            results.append((response.status, {k.lower(): v for k, v in response.getheaders()}))
        conn.close()

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.monotonic()
    for t in threads:
        t.join(60)
    return results, time.monotonic() - started


def _check_bucket(results: Answers, elapsed: float, rate: float, burst: int) -> int:
    """Assert what a token bucket of ``burst`` refilled at ``rate``/s allows; returns 2xx."""
    statuses = Counter(status for status, _ in results)
    assert set(statuses) <= {200, 429}, statuses
    refill = rate * elapsed
    allowed = statuses[200]
    assert burst <= allowed <= burst + math.floor(refill) + 1, (statuses, elapsed)
    remaining = []
    for status, headers in results:
        assert headers["x-ratelimit-limit"] == str(burst)  # the same limit on every answer
        left = int(headers["x-ratelimit-remaining"])
        assert 0 <= left < burst
        assert int(headers["x-ratelimit-reset"]) >= 0
        if status == 429:
            assert left == 0
            assert int(headers["retry-after"]) >= 1
        else:
            remaining.append(left)
    # The j-th largest Remaining of the allowed answers was left after at least j tokens were
    # taken from a full bucket: at most burst - j plus what flowed back in meanwhile.
    for j, left in enumerate(sorted(remaining, reverse=True), start=1):
        assert left <= burst - j + refill, (j, left, sorted(remaining, reverse=True))
    return allowed


def test_rate_limits_under_a_concurrent_burst(new_sandbox, figures):
    sb = new_sandbox(rate_limit=20)  # 20 a second per credential, burst 40
    n = 120
    results, elapsed = _burst(
        sb.url, "/api/user/profile", {"Authorization": f"Bearer {sb.api_key}"}, n
    )
    assert len(results) == n
    allowed = _check_bucket(results, elapsed, rate=20, burst=40)
    other = sb.admin.create_account(credits=10)["api_key"]  # buckets are per credential
    assert Http(sb.url)("GET", "/api/user/profile", f"Bearer {other}").status_code == 200

    public, public_elapsed = _burst(sb.url, "/api/public/companies", {}, 30)
    public_allowed = _check_bucket(public, public_elapsed, rate=10 / 60, burst=10)
    # Per client address: another loopback address has its own bucket.
    again, _ = _burst(sb.url, "/api/public/companies", {}, 3, source="127.0.0.3")
    assert [status for status, _ in again] == [200, 200, 200]

    figures.add("burst requests", n + 30 + 3)
    figures.add("burst 2xx (credential, 120 at once, burst 40)", allowed)
    figures.add("burst 2xx (public, 30 at once, burst 10)", public_allowed)
