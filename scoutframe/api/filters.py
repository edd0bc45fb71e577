"""Search filters: one immutable, hashable value with a canonical form.

``Filters`` accepts Python-friendly input (``countries="fr"``, ``category="Plumber"``,
``level3_locations=["Paris", 1000123]``, ``email=True``) and normalises it at once, so two
filters that mean the same query are equal, hash alike and share :attr:`Filters.cache_key`.
Names are turned into ids by :meth:`Filters.resolve`, through the reference endpoints (cached
on the client); a name that matches nothing raises :class:`~scoutframe.errors.FilterError`
listing the closest valid names.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import numbers
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from ..errors import FilterError, NotFoundError

if TYPE_CHECKING:
    import pandas as pd

    from .client import Client

__all__ = ["Filters"]

LOCATION_FIELDS = ("level1_locations", "level2_locations", "level3_locations")
#: The contact-method filters (``True``: has it, ``False``: lacks it), as the API names them.
CONTACT_METHODS = ("email", "phone_number", "website", "instagram", "facebook")
#: Every true/false filter: the contact methods, and whether only the main category counts.
#: The CLI's flags, the search form's toggles and the generated code all come from here.
BOOLEAN_FIELDS = (*CONTACT_METHODS, "main_activity_only")
ID_FIELDS = ("category", *LOCATION_FIELDS)

# Spellings accepted as keywords, mapped to the field they mean.
_ALIASES = {
    "country": "countries",
    "categories": "category",
    "category_id": "category",
    "category_ids": "category",
    "phone": "phone_number",
    "phones": "phone_number",
    "emails": "email",
    "level1_location": "level1_locations",
    "level2_location": "level2_locations",
    "level3_location": "level3_locations",
    "region": "level1_locations",
    "regions": "level1_locations",
    "city": "level3_locations",
    "cities": "level3_locations",
}

IdOrName = int | str


def _plain(text: str) -> str:
    """Case- and accent-insensitive form of a name."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


def _fold(value: IdOrName) -> IdOrName:
    """Names without case; ISO codes stay upper case."""
    if isinstance(value, str) and not (len(value) == 2 and value.isupper()):
        return value.casefold()
    return value


def _sort_key(value: IdOrName) -> tuple[int, int, str]:
    if isinstance(value, int):
        return (0, value, "")
    return (1, 0, value.casefold())


@dataclass(frozen=True, eq=False)
class Filters:
    """The filters of a contact search.

    Parameters
    ----------
    countries
        ISO 3166-1 alpha-2 codes (any case), or country names (resolved); one or several.
    category
        Category ids or names (``"Plumber"``, ``"gcid:plumber"``); one or several.
    level1_locations, level2_locations, level3_locations
        Region / county-department / city ids or names; one or several.
    email, phone_number, website, instagram, facebook
        ``True``: only contacts with it; ``False``: only contacts without; ``None``: either.
    main_activity_only
        Match only the main category of each business.

    Examples
    --------
    >>> Filters(countries="fr", category=["Plumber", 8059], email=True).cache_key
    '{"category":[8059,"plumber"],"countries":["FR"],"email":true}'
    >>> Filters(countries=["BE", "FR"]) == Filters(countries="fr,be")
    True
    """

    countries: tuple[str, ...] = ()
    category: tuple[IdOrName, ...] = ()
    level1_locations: tuple[IdOrName, ...] = ()
    level2_locations: tuple[IdOrName, ...] = ()
    level3_locations: tuple[IdOrName, ...] = ()
    email: bool | None = None
    phone_number: bool | None = None
    website: bool | None = None
    instagram: bool | None = None
    facebook: bool | None = None
    main_activity_only: bool | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "countries", _countries(self.countries))
        for name in ID_FIELDS:
            set_(self, name, _ids_or_names(name, getattr(self, name)))
        for name in BOOLEAN_FIELDS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                raise FilterError(
                    f"{name} must be True, False or None, not {value!r}: e.g. {name}=True keeps "
                    f"only contacts with one, {name}=False only those without"
                )

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_any(cls, value: Filters | Mapping[str, Any] | None = None, /, **kwargs: Any) -> Self:
        """Build filters from a ``Filters``, a mapping, or keywords (merged, keywords win).

        Accepts the aliases ``country``, ``categories``, ``phone``, ``level1_location``, ...

        Raises
        ------
        FilterError
            For an unknown keyword (with the closest valid one) or a wrongly typed value.
        """
        merged: dict[str, Any] = {}
        if isinstance(value, Filters):
            merged.update(value._fields())
        elif isinstance(value, Mapping):
            merged.update(_canonical_keys(value))
        elif value is not None:
            raise FilterError(
                f"filters must be a Filters, a dict or None, not {type(value).__name__}; e.g. "
                "Filters(countries='FR', category='Plumber')"
            )
        merged.update(_canonical_keys(kwargs))
        return cls(**merged)

    def replace(self, **changes: Any) -> Self:
        """Return a copy with some fields changed (aliases accepted)."""
        return dataclasses.replace(self, **_canonical_keys(changes))

    def _fields(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    # -- canonical form ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Return the fields that are set, as JSON-ready values (lists, booleans)."""
        out: dict[str, Any] = {}
        for name, value in self._fields().items():
            if isinstance(value, tuple):
                if value:
                    out[name] = list(value)
            elif value is not None:
                out[name] = value
        return out

    @property
    def cache_key(self) -> str:
        """A canonical string: equal for filters that mean the same query, in any order.

        Names are compared without case (``"plumber"`` and ``"Plumber"`` mean the same).
        """
        canonical = {
            name: sorted({_fold(v) for v in value}, key=_sort_key)
            if isinstance(value, list)
            else value
            for name, value in self.to_dict().items()
        }
        return json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Filters):
            return NotImplemented
        return self.cache_key == other.cache_key

    def __hash__(self) -> int:
        return hash(self.cache_key)

    def is_resolved(self) -> bool:
        """Whether every category and location is an id and every country a code.

        This says nothing about whether those ids and codes exist: :meth:`resolve` checks
        that (``Client.search`` always runs it).
        """
        return all(isinstance(v, int) for name in ID_FIELDS for v in getattr(self, name)) and all(
            len(c) == 2 and c.isalpha() for c in self.countries
        )

    def is_empty(self) -> bool:
        """Whether no filter is set."""
        return not self.to_dict()

    def to_params(self) -> list[tuple[str, str]]:
        """Return the API query pairs (repeated keys, ``"true"``/``"false"``).

        Raises
        ------
        FilterError
            When names are not resolved yet: call :meth:`resolve` first.
        """
        if not self.is_resolved():
            names = [
                v
                for n in (*ID_FIELDS, "countries")
                for v in getattr(self, n)
                if isinstance(v, str) and not (n == "countries" and len(v) == 2)
            ]
            raise FilterError(
                f"these filters hold names ({', '.join(map(repr, names))}); turn them into ids "
                "with filters.resolve(client) first"
            )
        pairs: list[tuple[str, str]] = [("countries", c) for c in self.countries]
        for name in ID_FIELDS:
            pairs.extend((name, str(v)) for v in getattr(self, name))
        for name in BOOLEAN_FIELDS:
            value = getattr(self, name)
            if value is not None:
                pairs.append((name, "true" if value else "false"))
        return pairs

    # -- resolution --------------------------------------------------------------------------
    def resolve(self, client: Client) -> Self:
        """Return these filters with every name replaced by its id.

        Country names become codes and codes are checked against ``/api/locations/countries``;
        category names and ids are checked against ``/api/categories``; location names are
        looked up with ``/api/locations/search`` (within the given countries). The reference
        lists are cached on the client.

        Raises
        ------
        FilterError
            When a name matches nothing (with the closest valid names) or is ambiguous.
        """
        if self.is_empty():
            return self
        changes: dict[str, Any] = {}
        if self.countries:
            try:
                table: pd.DataFrame | None = client.countries()
            except NotFoundError:  # the country list is not part of the live API's contract
                table = None
            changes["countries"] = _resolve_countries(self.countries, table)
        if self.category:
            changes["category"] = _resolve_categories(self.category, client.categories())
        countries = changes.get("countries", self.countries)
        for level, name in enumerate(LOCATION_FIELDS, start=1):
            values = getattr(self, name)
            if any(isinstance(v, str) for v in values):
                changes[name] = tuple(
                    v if isinstance(v, int) else _resolve_location(client, v, level, countries)
                    for v in values
                )
        return dataclasses.replace(self, **changes) if changes else self

    def __repr__(self) -> str:
        inner = ", ".join(
            f"{k}={tuple(v) if isinstance(v, list) else v!r}" for k, v in self.to_dict().items()
        )
        return f"Filters({inner})"


def _canonical_keys(values: Mapping[str, Any]) -> dict[str, Any]:
    fields = {f.name for f in dataclasses.fields(Filters)}
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = key if key in fields else _ALIASES.get(str(key).lower())
        if name is None:
            close = difflib.get_close_matches(str(key), sorted(fields | set(_ALIASES)), n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise FilterError(
                f"Unknown filter {key!r}.{hint} Valid filters: {', '.join(sorted(fields))}"
            )
        out[name] = value
    return out


def _as_items(name: str, value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        return [value]  # one value; its type is checked by the caller
    if isinstance(value, Mapping):
        raise FilterError(
            f"{name} must be a value or a list of values, not {type(value).__name__}: "
            f"e.g. {name}=['A', 'B']"
        )
    return list(value)


def _countries(value: Any) -> tuple[str, ...]:
    codes: set[str] = set()
    for item in _as_items("countries", value):
        if not isinstance(item, str):
            raise FilterError(
                f"countries must be ISO codes or names as strings, not {item!r}: "
                "e.g. countries='FR' or countries=['FR', 'BE']"
            )
        parts = [part.strip() for part in item.split(",")]
        if not any(parts):
            raise FilterError(
                f"countries got an empty value {item!r}: it would widen the search to every "
                "country. Give ISO codes (countries='FR') or leave the filter out"
            )
        for part in parts:
            if part:
                codes.add(part.upper() if len(part) == 2 else part)
    return tuple(sorted(codes, key=str.casefold))


def _ids_or_names(name: str, value: Any) -> tuple[IdOrName, ...]:
    seen: dict[Any, IdOrName] = {}
    for item in _as_items(name, value):
        if isinstance(item, numbers.Integral) and not isinstance(item, bool):
            item = int(item)  # NumPy and pandas integers, e.g. from client.categories()["id"]
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise FilterError(
                f"{name} values must be integer ids or names, not {item!r}: "
                f"e.g. {name}=[8059, 'Plumber']"
            )
        if isinstance(item, str):
            item = item.strip()
            if not item:
                raise FilterError(
                    f"{name} got an empty name: it would be dropped and widen the search (and "
                    f"the cost of an export). Give a name or an id, or leave {name} out"
                )
            if item.isdigit():
                item = int(item)
        if isinstance(item, int) and item <= 0:
            lookup = "categories('name')" if name == "category" else "locations.search('name')"
            raise FilterError(
                f"{name} ids are positive integers, not {item}; look them up with client.{lookup}"
            )
        # Numpy integers and the like arrive as int subclasses: store plain ints.
        item = int(item) if isinstance(item, int) else item
        seen.setdefault(item if isinstance(item, int) else item.casefold(), item)
    return tuple(sorted(seen.values(), key=_sort_key))


def _suggest(what: str, given: str, names: Iterable[str], *, where: str = "") -> FilterError:
    pool = sorted(set(names))
    lowered = {n.casefold(): n for n in pool}
    close = [
        lowered[c]
        for c in difflib.get_close_matches(given.casefold(), list(lowered), n=5, cutoff=0.6)
    ]
    if not close:
        close = [n for n in pool if given.casefold() in n.casefold()][:5]
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return FilterError(f"Unknown {what} {given!r}{where}.{hint}")


def _resolve_countries(values: tuple[str, ...], table: pd.DataFrame | None) -> tuple[str, ...]:
    if table is None:
        names = [v for v in values if not (len(v) == 2 and v.isalpha())]
        if names:
            raise FilterError(
                f"This server has no country list to look {', '.join(map(repr, names))} up in; "
                "give ISO 3166-1 alpha-2 codes such as 'FR'"
            )
        return tuple(sorted({v.upper() for v in values}))
    codes = {str(c).upper(): str(n) for c, n in zip(table["code"], table["name"], strict=True)}
    by_name = {n.casefold(): c for c, n in codes.items()}
    out: list[str] = []
    for value in values:
        if value.upper() in codes:
            out.append(value.upper())
        elif value.casefold() in by_name:
            out.append(by_name[value.casefold()])
        elif len(value) == 2 and value.isalpha():  # a code: name-likeness helps nobody here
            known = sorted(codes)
            listed = ", ".join(known[:25]) + (", ..." if len(known) > 25 else "")
            raise FilterError(
                f"Unknown country {value!r}; this server has contacts in: {listed}. "
                "See client.countries() for the names"
            )
        else:
            raise _suggest("country", value, [*codes, *codes.values()])
    return tuple(sorted(set(out)))


def _resolve_categories(values: tuple[IdOrName, ...], table: pd.DataFrame) -> tuple[IdOrName, ...]:
    ids = {int(i) for i in table["id"]}
    by_name: dict[str, int] = {}
    for cid, name, gcid in zip(table["id"], table["name"], table["gcid"], strict=True):
        by_name.setdefault(str(name).casefold(), int(cid))
        if isinstance(gcid, str) and gcid:
            by_name.setdefault(gcid.casefold(), int(cid))
            by_name.setdefault(gcid.split(":", 1)[-1].replace("_", " ").casefold(), int(cid))
    plain_names = {_plain(str(n)): int(i) for i, n in zip(table["id"], table["name"], strict=True)}
    out: list[int] = []
    for value in values:
        if isinstance(value, int):
            if value not in ids:
                raise FilterError(
                    f"Unknown category id {value}; look ids up with client.categories('name')"
                )
            out.append(value)
        elif value.casefold() in by_name:
            out.append(by_name[value.casefold()])
        elif _plain(value) in plain_names:
            out.append(plain_names[_plain(value)])
        else:
            raise _suggest("category", value, [str(n) for n in table["name"]])
    return tuple(sorted(set(out)))


def _resolve_location(client: Client, name: str, level: int, countries: tuple[str, ...]) -> int:
    wanted = f"level{level}"
    candidates: list[dict[str, Any]] = []
    for country in countries or (None,):
        found = client.locations.search(name, country=country)
        candidates.extend({str(k): v for k, v in row.items()} for row in found.to_dict("records"))
    same_level = [c for c in candidates if str(c.get("type")) == wanted]
    matches = [c for c in same_level if str(c.get("name", "")).casefold() == name.casefold()]
    if not matches:  # "Ile-de-France" for "Île-de-France"
        matches = [c for c in same_level if _plain(str(c.get("name", ""))) == _plain(name)]
    ids = sorted({int(c["id"]) for c in matches})
    if len(ids) == 1:
        return ids[0]
    if len(ids) > 1:
        listed = ", ".join(f"{c['name']} ({c.get('country')}, id {c['id']})" for c in matches[:6])
        raise FilterError(
            f"Location {name!r} is ambiguous at {wanted}: {listed}. Pass the id, or give "
            "countries= to narrow it down"
        )
    where = f" in {', '.join(countries)}" if countries else ""
    others = [f"{c['name']} ({c.get('type')})" for c in candidates if c not in same_level]
    hint = f" It exists at another level: {', '.join(others[:5])}." if others else ""
    names = [str(c.get("name")) for c in same_level]
    suggestion = _suggest(f"{wanted} location", name, names, where=where).message
    raise FilterError(f"{suggestion}{hint}")
