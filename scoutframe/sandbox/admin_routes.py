"""The ``/_sandbox/`` control plane's routes (its HTTP client is `scoutframe.sandbox.control`).

Every control route needs the header ``X-Sandbox-Admin-Token``. It adds and re-collects
contacts, moves the sandbox clock, changes faults and export pacing, creates extra accounts,
shows credit ledgers and what the storage origin received. None of it exists in the real API.
"""

from __future__ import annotations

import dataclasses
import hmac
import secrets
from typing import TYPE_CHECKING, Any

import numpy as np
from starlette.concurrency import run_in_threadpool

from scoutframe.sandbox.constants import ADMIN_HEADER, DEMO_EMAIL
from scoutframe.sandbox.state import iso
from scoutframe.sandbox.store import parse_bool
from scoutframe.sandbox.web import ApiError, json_body, json_response, not_found, path_id, route

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.requests import Request
    from starlette.responses import Response

    from scoutframe.sandbox.runtime import Runtime

__all__ = ["LATEST_CLOCK", "add_control_routes"]

#: The furthest the control plane moves the sandbox clock (epoch seconds of 9000-01-01):
#: timestamps, expiries and ISO dates stay representable.
LATEST_CLOCK = 221845392000.0


def add_control_routes(app: FastAPI, rt: Runtime) -> None:
    """Register the ``/_sandbox/`` routes on the API app."""

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
        return json_response(
            {
                "flavor": rt.flavor,
                "contacts": rt.store.total,
                "now": iso(rt.clock()),
                "demo_credits": demo.credits if demo else None,
            }
        )

    async def contacts(request: Request) -> Response:
        check(request)
        body = await json_body(request)
        add = int(number(body, "add"))
        recollect = int(number(body, "recollect"))
        result = await run_in_threadpool(apply_changes, add, recollect)
        return json_response(result)

    def apply_changes(add: int, recollect: int) -> dict[str, int]:
        with rt.store.publishing:  # stamped and published as one step, for deltas
            return stamp_and_publish(add, recollect)

    def stamp_and_publish(add: int, recollect: int) -> dict[str, int]:
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
        account = rt.state.create_account(
            f"user-{suffix}@sandbox.spherescout.test", password, credits
        )
        key = secrets.token_hex(32)
        rt.state.add_api_key(account.id, key, "sandbox", None)
        return json_response(
            {"id": account.id, "email": account.email, "password": password, "api_key": key},
            status=201,
        )

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
