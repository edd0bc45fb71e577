"""API key management: ``client.api_keys`` (list, create, revoke)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from ...errors import ConfigurationError
from ...models import ApiKey
from ._frames import require_list

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["ApiKeys"]

_PATH = "/api/user/api-keys"


class ApiKeys:
    """The account's API keys. The full key is returned once, by :meth:`create`."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def __repr__(self) -> str:
        return "ApiKeys()"

    def list(self) -> list[ApiKey]:
        """Return the account's keys (prefix ``token_key`` only, never the full key)."""
        data = self._client.transport.get_json(_PATH)
        key = "results" if isinstance(data, dict) else None
        return [ApiKey.from_json(item) for item in require_list(data, "API keys", key=key)]

    def create(self, name: str | None = None, expiry: datetime | str | None = None) -> ApiKey:
        """Create a key; the returned :class:`~scoutframe.models.ApiKey` has ``.key`` set.

        Parameters
        ----------
        name
            A label for the key.
        expiry
            When it stops working (an aware datetime or an ISO-8601 string); ``None``: never.

        Returns
        -------
        ApiKey
            The new key, with the full ``key``: the only time the server shows it.
        """
        body: dict[str, object] = {}
        if name is not None:
            if not isinstance(name, str):
                raise ConfigurationError(f"name must be a string, not {type(name).__name__}")
            body["name"] = name
        if expiry is not None:
            if isinstance(expiry, datetime):
                if expiry.tzinfo is None:
                    raise ConfigurationError(
                        "expiry must be timezone-aware, e.g. datetime(2030, 1, 1, tzinfo=UTC)"
                    )
                body["expiry"] = expiry.isoformat()
            elif isinstance(expiry, str):
                body["expiry"] = expiry
            else:
                raise ConfigurationError(
                    f"expiry must be a datetime or an ISO-8601 string, not {type(expiry).__name__}"
                )
        response = self._client.transport.request("POST", _PATH, json=body)
        return ApiKey.from_json(self._client.transport.json_of(response))

    def revoke(self, key_id: int | ApiKey) -> None:
        """Revoke a key (by id or :class:`~scoutframe.models.ApiKey`); it stops working at once."""
        ident = key_id.id if isinstance(key_id, ApiKey) else key_id
        if isinstance(ident, bool) or not isinstance(ident, int):
            raise ConfigurationError(f"key_id must be an integer id, not {ident!r}")
        self._client.transport.request("DELETE", f"{_PATH}/{ident}")
