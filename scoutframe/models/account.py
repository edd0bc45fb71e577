"""Records of the account and search answers: search pages, the profile, API keys, login."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from .._redact import MASK
from ..errors import APIError
from ._coerce import extra_fields, optional_int, optional_str, parse_datetime, require_mapping
from ._display import card, number

__all__ = ["LIST_FIELDS", "ApiKey", "LoginUser", "Profile", "SearchPage", "normalise_contact"]


#: Contact fields that are lists (the live API sends ``phone`` as a plain string too).
LIST_FIELDS = frozenset({"email", "phone", "categories"})


def normalise_contact(contact: Mapping[str, Any]) -> dict[str, Any]:
    """Return a contact as the frames hold it: list fields as lists, empty strings as ``None``.

    The live API sends ``phone`` as a plain string when there is one number, and empty strings
    for missing social links; ``client.search`` and ``read_spherescout`` agree on both.
    """
    out: dict[str, Any] = {}
    for key, value in contact.items():
        if key in LIST_FIELDS:
            if value is None or value == "":
                value = []
            elif isinstance(value, str):
                value = [value]
            elif isinstance(value, list):
                value = [v for v in value if v is not None and v != ""]
        elif value == "":
            value = None
        out[str(key)] = value
    return out


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
        """Build from the decoded JSON answer.

        Raises
        ------
        APIError
            The answer is not a search answer: no contact list, or no whole ``totalCount``
            (an empty result must not be made up from a malformed answer).
        """
        data = require_mapping(data, "a search answer")
        key = next((k for k in ("preview", "results", "contacts") if k in data), None)
        contacts: Any = data.get(key) if key is not None else None
        total = optional_int(
            next((data[k] for k in ("totalCount", "total_count", "count") if k in data), None)
        )  # a numeric string is read leniently; anything else is no count
        if not isinstance(contacts, list) or total is None or total < 0:
            raise APIError(
                200,
                "the search answer is malformed: expected 'totalCount' (a whole number) and "
                f"'preview' (a list of contacts), got keys {sorted(map(str, data))[:8]}",
                dict(data),
                hint="Check that base_url points at the SphereScout API; if it does, the "
                "server sent a broken answer: try again later",
            )
        search_id = data.get("search_id", data.get("searchId"))
        return cls(
            total_count=total,
            search_id=optional_str(search_id),
            contacts=[normalise_contact(c) for c in contacts if isinstance(c, Mapping)],
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
        credits = optional_int(data.get("credits"))
        if credits is None:
            # The balance decides whether a charging call took effect: never guess it.
            raise APIError(
                200,
                f"the profile answer has no 'credits' balance (keys {sorted(data)[:8]})",
                dict(data),
                hint="Check that base_url points at the SphereScout API",
            )
        return cls(
            id=optional_int(data.get("id")),
            email=optional_str(data.get("email")),
            username=optional_str(data.get("username")),
            credits=credits,
            credits_used=optional_int(data.get("credits_used")),
            plan=optional_str(data.get("plan")),
            first_name=optional_str(data.get("first_name")),
            last_name=optional_str(data.get("last_name")),
            date_joined=parse_datetime(data.get("date_joined")),
            extra=extra_fields(data, names),
        )

    def _repr_html_(self) -> str:
        return card(
            f"SphereScout account {self.email or self.username or self.id}",
            [
                ("credits left", number(self.credits)),
                ("credits used", number(self.credits_used)),
                ("plan", self.plan),
                ("joined", self.date_joined),
            ],
            "Searches, previews and reads by pages are free; an export costs 1 credit a contact.",
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
