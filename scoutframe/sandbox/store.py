"""In-memory contacts index: filters, masks, counts, pages, changes over time.

Contacts live in one pyarrow table sorted by ``place_id`` with numpy side arrays (integer
codes, boolean "has" masks) so a filtered count is a handful of vectorised operations.
Matching row indices are cached per canonical filter set and dropped when contacts change.
Changes made through the control plane (added and re-collected contacts) are kept in an
overlay Parquet file next to the dataset so they survive a restart.
"""

from __future__ import annotations

import difflib
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from scoutframe.sandbox.atomic import atomic_write
from scoutframe.sandbox.columns import CONTACT_COLUMNS

__all__ = [
    "Catalog",
    "ContactStore",
    "FilterValidationError",
    "SearchFilters",
    "parse_bool",
    "parse_filters",
]

_BOOL_FILTERS = ("email", "phone_number", "website", "instagram", "facebook")
_LEVEL_KEYS = ("level1_locations", "level2_locations", "level3_locations")
_NO_MATCH = -1  # stands for an unknown or malformed id in the live flavour: matches nothing
_CACHE_SIZE = 256

Index = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]


class FilterValidationError(ValueError):
    """Query parameters that do not form a valid search, as DRF-style field errors."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("invalid filters: " + ", ".join(sorted(errors)))
        self.errors = errors


@dataclass(frozen=True)
class SearchFilters:
    """A canonical filter set: sorted, de-duplicated values, so equal searches compare equal."""

    countries: tuple[str, ...] = ()
    category: tuple[int, ...] = ()
    level1_locations: tuple[int, ...] = ()
    level2_locations: tuple[int, ...] = ()
    level3_locations: tuple[int, ...] = ()
    email: bool | None = None
    phone_number: bool | None = None
    website: bool | None = None
    instagram: bool | None = None
    facebook: bool | None = None
    main_activity_only: bool = False

    def to_json(self) -> dict[str, Any]:
        """Only the filters that are set, lists for multi-valued ones."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if value in ((), None) or (name == "main_activity_only" and not value):
                continue
            out[name] = list(value) if isinstance(value, tuple) else value
        return out

    def canonical(self) -> str:
        """Return a stable string for hashing (search ids, cache keys)."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchFilters:
        """Inverse of `to_json`."""
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            kwargs[name] = tuple(value) if isinstance(value, list) else value
        return cls(**kwargs)


@dataclass
class Catalog:
    """Reference data of the dataset, indexed for validation and look-ups."""

    countries: list[dict[str, Any]]
    categories: list[dict[str, Any]]
    locations: list[dict[str, Any]]
    country_codes: frozenset[str] = field(init=False)
    category_ids: frozenset[int] = field(init=False)
    location_ids: dict[str, frozenset[int]] = field(init=False)

    def __post_init__(self) -> None:
        self.country_codes = frozenset(c["code"] for c in self.countries)
        self.category_ids = frozenset(int(c["id"]) for c in self.categories)
        by_level: dict[str, set[int]] = {"level1": set(), "level2": set(), "level3": set()}
        for loc in self.locations:
            by_level.setdefault(loc["type"], set()).add(int(loc["id"]))
        self.location_ids = {k: frozenset(v) for k, v in by_level.items()}

    @classmethod
    def from_dataset(cls, dataset: Any) -> Catalog:
        """Build from a `Dataset` (its countries, categories and locations tables)."""
        return cls(
            countries=dataset.countries.select(["code", "name"]).to_pylist(),
            categories=dataset.categories.to_pylist(),
            locations=dataset.locations.to_pylist(),
        )

    def search_locations(self, q: str, country: str | None) -> list[dict[str, Any]]:
        """Fuzzy location search: best matches first, at most 10 per level."""
        needle = _fold(q)
        if not needle:
            return []
        scored: dict[str, list[tuple[int, str, dict[str, Any]]]] = {}
        for loc in self.locations:
            if country and loc["country"] != country:
                continue
            rank = match_rank(needle, _fold(loc["name"]))
            if rank is not None:
                scored.setdefault(loc["type"], []).append((rank, loc["name"], loc))
        out: list[dict[str, Any]] = []
        for level in ("level1", "level2", "level3"):
            best = sorted(scored.get(level, []), key=lambda item: (item[0], item[1]))[:10]
            out.extend(location_item(loc) for _, _, loc in best)
        return out


def location_item(loc: dict[str, Any]) -> dict[str, Any]:
    """Return the contract's location item."""
    parent = loc.get("parent_id")
    return {
        "id": int(loc["id"]),
        "name": loc["name"],
        "type": loc["type"],
        "country": loc["country"],
        "parent_id": None if parent is None else int(parent),
    }


def _fold(text: str) -> str:
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold().strip()


def match_rank(needle: str, hay: str) -> int | None:
    """Rank of a fuzzy match (1 best) or None: exact, prefix, word prefix, substring, close."""
    if not hay:
        return None
    if hay == needle:
        return 1
    if hay.startswith(needle):
        return 2
    if any(word.startswith(needle) for word in hay.replace("-", " ").split()):
        return 3
    if needle in hay:
        return 4
    if len(needle) >= 4 and difflib.SequenceMatcher(None, needle, hay).ratio() >= 0.8:
        return 5
    return None


# -- parsing ---------------------------------------------------------------------------------


def parse_bool(key: str, raw: str, errors: dict[str, list[str]]) -> bool | None:
    """``true``/``false`` (any case) → bool; anything else adds a field error, gives None."""
    low = raw.strip().lower()
    if low == "true":
        return True
    if low == "false":
        return False
    errors.setdefault(key, []).append(f"'{raw}' is not a valid boolean; use true or false.")
    return None


def parse_filters(
    params: Iterable[tuple[str, str]], catalog: Catalog, *, strict: bool
) -> SearchFilters:
    """Turn query parameters into canonical filters.

    ``strict`` (docs flavour) rejects unknown countries, categories and locations with field
    errors; otherwise (live flavour) they stay in the filter and simply match nothing.
    Malformed booleans are rejected in both flavours. Unrelated keys are ignored.
    """
    errors: dict[str, list[str]] = {}
    countries: set[str] = set()
    categories: set[int] = set()
    levels: dict[str, set[int]] = {k: set() for k in _LEVEL_KEYS}
    bools: dict[str, bool | None] = {}
    main_only = False
    for key, raw in params:
        if key == "countries":
            for part in raw.split(","):
                code = part.strip().upper()
                if not code:
                    continue
                if code not in catalog.country_codes and strict:
                    errors.setdefault("countries", []).append(
                        f"Unknown country code '{part.strip()}'."
                    )
                countries.add(code)
        elif key == "category":
            _parse_ids(key, raw, catalog.category_ids, categories, errors, strict, "category")
        elif key.rstrip("s") in ("level1_location", "level2_location", "level3_location"):
            canon = key.rstrip("s") + "s"
            known = catalog.location_ids.get(canon[:6], frozenset())
            _parse_ids(canon, raw, known, levels[canon], errors, strict, "location")
        elif key in _BOOL_FILTERS or key == "phone":
            canon = "phone_number" if key == "phone" else key
            bools[canon] = parse_bool(key, raw, errors)
        elif key == "main_activity_only":
            main_only = bool(parse_bool(key, raw, errors))
    if errors:
        raise FilterValidationError(errors)
    return SearchFilters(
        countries=tuple(sorted(countries)),
        category=tuple(sorted(categories)),
        level1_locations=tuple(sorted(levels["level1_locations"])),
        level2_locations=tuple(sorted(levels["level2_locations"])),
        level3_locations=tuple(sorted(levels["level3_locations"])),
        main_activity_only=main_only,
        **bools,
    )


def _parse_ids(
    key: str,
    raw: str,
    known: frozenset[int],
    into: set[int],
    errors: dict[str, list[str]],
    strict: bool,
    what: str,
) -> None:
    for part in raw.split(","):
        text = part.strip()
        if not text:
            continue
        try:
            value = int(text)
        except ValueError:
            if strict:
                errors.setdefault(key, []).append(f"'{text}' is not a valid {what} id.")
            into.add(_NO_MATCH)
            continue
        if value not in known and strict:
            errors.setdefault(key, []).append(f"Unknown {what} id {value}.")
        into.add(value)


# -- the index -------------------------------------------------------------------------------


class ContactStore:
    """Contacts in memory with vectorised filtering; thread-safe.

    Parameters
    ----------
    contacts
        The contacts table (dataset schema), sorted by ``place_id``.
    catalog
        Reference data used for validation.
    overlay_path
        Parquet file holding added and re-collected contacts; applied at load.
    """

    def __init__(self, contacts: pa.Table, catalog: Catalog, overlay_path: Path) -> None:
        self.catalog = catalog
        self._overlay_path = overlay_path
        self._lock = threading.RLock()
        #: Held from the moment a change's ``collected_at`` is stamped until it is visible, and
        #: by a delta around its own stamp and snapshot: otherwise rows stamped before a
        #: delta but published after its snapshot are in no delta at all.
        self.publishing = threading.Lock()
        self._cache: OrderedDict[str, Index] = OrderedDict()
        self.version = 0
        if overlay_path.exists():
            contacts = _apply_overlay(contacts, pq.read_table(overlay_path))
        self._set_table(contacts)

    # -- building
    def _set_table(self, table: pa.Table) -> None:
        n = table.num_rows  # no combine_chunks: copying every column costs ~0.5 s per 1M rows
        country = table["country"].combine_chunks().dictionary_encode()
        self._country_codes = {code: i for i, code in enumerate(country.dictionary.to_pylist())}
        self._country = _np(country.indices, np.int32)
        self._levels = {
            key: _np(table[f"level{i}_id"], np.int32) for i, key in enumerate(_LEVEL_KEYS, 1)
        }
        self._main_category = _np(table["main_category_id"], np.int32)
        cats = table["category_ids"].combine_chunks()
        lengths = _np(pc.list_value_length(cats).fill_null(0), np.int64)
        self._cat_values = _np(pc.list_flatten(cats), np.int32)
        self._cat_rows = np.repeat(np.arange(n, dtype=np.int64), lengths)
        self._has = {
            "email": _np(pc.list_value_length(table["email"]).fill_null(0), np.int64) > 0,
            "phone_number": _np(pc.list_value_length(table["phone"]).fill_null(0), np.int64) > 0,
        }
        for name in ("website", "instagram", "facebook"):
            self._has[name] = _np(pc.not_equal(table[name].fill_null(""), ""), np.bool_)
        self._collected_us = _np(table["collected_at"].cast(pa.int64()), np.int64)
        self._place_ids = table["place_id"]
        self.table = table
        self._public = table.select(list(CONTACT_COLUMNS))
        self._cache.clear()
        self.version += 1

    @property
    def total(self) -> int:
        """Number of contacts."""
        return int(self.table.num_rows)

    # -- querying
    def _mask(self, f: SearchFilters) -> Mask:
        n = self.total
        mask = np.ones(n, dtype=np.bool_)
        if f.countries:
            codes = [self._country_codes[c] for c in f.countries if c in self._country_codes]
            mask &= _isin(self._country, codes)
        if f.category:
            if f.main_activity_only:
                mask &= _isin(self._main_category, f.category)
            else:
                hit = np.zeros(n, dtype=np.bool_)
                hit[self._cat_rows[_isin(self._cat_values, f.category)]] = True
                mask &= hit
        # [DESIGN] locations at different levels are alternatives: (region A) or (city B).
        level_sets = [(k, getattr(f, k)) for k in _LEVEL_KEYS if getattr(f, k)]
        if level_sets:
            loc = np.zeros(n, dtype=np.bool_)
            for key, ids in level_sets:
                loc |= _isin(self._levels[key], ids)
            mask &= loc
        for name in _BOOL_FILTERS:
            want = getattr(f, name)
            if want is not None:
                mask &= self._has[name] if want else ~self._has[name]
        return mask

    def indices(self, f: SearchFilters) -> Index:
        """Row indices matching ``f``, ascending (= ordered by place_id); cached."""
        key = f.canonical()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
            version = self.version
        idx = np.flatnonzero(self._mask(f)).astype(np.int64)
        with self._lock:
            if version == self.version:
                self._cache[key] = idx
                while len(self._cache) > _CACHE_SIZE:
                    self._cache.popitem(last=False)
        return idx

    def snapshot(self, f: SearchFilters, after_us: int | None = None) -> tuple[pa.Table, Index]:
        """Return the table and the rows matching ``f`` in it, consistent with each other.

        ``after_us`` keeps only rows collected strictly after it (delta downloads).
        """
        while True:
            version, table = self.version, self.table
            idx = self.indices(f) if after_us is None else self.collected_after(f, after_us)
            if version == self.version:
                return table, idx

    def collected_after(self, f: SearchFilters, after_us: int) -> Index:
        """Rows matching ``f`` collected strictly after ``after_us`` (µs since the epoch)."""
        idx = self.indices(f)
        return idx[self._collected_us[idx] > after_us]

    def records(
        self, idx: Sequence[int] | Index, table: pa.Table | None = None
    ) -> list[dict[str, Any]]:
        """Contract contacts (unmasked) for the given rows, ``collected_at`` as ISO strings.

        ``table`` is the snapshot the rows index (default: the current table).
        """
        public = self._public if table is None else table.select(list(CONTACT_COLUMNS))
        # Zero-copy one-row slices: `take` on a multi-chunk table concatenates whole columns.
        rows = (
            pa.concat_tables([public.slice(int(i), 1) for i in idx])
            if len(idx)
            else (public.slice(0, 0))
        )
        # Arrow's %S carries the fraction: keep whole seconds, as the CSV does.
        stamp = pc.utf8_slice_codeunits(
            pc.strftime(rows["collected_at"], format="%Y-%m-%dT%H:%M:%S"), 0, 19
        )
        stamp = pc.binary_join_element_wise(stamp, "Z", "")
        rows = rows.set_column(rows.schema.get_field_index("collected_at"), "collected_at", stamp)
        records: list[dict[str, Any]] = rows.to_pylist()
        return records

    def category_counts(
        self, f: SearchFilters, group_of: dict[int, int]
    ) -> tuple[dict[int, int], dict[int, int]]:
        """Count contacts matching ``f`` per category id (main or secondary) and per group.

        ``group_of`` maps category ids to group numbers (professions); a contact counts once
        per group however many of its categories fall in it.
        """
        with self._lock:  # the side arrays must not change under us
            idx = self.indices(f)
            sel = np.zeros(self.total, dtype=np.bool_)
            sel[idx] = True
            keep = sel[self._cat_rows]
            values = self._cat_values[keep]
            rows = self._cat_rows[keep]
        ids, counts = np.unique(values, return_counts=True)
        per_category = {int(i): int(c) for i, c in zip(ids, counts, strict=True)}
        if not values.size:
            return per_category, {}
        lut = np.full(int(values.max()) + 1, -1, dtype=np.int64)
        for cat, group in group_of.items():
            if cat < lut.size:
                lut[cat] = group
        groups = lut[values]
        known = groups >= 0
        span = max(group_of.values(), default=0) + 1
        pairs = np.unique(rows[known] * span + groups[known])  # one per (contact, group)
        gids, gcounts = np.unique(pairs % span, return_counts=True)
        return per_category, {int(g): int(c) for g, c in zip(gids, gcounts, strict=True)}

    # -- changes
    def add_contacts(self, new: pa.Table) -> None:
        """Add new businesses (dataset schema) and persist them."""
        with self._lock:
            self._persist(new)
            merged = pa.concat_tables([self.table, new.select(self.table.column_names)])
            self._set_table(merged.take(pc.sort_indices(merged, [("place_id", "ascending")])))

    def recollect(self, n: int, collected_at_us: int, rng: np.random.Generator) -> int:
        """Re-collect ``n`` random existing contacts: newer ``collected_at``, one more review."""
        with self._lock:
            n = min(n, self.total)
            if n <= 0:
                return 0
            idx = np.sort(rng.choice(self.total, size=n, replace=False))
            collected = self._collected_us.copy()
            collected[idx] = collected_at_us
            reviews = _np(self.table["review_count"], np.int64).copy()
            reviews[idx] += 1
            table = self.table
            ts_type = table.schema.field("collected_at").type
            rc_type = table.schema.field("review_count").type
            table = table.set_column(
                table.schema.get_field_index("collected_at"),
                "collected_at",
                pa.array(collected, pa.int64()).cast(ts_type),
            )
            table = table.set_column(
                table.schema.get_field_index("review_count"),
                "review_count",
                pa.array(reviews).cast(rc_type),
            )
            self._persist(table.take(pa.array(idx)))
            self._set_table(table)
            return n

    def _persist(self, changed: pa.Table) -> None:
        """Merge changed rows into the overlay file (latest wins), atomically."""
        changed = changed.select(self.table.column_names)
        if self._overlay_path.exists():
            old = pq.read_table(self._overlay_path)
            keep = pc.invert(pc.is_in(old["place_id"], value_set=changed["place_id"]))
            changed = pa.concat_tables([old.filter(keep), changed.cast(old.schema)])
        self._overlay_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(self._overlay_path) as tmp:
            pq.write_table(changed, str(tmp))


def _apply_overlay(base: pa.Table, overlay: pa.Table) -> pa.Table:
    overlay = overlay.select(base.column_names).cast(base.schema)
    keep = pc.invert(pc.is_in(base["place_id"], value_set=overlay["place_id"]))
    merged = pa.concat_tables([base.filter(keep), overlay])
    return merged.take(pc.sort_indices(merged, [("place_id", "ascending")]))


def _isin(values: npt.NDArray[Any], wanted: Sequence[int]) -> Mask:
    """Membership test; a few equality passes beat `np.isin`'s sort for small sets.

    Values ``values``' dtype cannot hold (a huge id in the live flavour) match nothing.
    """
    info = np.iinfo(values.dtype)
    wanted = [w for w in wanted if info.min <= w <= info.max]
    if len(wanted) <= 4:
        out = np.zeros(values.shape, dtype=np.bool_)
        for w in wanted:
            out |= values == w
        return out
    return np.isin(values, np.asarray(wanted, dtype=values.dtype))


def _np(arr: Any, dtype: type) -> npt.NDArray[Any]:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=dtype)


def mask_email(address: str) -> str:
    """``jean@dupont.fr`` → ``j***@d*****.fr``: first letters and the TLD stay visible."""
    local, sep, domain = address.partition("@")
    masked_local = local[:1] + "*" * max(len(local) - 1, 0)
    if not sep:
        return masked_local
    head, dot, tld = domain.rpartition(".")
    if not dot:
        return f"{masked_local}@{domain[:1]}{'*' * max(len(domain) - 1, 0)}"
    return f"{masked_local}@{head[:1]}{'*' * max(len(head) - 1, 0)}.{tld}"
