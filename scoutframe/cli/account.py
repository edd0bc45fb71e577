"""``scoutframe profile`` and ``scoutframe keys list | create | revoke``: the account."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ._run import open_client, run, say
from ._show import add_json_flag, print_fields, print_json, print_table

if TYPE_CHECKING:
    from ..models import ApiKey

__all__ = ["keys_main", "profile_main"]

_KEY_COLUMNS = ("id", "name", "prefix", "created", "expiry")
_STORE_IT = (
    "this is the only time the full key is shown: store it now (a password manager, "
    "or SPHERESCOUT_API_KEY in your environment); revoke it with `scoutframe keys "
    "revoke {id}`"
)


def profile_main(argv: list[str]) -> int:
    """Run ``scoutframe profile``: the account and its credits.

    Parameters
    ----------
    argv
        The arguments after ``profile``.

    Returns
    -------
    int
        The exit status.
    """
    p = argparse.ArgumentParser(
        prog="scoutframe profile",
        description="Show the account: e-mail, plan, credits left, and "
        "the API origin and default budget in use.",
    )
    add_json_flag(p)
    options = p.parse_args(argv)
    return run("profile", lambda: _profile(options))


def _profile(options: argparse.Namespace) -> int:
    with open_client() as client:
        profile = client.profile()
        fields: dict[str, Any] = {
            "id": profile.id,
            "email": profile.email,
            "username": profile.username,
            "first_name": profile.first_name,
            "last_name": profile.last_name,
            "plan": profile.plan,
            "credits": profile.credits,
            "credits_used": profile.credits_used,
            "date_joined": profile.date_joined,
            "api": client.base_url,
            "default_budget": client.max_credits,
        }
    if options.json:
        print_json(fields)
        return 0
    shown = {name: value for name, value in fields.items() if value not in (None, "")}
    if isinstance(shown.get("credits"), int):
        shown["credits"] = f"{shown['credits']:,}"
    shown["default_budget"] = (
        f"{client.max_credits:,} credits (SCOUTFRAME_MAX_CREDITS or config)"
        if client.max_credits is not None
        else "none: only --method export spends"
    )
    print_fields(shown)
    return 0


def _expiry(text: str) -> datetime:
    """Parse an ISO-8601 date or time; without a zone it is UTC."""
    moment = datetime.fromisoformat(text.strip())
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


_expiry.__name__ = "ISO-8601 date or time (e.g. 2030-01-31 or 2030-01-31T12:00Z)"


def _key_id(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


_key_id.__name__ = "key id (a whole number; see `scoutframe keys list`)"


def keys_parser() -> argparse.ArgumentParser:
    """Return the parser of ``scoutframe keys``."""
    p = argparse.ArgumentParser(
        prog="scoutframe keys",
        description="The account's API keys. Only a key's prefix is "
        "ever shown again after it was created.",
    )
    sub = p.add_subparsers(dest="action", required=True, metavar="action")
    listing = sub.add_parser(
        "list",
        help="list the keys (id, name, prefix, dates)",
        description="List the account's API keys.",
    )
    add_json_flag(listing)
    create = sub.add_parser(
        "create",
        help="create a key and print it, once",
        description="Create an API key and print it once: store it at "
        "once, the server never shows it again.",
    )
    create.add_argument("--name", default=None, help="a label for the key")
    create.add_argument(
        "--expiry",
        type=_expiry,
        default=None,
        metavar="ISO",
        help="when it stops working (ISO-8601; UTC without a zone); default: never",
    )
    add_json_flag(create)
    revoke = sub.add_parser(
        "revoke",
        help="revoke a key by id (it stops working at once)",
        description="Revoke an API key: it stops working at once.",
    )
    revoke.add_argument(
        "key_id",
        type=_key_id,
        metavar="KEY_ID",
        help="the key's id, as `scoutframe keys list` shows it",
    )
    add_json_flag(revoke)
    return p


def keys_main(argv: list[str]) -> int:
    """Run ``scoutframe keys list | create | revoke``.

    Parameters
    ----------
    argv
        The arguments after ``keys``.

    Returns
    -------
    int
        The exit status.
    """
    options = keys_parser().parse_args(argv)
    actions = {"list": _list, "create": _create, "revoke": _revoke}
    return run(f"keys {options.action}", lambda: actions[options.action](options))


def _key_fields(key: ApiKey) -> dict[str, Any]:
    """Return a key as shown: never its full value (``key``), which only ``create`` prints."""
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.token_key,
        "created": key.created,
        "expiry": key.expiry,
    }


def _list(options: argparse.Namespace) -> int:
    with open_client() as client:
        keys = client.api_keys.list()
    rows = [_key_fields(key) for key in keys]
    if options.json:
        print_json(rows)
    else:
        print_table(rows, _KEY_COLUMNS, empty="no API keys")
    return 0


def _create(options: argparse.Namespace) -> int:
    with open_client() as client:
        key = client.api_keys.create(name=options.name, expiry=options.expiry)
    fields = {**_key_fields(key), "key": key.key}
    if options.json:
        print_json(fields)
    else:
        expires = "never" if key.expiry is None else key.expiry.isoformat()
        print(f"created API key {key.id} {key.name!r} (prefix {key.token_key}, expires {expires}):")
        print(key.key)
    say("keys create", f"note: {_STORE_IT.format(id=key.id)}")
    return 0


def _revoke(options: argparse.Namespace) -> int:
    with open_client() as client:
        client.api_keys.revoke(options.key_id)
    if options.json:
        print_json({"revoked": options.key_id})
    else:
        print(f"revoked API key {options.key_id}")
    return 0
