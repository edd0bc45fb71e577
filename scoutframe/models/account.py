"""Records of the account and search answers: search pages, the profile, API keys, login."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from .._redact import MASK
from ._coerce import extra_fields, optional_int, optional_str, parse_datetime, require_mapping

__all__ = ["ApiKey", "LoginUser", "Profile", "SearchPage"]


def _count(value: object, default: int) -> int:
    number = optional_int(value)
    return default if number is None else number


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
        data = require_mapping(data, "a search answer")
        contacts: Any = next(
            (data[k] for k in ("preview", "results", "contacts") if isinstance(data.get(k), list)),
            [],
        )
        total = next((data[k] for k in ("totalCount", "total_count", "count") if k in data), None)
        search_id = data.get("search_id", data.get("searchId"))
        return cls(
            total_count=_count(total, len(contacts)),
            search_id=optional_str(search_id),
            contacts=[dict(c) for c in contacts if isinstance(c, Mapping)],
            page=optional_int(data.get("page")),
            num_pages=optional_int(data.get("num_pages", data.get("numPages"))),
            extra=extra_fields(data, set(cls._KNOWN)),
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
        data = require_mapping(data, "the profile")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(
            id=optional_int(data.get("id")),
            email=optional_str(data.get("email")),
            username=optional_str(data.get("username")),
            credits=optional_int(data.get("credits")) or 0,
            credits_used=optional_int(data.get("credits_used")),
            plan=optional_str(data.get("plan")),
            first_name=optional_str(data.get("first_name")),
            last_name=optional_str(data.get("last_name")),
            date_joined=parse_datetime(data.get("date_joined")),
            extra=extra_fields(data, names),
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
        data = require_mapping(data, "an API key")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(
            id=optional_int(data.get("id")),
            name=str(data.get("name") or ""),
            token_key=optional_str(data.get("token_key", data.get("prefix"))),
            created=parse_datetime(data.get("created", data.get("created_at"))),
            expiry=parse_datetime(data.get("expiry", data.get("expires_at"))),
            key=optional_str(data.get("key")),
            extra=extra_fields(data, names | {"prefix", "created_at", "expires_at"}),
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
        data = require_mapping(data, "the login user")
        return cls(
            id=optional_int(data.get("id")),
            email=optional_str(data.get("email")),
            username=optional_str(data.get("username")),
            extra=extra_fields(data, {"id", "email", "username"}),
        )
