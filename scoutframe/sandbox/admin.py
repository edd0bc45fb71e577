"""The ``/_sandbox/`` control plane: server routes and `AdminControl`, its HTTP client.

Every control route needs the header ``X-Sandbox-Admin-Token``. It adds and re-collects
contacts, moves the sandbox clock, changes faults and export pacing, creates extra accounts,
shows credit ledgers and what the storage origin received. None of it exists in the real API.
"""

from __future__ import annotations

import dataclasses
import hmac
import secrets
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.requests import Request
    from starlette.responses import Response

    from scoutframe.sandbox.runtime import Runtime

__all__ = ["ADMIN_HEADER", "LATEST_CLOCK", "AdminControl", "add_control_routes"]

ADMIN_HEADER = "X-Sandbox-Admin-Token"
#: The furthest the control plane moves the sandbox clock (epoch seconds of 9000-01-01):
#: timestamps, expiries and ISO dates stay representable.
LATEST_CLOCK = 221845392000.0


class AdminControl:
    """Drive a running sandbox's control plane over HTTP.

    Parameters
    ----------
    url
        The sandbox's API origin.
    token
        The admin token printed at start (``SCOUTFRAME_SANDBOX_ADMIN_TOKEN``).
    timeout
        Seconds per request.

    Examples
    --------
    >>> from scoutframe.sandbox import Sandbox
    >>> with Sandbox(contacts=2_000) as sb:  # doctest: +SKIP
    ...     sb.admin.add_contacts(10)["added"]
    10
    """

    def __init__(self, url: str, token: str, *, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._session = requests.Session()
        self._session.trust_env = False

    def __repr__(self) -> str:
        return f"AdminControl(url={self.url!r})"

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._session.request(
            method, f"{self.url}/_sandbox/{path}", json=body, timeout=self._timeout,
            headers={ADMIN_HEADER: self._token},
        )  # fmt: skip
        response.raise_for_status()
        return response.json()

    def info(self) -> dict[str, Any]:
        """Return ``{"flavor", "contacts", "now", "demo_credits"}``."""
        result: dict[str, Any] = self._call("GET", "")
        return result

    def add_contacts(self, n: int) -> dict[str, int]:
        """Add ``n`` new businesses collected now; returns ``{"added", "recollected", "total"}``."""
        result: dict[str, int] = self._call("POST", "contacts", {"add": n})
        return result

    def recollect(self, n: int) -> dict[str, int]:
        """Re-collect ``n`` random existing businesses (newer ``collected_at``)."""
        result: dict[str, int] = self._call("POST", "contacts", {"recollect": n})
        return result

    def advance_clock(self, seconds: float) -> str:
        """Move the sandbox clock forward; returns the new time (ISO-8601)."""
        return str(self._call("POST", "clock", {"advance": seconds})["now"])

    def faults(self) -> dict[str, Any]:
        """Return the current fault configuration."""
        result: dict[str, Any] = self._call("GET", "faults")
        return result

    def set_faults(self, **changes: Any) -> dict[str, Any]:
        """Change fault settings (names of `FaultConfig`); returns the new configuration."""
        result: dict[str, Any] = self._call("PATCH", "faults", changes)
        return result

    def create_account(self, credits: int = 1_000) -> dict[str, Any]:
        """Return a new account: ``{"id", "email", "password", "api_key"}`` (shown only here)."""
        result: dict[str, Any] = self._call("POST", "accounts", {"credits": credits})
        return result

    def ledger(self, account_id: int) -> list[dict[str, Any]]:
        """Return the account's credit ledger, oldest first."""
        result: list[dict[str, Any]] = self._call("GET", f"accounts/{account_id}/ledger")
        return result

    def set_export_pacing(
        self, *, min_polls: int | None = None, delay_seconds: float | None = None,
        processing_seconds: float | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Slow exports down; returns the pacing.

        Parameters
        ----------
        min_polls, delay_seconds
            Report a finished export ready only after this many status polls and this many
            seconds (sandbox clock) since it started.
        processing_seconds
            Hold each export in ``processing`` this many real seconds before its file is
            written (it is really unfinished: what a restart test needs).

        Returns
        -------
        dict
            ``{"min_polls", "delay_seconds", "processing_seconds"}``.
        """
        given = (("min_polls", min_polls), ("delay_seconds", delay_seconds),
                 ("processing_seconds", processing_seconds))  # fmt: skip
        body = {k: v for k, v in given if v is not None}
        result: dict[str, Any] = self._call("PATCH", "exports", body)
        return result

    def storage_requests(self, *, clear: bool = False) -> list[dict[str, Any]]:
        """Return what the storage origin received, oldest first (the last 10,000 requests).

        Parameters
        ----------
        clear
            Empty the log in the same call (nothing recorded in between is lost).

        Returns
        -------
        list of dict
            ``{"seq", "at", "method", "path", "query_keys", "authorization",
            "proxy_authorization", "cookie", "status"}`` per request: the flags say whether
            the header was sent (its value is never kept); ``path`` has no query string.
        """
        path = "storage-requests?clear=true" if clear else "storage-requests"
        result: list[dict[str, Any]] = self._call("GET", path)
        return result

    def clear_storage_requests(self) -> int:
        """Empty the storage request log; returns how many entries were dropped."""
        return int(self._call("DELETE", "storage-requests")["cleared"])


def add_control_routes(app: FastAPI, rt: Runtime) -> None:
    """Register the ``/_sandbox/`` routes on the API app."""
    import numpy as np
    from starlette.concurrency import run_in_threadpool

    from scoutframe.sandbox.server import DEMO_EMAIL
    from scoutframe.sandbox.state import iso
    from scoutframe.sandbox.store import parse_bool
    from scoutframe.sandbox.web import ApiError, json_body, json_response, not_found, path_id, route

    def check(request: Request) -> None:
        given = request.headers.get(ADMIN_HEADER, "")
        if not hmac.compare_digest(given.encode(), rt.admin_token.encode()):
            raise ApiError(401, {"detail": f"Missing or wrong {ADMIN_HEADER} header."})

    def number(body: dict[str, Any], key: str, default: float = 0) -> float:
        value = body.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ApiError(400, {key: ["A non-negative number is required."]})
        return float(value)

    async def info(request: Request) -> Response:
        check(request)
        demo = rt.state.account_by_email(DEMO_EMAIL)
        return json_response({"flavor": rt.flavor, "contacts": rt.store.total,
                              "now": iso(rt.clock()),
                              "demo_credits": demo.credits if demo else None})  # fmt: skip

    async def contacts(request: Request) -> Response:
        check(request)
        body = await json_body(request)
        add = int(number(body, "add"))
        recollect = int(number(body, "recollect"))
        result = await run_in_threadpool(apply_changes, add, recollect)
        return json_response(result)

    def apply_changes(add: int, recollect: int) -> dict[str, int]:
        now = rt.clock()
        added = 0
        if add:
            counter = int(rt.state.get_meta("changes") or "0") + 1
            rt.state.set_meta("changes", str(counter))
            rt.store.add_contacts(rt.new_contacts(add, now))
            added = add
        recollected = 0
        if recollect:
            counter = int(rt.state.get_meta("changes") or "0") + 1
            rt.state.set_meta("changes", str(counter))
            rng = np.random.default_rng([rt.seed, counter])
            recollected = rt.store.recollect(recollect, int(now * 1e6), rng)
        return {"added": added, "recollected": recollected, "total": rt.store.total}

    async def clock(request: Request) -> Response:
        check(request)
        body = await json_body(request)
        advance = number(body, "advance")
        if rt.clock() + advance > LATEST_CLOCK:  # dates (and 30-day expiries) must stay valid
            raise ApiError(400, {"advance": ["The sandbox clock cannot go past 9000-01-01."]})
        now = rt.clock.advance(advance)
        rt.state.set_meta("clock_offset", repr(rt.clock.offset))
        await run_in_threadpool(rt.exports.sweep)  # moved time may expire export files
        return json_response({"now": iso(now)})

    async def faults(request: Request) -> Response:
        check(request)
        if request.method == "PATCH":
            body = await json_body(request)
            try:
                rt.faults.update(**body)
            except (TypeError, ValueError) as exc:
                raise ApiError(400, {"detail": str(exc)}) from None
        return json_response(rt.faults.config.to_dict())

    async def accounts(request: Request) -> Response:
        check(request)
        body = await json_body(request)
        credits = int(number(body, "credits", 1_000))
        suffix = secrets.token_hex(4)
        password = secrets.token_urlsafe(12)
        account = rt.state.create_account(f"user-{suffix}@sandbox.spherescout.test", password,
                                          credits)  # fmt: skip
        key = secrets.token_hex(32)
        rt.state.add_api_key(account.id, key, "sandbox", None)
        return json_response({"id": account.id, "email": account.email, "password": password,
                              "api_key": key}, status=201)  # fmt: skip

    async def ledger(request: Request) -> Response:
        check(request)
        account_id = path_id(request, "account_id")
        if rt.state.account(account_id) is None:
            raise not_found()
        return json_response(rt.state.ledger(account_id))

    async def exports(request: Request) -> Response:
        check(request)
        body = await json_body(request)
        pacing = rt.exports.pacing
        if "min_polls" in body:
            pacing.min_polls = int(number(body, "min_polls"))
        if "delay_seconds" in body:
            pacing.delay_seconds = number(body, "delay_seconds")
        if "processing_seconds" in body:
            pacing.processing_seconds = number(body, "processing_seconds")
        return json_response(dataclasses.asdict(pacing))

    async def storage_requests(request: Request) -> Response:
        check(request)
        log = rt.storage_log
        if request.method == "DELETE":
            return json_response({"cleared": log.clear()})
        errors: dict[str, list[str]] = {}
        clear = parse_bool("clear", request.query_params.get("clear", "false"), errors)
        if errors:
            raise ApiError(400, errors)
        return json_response(log.entries(clear=bool(clear)))

    route(app, "/_sandbox", info, ["GET"])
    route(app, "/_sandbox/contacts", contacts, ["POST"])
    route(app, "/_sandbox/clock", clock, ["POST"])
    route(app, "/_sandbox/faults", faults, ["GET", "PATCH"])
    route(app, "/_sandbox/accounts", accounts, ["POST"])
    route(app, "/_sandbox/accounts/{account_id}/ledger", ledger, ["GET"])
    route(app, "/_sandbox/exports", exports, ["PATCH"])
    route(app, "/_sandbox/storage-requests", storage_requests, ["GET", "DELETE"])
