"""`AdminControl`: the HTTP client of a running sandbox's ``/_sandbox/`` control plane.

The routes it calls are in `scoutframe.sandbox.admin_routes`; none of them exists in the real
API.
"""

from __future__ import annotations

from typing import Any

import requests

from scoutframe.sandbox.constants import ADMIN_HEADER

__all__ = ["AdminControl"]


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
            method,
            f"{self.url}/_sandbox/{path}",
            json=body,
            timeout=self._timeout,
            headers={ADMIN_HEADER: self._token},
        )
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
        self,
        *,
        min_polls: int | None = None,
        delay_seconds: float | None = None,
        processing_seconds: float | None = None,
    ) -> dict[str, Any]:
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
        given = (
            ("min_polls", min_polls),
            ("delay_seconds", delay_seconds),
            ("processing_seconds", processing_seconds),
        )
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
