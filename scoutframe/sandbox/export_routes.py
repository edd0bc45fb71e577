"""Export and history routes (contract sections 6, 7 and 9.2-9.4).

Starting an export charges at once (`ExportManager.start`); the status and history answers
hand out a freshly signed download URL while the file's expiry lies ahead of the sandbox
clock. A delta download is built in the request and charged in the same transaction that
records its history entry.
"""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa
from starlette.requests import Request
from starlette.responses import Response

from scoutframe.sandbox.csvexport import export_csv_bytes
from scoutframe.sandbox.search_routes import SearchRoutes
from scoutframe.sandbox.state import InsufficientCredits, iso
from scoutframe.sandbox.store import SearchFilters
from scoutframe.sandbox.web import (
    ApiError,
    insufficient_credits,
    json_response,
    not_found,
    path_id,
)

__all__ = ["ExportRoutes"]

_PROGRESS = {"pending": 0.0, "processing": 0.5, "ready": 1.0}


class ExportRoutes:
    """``/api/download-*`` and ``/api/user/search-history``."""

    def __init__(self, search: SearchRoutes) -> None:
        self.search = search
        self.auth = search.auth
        self.rt = search.rt

    def _start(self, account_id: int, search_id: str, filters: SearchFilters) -> dict[str, Any]:
        try:
            return self.rt.exports.start(account_id, search_id, filters)
        except InsufficientCredits as exc:
            raise insufficient_credits(exc, "export") from None

    def download_csv(self, request: Request) -> Response:
        """Start (and charge) an export: by ``search_id`` (docs) or re-sent filters (live)."""
        account_id = self.auth.authenticate(request)
        params = request.query_params
        fmt = params.get("export_format", "csv")
        if fmt != "csv":
            raise ApiError(400, {"export_format": [f"Unsupported format '{fmt}'; use csv."]})
        if self.rt.live:
            # [LIVE] the filters are re-sent; the answer has no task_id.
            filters = self.search.filters(request)
            if "search_id" in params and not filters.to_json():
                # [DESIGN] a bare search_id would otherwise export (and charge) everything.
                raise ApiError(
                    400,
                    {
                        "search_id": [
                            "This API starts exports from the search's filters; send them instead."
                        ]
                    },
                )
            search_id = self.search.search_id(account_id, filters)
            task = self._start(account_id, search_id, filters)
            return json_response(
                {"status": "pending", "search_id": search_id, "lead_count": task["lead_count"]}
            )
        search_id = params.get("search_id") or ""
        if not search_id:
            raise ApiError(400, {"search_id": ["This field is required."]})
        stored = self.rt.state.search_filters(account_id, search_id)
        if stored is None:
            raise not_found("Unknown search_id.")
        filters = SearchFilters.from_json(orjson.loads(stored))
        task = self._start(account_id, search_id, filters)
        return json_response(
            {
                "task_id": task["task_id"],
                "status": "pending",
                "search_id": search_id,
                "lead_count": task["lead_count"],
            },
            status=202,
        )

    def _task_for(self, account_id: int, ident: str) -> dict[str, Any]:
        if self.rt.live:
            task = self.rt.state.latest_task(account_id, ident)
        else:
            task = self.rt.state.task(ident)
        if task is None or task["account_id"] != account_id:
            raise not_found()
        return task

    def _download_url(self, task: dict[str, Any]) -> str | None:
        if task["status"] != "ready" or task["expires_at"] is None:
            return None
        if float(task["expires_at"]) <= self.rt.clock():
            return None
        return self.rt.signer.sign(str(task["object_name"]), float(task["expires_at"]))

    def download_status(self, request: Request) -> Response:
        """Poll an export: by task id (docs) or search id with ``completed`` (live)."""
        account_id = self.auth.authenticate(request)
        task = self._task_for(account_id, request.path_params["ident"])
        status = self.rt.exports.visible_status(task, count_poll=True)
        progress = _PROGRESS.get(status, 0.0)
        body: dict[str, Any]
        if self.rt.live:
            body = {
                "status": "completed" if status == "ready" else status,
                "search_id": task["search_id"],
                "lead_count": task["lead_count"],
                "progress": progress,
                "updated_at": iso(self.rt.clock()),
            }
        else:
            body = {
                "task_id": task["task_id"],
                "status": status,
                "search_id": task["search_id"],
                "lead_count": task["lead_count"],
                "progress": progress,
            }
            if status == "ready":
                body["download_url"] = self._download_url(task)
                body["expires_at"] = iso(task["expires_at"])
        if status == "failed":
            body["error"] = task["error"]
        return json_response(body)

    def download_completed(self, request: Request) -> Response:
        """[LIVE] ``/api/download-completed-csv/{search_id}/``: the URL once completed."""
        account_id = self.auth.authenticate(request)
        task = self._task_for(account_id, request.path_params["ident"])
        status = self.rt.exports.visible_status(task, count_poll=False)
        url = self._download_url(task) if status == "ready" else None
        if url is None:
            raise not_found("No completed export for this search.")
        return json_response({"download_url": url, "expires_at": iso(task["expires_at"])})

    # -- history
    def _entry(self, account_id: int, request: Request) -> dict[str, Any]:
        entry = self.rt.state.history_entry(account_id, path_id(request, "entry_id"))
        if entry is None:
            raise not_found()  # another account's entry too: never 403
        return entry

    def history(self, request: Request) -> Response:
        """``GET /api/user/search-history``, newest first."""
        account_id = self.auth.authenticate(request)
        results = []
        for e in self.rt.state.history(account_id):
            url = self._download_url(e) if e["status"] == "ready" and e["kind"] == "full" else None
            results.append(
                {
                    "id": e["id"],
                    "search_id": e["search_id"],
                    "filters": orjson.loads(e["filters"]),
                    "created_at": iso(e["created_at"]),
                    "row_count": e["row_count"],
                    "status": e["status"],
                    "kind": e["kind"],
                    "parent_id": e["parent_id"],
                    "download_url": url,
                    "expires_at": iso(e["expires_at"]),
                }
            )
        return json_response({"count": len(results), "results": results})

    def _new_since(self, entry: dict[str, Any]) -> tuple[pa.Table, Any]:
        filters = SearchFilters.from_json(orjson.loads(entry["filters"]))
        return self.rt.store.snapshot(filters, int(float(entry["created_at"]) * 1e6))

    def freshness(self, request: Request) -> Response:
        """``GET .../{id}/freshness``: contacts collected since the entry's export."""
        account_id = self.auth.authenticate(request)
        entry = self._entry(account_id, request)
        new_count = int(self._new_since(entry)[1].size)
        return json_response(
            {
                "id": entry["id"],
                "exported_at": iso(entry["created_at"]),
                "new_count": new_count,
                "is_fresh": new_count == 0,
                "checked_at": iso(self.rt.clock()),
            }
        )

    def download_delta(self, request: Request) -> Response:
        """``GET .../{id}/download-delta``: CSV of new and updated contacts, charged per row."""
        account_id = self.auth.authenticate(request)
        entry = self._entry(account_id, request)
        with self.rt.store.publishing:  # no change stamped before exported_at is still unseen
            exported_at = self.rt.clock()
            table, idx = self._new_since(entry)
        try:
            new_id = self.rt.state.record_delta(account_id, entry, int(idx.size), exported_at)
        except InsufficientCredits as exc:
            raise insufficient_credits(exc, "delta") from None
        data = export_csv_bytes(table, indices=idx)
        return Response(
            data,
            media_type="text/csv; charset=utf-8",
            headers={
                "X-Search-History-Id": str(new_id),
                "X-Row-Count": str(int(idx.size)),
                "Content-Disposition": f'attachment; filename="delta-{new_id}.csv"',
            },
        )
