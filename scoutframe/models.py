"""Typed records of API answers: frozen dataclasses built leniently from JSON.

Each record reads the fields it knows (under the documented name or a known live spelling),
tolerates missing optional ones, and keeps every other key in ``extra``, so a new field on the
server never breaks the client.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

from ._redact import MASK
from .errors import APIError

__all__ = ["ApiKey", "LoginUser", "Profile", "SearchPage", "parse_datetime"]


def parse_datetime(value: Any) -> datetime | None:
    """Parse an ISO-8601 timestamp (``Z`` or offset; naive taken as UTC); ``None`` if absent."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), tz=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _int(value: Any, default: int | None = None) -> int | None:
    if value is None or isinstance(value, bool):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _mapping(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise APIError(200, f"expected a JSON object for {what}, got {type(data).__name__}",
                       data, hint="Check that base_url points at the SphereScout API")  # fmt: skip
    return data


def _extra(data: Mapping[str, Any], known: set[str]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in known}


@dataclass(frozen=True)
class SearchPage:
    """One answer of ``/api/companies``: a preview (<= 10) or a page (50) of contacts.

    Attributes
    ----------
    total_count
        Contacts matching the filters (``totalCount``).
    search_id
        Id of this query for this account (``None`` on the public endpoint).
    contacts
        The contacts as the API sent them (raw dicts; emails are masked in searches).
    page, num_pages
        Page number and page count in paged mode, else as sent (may be ``None``).
    extra
        Keys the client does not know.
    """

    total_count: int
    search_id: str | None
    contacts: list[dict[str, Any]]
    page: int | None = None
    num_pages: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    _KNOWN = frozenset(
        {"totalCount", "total_count", "count", "search_id", "searchId", "preview", "results"}
        | {"contacts", "page", "num_pages", "numPages"}
    )

    @classmethod
    def from_json(cls, data: Any) -> Self:
        """Build from the decoded JSON answer."""
        data = _mapping(data, "a search answer")
        contacts: Any = next(
            (data[k] for k in ("preview", "results", "contacts") if isinstance(data.get(k), list)),
            [],
        )
        total = next((data[k] for k in ("totalCount", "total_count", "count") if k in data), None)
        search_id = data.get("search_id", data.get("searchId"))
        return cls(
            total_count=_int(total, len(contacts)) or 0,
            search_id=_str(search_id),
            contacts=[dict(c) for c in contacts if isinstance(c, Mapping)],
            page=_int(data.get("page")),
            num_pages=_int(data.get("num_pages", data.get("numPages"))),
            extra=_extra(data, set(cls._KNOWN)),
        )

    def __len__(self) -> int:
        return len(self.contacts)


@dataclass(frozen=True)
class Profile:
    """The account (``/api/user/profile``); ``credits`` is the remaining balance."""

    id: int | None
    email: str | None
    username: str | None
    credits: int
    credits_used: int | None = None
    plan: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    date_joined: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Self:
        """Build from the decoded JSON answer."""
        data = _mapping(data, "the profile")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(
            id=_int(data.get("id")),
            email=_str(data.get("email")),
            username=_str(data.get("username")),
            credits=_int(data.get("credits"), 0) or 0,
            credits_used=_int(data.get("credits_used")),
            plan=_str(data.get("plan")),
            first_name=_str(data.get("first_name")),
            last_name=_str(data.get("last_name")),
            date_joined=parse_datetime(data.get("date_joined")),
            extra=_extra(data, names),
        )


@dataclass(frozen=True)
class ApiKey:
    """An API key of the account. ``key`` is set only in the answer that created it.

    The full key is never shown by ``repr``; read ``.key`` once and store it safely.
    """

    id: int | None
    name: str
    token_key: str | None
    created: datetime | None = None
    expiry: datetime | None = None
    key: str | None = field(default=None, repr=False)
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Self:
        """Build from one decoded JSON item."""
        data = _mapping(data, "an API key")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(
            id=_int(data.get("id")),
            name=str(data.get("name") or ""),
            token_key=_str(data.get("token_key", data.get("prefix"))),
            created=parse_datetime(data.get("created", data.get("created_at"))),
            expiry=parse_datetime(data.get("expiry", data.get("expires_at"))),
            key=_str(data.get("key")),
            extra=_extra(data, names | {"prefix", "created_at", "expires_at"}),
        )

    def __repr__(self) -> str:
        shown = f", key={MASK!r}" if self.key else ""
        return (
            f"ApiKey(id={self.id!r}, name={self.name!r}, token_key={self.token_key!r}, "
            f"created={self.created!r}, expiry={self.expiry!r}{shown})"
        )


@dataclass(frozen=True)
class LoginUser:
    """The ``user`` object of a login answer."""

    id: int | None
    email: str | None
    username: str | None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Self:
        """Build from the decoded JSON object."""
        data = _mapping(data, "the login user")
        return cls(
            id=_int(data.get("id")),
            email=_str(data.get("email")),
            username=_str(data.get("username")),
            extra=_extra(data, {"id", "email", "username"}),
        )
