"""Business categories and the word pools businesses are named from.

The category list lives in ``data/categories.csv`` (authored for the sandbox; ids are fixed
there and 8059 is Plumber as in production). Each category also carries how its businesses
are usually reached (restaurants show an Instagram, plumbers a phone, lawyers a website and
an email), which the generator uses to vary contact-method coverage.

Names come from small per-locale pools (surnames, first names and streets drawn once from
Faker and shipped in ``data/names.json.gz``) and
per-language templates and category words (``data/name_patterns.json``,
``data/business_words.json``): "Plomberie Dupont", "Bäckerei Müller", "田中歯科".
"""

from __future__ import annotations

import csv
import functools
import gzip
import json
import unicodedata
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

__all__ = [
    "COVERAGE_FIELDS",
    "FIRM_PROFESSIONS",
    "PLACE_NAMED_PROFESSIONS",
    "Catalog",
    "LanguageWords",
    "NamePool",
    "language_of",
    "language_words",
    "load_catalog",
    "name_pool",
    "slug",
]

_DATA = resources.files("scoutframe.sandbox") / "data"

#: Professions whose businesses are named like firms ("Dupont, Martin et Associés").
FIRM_PROFESSIONS = frozenset({"Legal & Finance", "Professional Services", "Real Estate", "Health"})
#: Professions whose businesses are named after their town ("Evanston Post Office").
PLACE_NAMED_PROFESSIONS = frozenset({"Public & Community", "Education"})

#: Contact methods whose coverage varies, in the order of ``Catalog.coverage`` columns.
COVERAGE_FIELDS = ("email", "phone", "website", "instagram", "facebook", "rating")

# Share of businesses showing each method, by profession:
#                              email phone website instagram facebook rated
_PROFESSION_COVERAGE: dict[str, tuple[float, ...]] = {
    "Health": (0.45, 0.95, 0.70, 0.15, 0.30, 0.75),
    "Food & Drink": (0.30, 0.85, 0.55, 0.75, 0.60, 0.95),
    "Construction & Trades": (0.40, 0.96, 0.50, 0.10, 0.35, 0.60),
    "Retail": (0.35, 0.85, 0.60, 0.45, 0.50, 0.85),
    "Beauty & Wellness": (0.35, 0.90, 0.45, 0.80, 0.55, 0.90),
    "Automotive": (0.35, 0.93, 0.60, 0.15, 0.40, 0.85),
    "Legal & Finance": (0.80, 0.92, 0.88, 0.08, 0.25, 0.55),
    "Real Estate": (0.70, 0.90, 0.85, 0.40, 0.55, 0.65),
    "Hospitality & Travel": (0.65, 0.90, 0.85, 0.55, 0.60, 0.95),
    "Education": (0.60, 0.85, 0.75, 0.30, 0.55, 0.60),
    "Sports & Fitness": (0.50, 0.85, 0.70, 0.70, 0.55, 0.85),
    "Arts & Entertainment": (0.50, 0.75, 0.75, 0.65, 0.60, 0.85),
    "Professional Services": (0.55, 0.88, 0.70, 0.15, 0.30, 0.60),
    "Pets & Animals": (0.40, 0.90, 0.55, 0.55, 0.50, 0.85),
    "Transport & Logistics": (0.45, 0.92, 0.55, 0.05, 0.20, 0.60),
    "Public & Community": (0.30, 0.70, 0.60, 0.15, 0.45, 0.70),
    "Agriculture & Industry": (0.55, 0.88, 0.60, 0.10, 0.25, 0.35),
}
_DEFAULT_COVERAGE = (0.45, 0.88, 0.60, 0.30, 0.40, 0.75)

# Categories whose habits differ from their profession's.
_CATEGORY_COVERAGE: dict[str, tuple[float, ...]] = {
    "Plumber": (0.30, 0.98, 0.45, 0.05, 0.25, 0.70),
    "Electrician": (0.30, 0.98, 0.45, 0.05, 0.25, 0.65),
    "Locksmith": (0.20, 0.99, 0.55, 0.02, 0.15, 0.75),
    "Lawyer": (0.85, 0.95, 0.90, 0.05, 0.20, 0.50),
    "Law firm": (0.88, 0.96, 0.95, 0.08, 0.30, 0.55),
    "Notary public": (0.85, 0.97, 0.85, 0.02, 0.05, 0.30),
    "Restaurant": (0.25, 0.88, 0.60, 0.85, 0.65, 0.97),
    "Cafe": (0.20, 0.75, 0.40, 0.88, 0.60, 0.95),
    "Coffee shop": (0.20, 0.70, 0.45, 0.90, 0.55, 0.95),
    "Cocktail bar": (0.20, 0.75, 0.50, 0.92, 0.60, 0.95),
    "Food truck": (0.15, 0.60, 0.30, 0.90, 0.70, 0.80),
    "Tattoo shop": (0.30, 0.80, 0.45, 0.95, 0.50, 0.92),
    "Taxi service": (0.10, 0.99, 0.35, 0.02, 0.10, 0.55),
    "Gas station": (0.05, 0.80, 0.50, 0.02, 0.10, 0.90),
    "Park": (0.02, 0.10, 0.20, 0.05, 0.05, 0.90),
    "Cemetery": (0.10, 0.40, 0.30, 0.00, 0.05, 0.40),
    "Hotel": (0.85, 0.97, 0.92, 0.60, 0.70, 0.98),
    "Software company": (0.70, 0.70, 0.95, 0.20, 0.30, 0.40),
}


@dataclass(frozen=True)
class Catalog:
    """The categories table plus per-category arrays used by the generator.

    Attributes
    ----------
    categories : pyarrow.Table
        ``id`` (int32), ``name``, ``gcid``, ``profession`` (str), sorted by id.
    weight : numpy.ndarray
        Relative frequency of each category as a main category.
    profession_index : numpy.ndarray
        Index into ``professions`` of each category.
    professions : tuple of str
        Profession names, in first-seen order.
    coverage : numpy.ndarray
        ``(n_categories, len(COVERAGE_FIELDS))`` probabilities.
    """

    categories: pa.Table
    weight: npt.NDArray[np.float64]
    profession_index: npt.NDArray[np.int32]
    professions: tuple[str, ...]
    coverage: npt.NDArray[np.float64]

    @property
    def ids(self) -> npt.NDArray[np.int32]:
        """Category ids, aligned with the other arrays."""
        return np.asarray(self.categories.column("id").to_numpy(), dtype=np.int32)

    @property
    def names(self) -> list[str]:
        """Category names, aligned with the other arrays."""
        return [str(n) for n in self.categories.column("name").to_pylist()]


@functools.cache
def load_catalog() -> Catalog:
    """Load the authored category list (cached).

    Returns
    -------
    Catalog
        Categories sorted by id with their weights, professions and coverage.
    """
    text = (_DATA / "categories.csv").read_text(encoding="utf-8")
    rows = sorted(csv.DictReader(text.splitlines()), key=lambda r: int(r["id"]))
    professions = tuple(dict.fromkeys(r["profession"] for r in rows))
    categories = pa.table(
        {
            "id": pa.array([int(r["id"]) for r in rows], pa.int32()),
            "name": pa.array([r["name"] for r in rows], pa.string()),
            "gcid": pa.array([r["gcid"] for r in rows], pa.string()),
            "profession": pa.array([r["profession"] for r in rows], pa.string()),
        }
    )
    coverage = np.array(
        [
            _CATEGORY_COVERAGE.get(
                r["name"], _PROFESSION_COVERAGE.get(r["profession"], _DEFAULT_COVERAGE)
            )
            for r in rows
        ],
        dtype=np.float64,
    )
    return Catalog(
        categories=categories,
        weight=np.array([float(r["weight"]) for r in rows], dtype=np.float64),
        profession_index=np.array(
            [professions.index(r["profession"]) for r in rows], dtype=np.int32
        ),
        professions=professions,
        coverage=coverage,
    )


# --------------------------------------------------------------------------- name pools


def slug(text: str) -> str:
    """Keep the ASCII letters and digits of ``text``, lowercased: usable in a domain."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_text.lower() if ch.isalnum())


def language_of(locale: str) -> str:
    """Name-template language of a locale (``"fr_BE"`` → ``"fr"``; default ``"en"``)."""
    lang = locale.split("_")[0]
    return lang if lang in _patterns() else "en"


@dataclass(frozen=True)
class NamePool:
    """Words of one locale, each with an ASCII slug for domains and handles."""

    surnames: pa.Array
    surname_slugs: pa.Array
    first_names: pa.Array
    first_name_slugs: pa.Array
    streets: pa.Array


_POOL_FIELDS = ("surnames", "surname_slugs", "first_names", "first_name_slugs", "streets")


@functools.cache
def _pools() -> dict[str, dict[str, list[str]]]:
    """Return locale → the five lists of its ``NamePool`` (``data/names.json.gz``)."""
    data: dict[str, Any] = json.loads(gzip.decompress((_DATA / "names.json.gz").read_bytes()))
    pools: dict[str, dict[str, list[str]]] = data["locales"]
    return pools


@functools.cache
def name_pool(locale: str) -> NamePool:
    """Surnames, first names and street names of ``locale`` (cached).

    They are drawn once from Faker with a fixed seed per locale and shipped in
    ``data/names.json.gz`` (``scripts/make_sandbox_names.py``; ``data/README.md`` gives
    the source and licence).

    Parameters
    ----------
    locale
        A Faker locale code of ``geo.COUNTRIES``, such as ``"fr_FR"``.

    Returns
    -------
    NamePool
        A few hundred of each, independent of any dataset seed.

    Raises
    ------
    KeyError
        ``locale`` has no shipped pool (the script was not run after adding it).
    """
    pool = _pools()[locale]
    return NamePool(**{field: pa.array(pool[field], pa.string()) for field in _POOL_FIELDS})


@dataclass(frozen=True)
class LanguageWords:
    """How businesses are named in one language.

    Attributes
    ----------
    words, word_slugs : pyarrow.Array
        The business word of each category (aligned with ``Catalog.categories``) and an
        ASCII slug of it.
    templates : tuple of str
        Name templates (``"{W} {S}"``...).
    weights, firm_weights, place_weights : numpy.ndarray
        Template probabilities for most businesses, for firms and for public places.
    adjectives : pyarrow.Array
        Words for ``{A}``.
    is_local : numpy.ndarray
        Whether the category has a word of its own in this language (else English).
    """

    words: pa.Array
    word_slugs: pa.Array
    templates: tuple[str, ...]
    weights: npt.NDArray[np.float64]
    firm_weights: npt.NDArray[np.float64]
    place_weights: npt.NDArray[np.float64]
    adjectives: pa.Array
    is_local: npt.NDArray[np.bool_]


@functools.cache
def _patterns() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((_DATA / "name_patterns.json").read_text("utf-8"))
    return data


@functools.cache
def _local_words() -> dict[str, dict[str, str]]:
    data: dict[str, dict[str, str]] = json.loads((_DATA / "business_words.json").read_text("utf-8"))
    return data


_ENGLISH_WORDS = {
    "Plumber": "Plumbing",
    "Electrician": "Electric",
    "General contractor": "Construction",
    "Roofing contractor": "Roofing",
    "Painter": "Painting",
    "Carpenter": "Carpentry",
    "Landscaper": "Landscaping",
    "HVAC contractor": "Heating & Air",
    "Dentist": "Dental",
    "Lawyer": "Law",
    "Law firm": "Law Group",
    "Accountant": "Accounting",
    "Hair salon": "Hair",
    "Restaurant": "Kitchen",
    "Pizza restaurant": "Pizza",
    "Auto repair shop": "Auto Repair",
    "Mason": "Masonry",
    "Locksmith": "Lock & Key",
    "Cafe": "Cafe",
    "Gym": "Fitness",
    "General practitioner": "Family Medicine",
    "Veterinarian": "Veterinary Clinic",
    "Pharmacy": "Pharmacy",
    "Tiler": "Tile",
    "Welder": "Welding",
    "Caterer": "Catering",
    "Photographer": "Photography",
    "Architect": "Architects",
    "Moving company": "Moving",
    "Cleaning service": "Cleaning",
    "Taxi service": "Taxi",
    "Florist": "Flowers",
}


def _english_word(category: str) -> str:
    if category in _ENGLISH_WORDS:
        return _ENGLISH_WORDS[category]
    title = " ".join(w if w.isupper() else w.capitalize() for w in category.split())
    return title.removesuffix(" Restaurant") if category.endswith(" restaurant") else title


@functools.cache
def language_words(lang: str) -> LanguageWords:
    """Return the business words and name templates of ``lang`` (cached).

    Parameters
    ----------
    lang
        A language of ``language_of``.

    Returns
    -------
    LanguageWords
        Words aligned with the categories, templates and their weights.
    """
    names = load_catalog().names
    local = _local_words().get(lang, {})
    words = [local.get(n) or _english_word(n) for n in names]
    spec = _patterns()[lang]
    weights = np.array([float(t[1]) for t in spec])
    place = np.where(["{C}" in str(t[0]) for t in spec], weights, 0.0)
    place = place if place.sum() else weights
    return LanguageWords(
        words=pa.array(words, pa.string()),
        word_slugs=pa.array(
            [
                slug(w) or slug(_english_word(n)) or "shop"
                for w, n in zip(words, names, strict=True)
            ],
            pa.string(),
        ),
        templates=tuple(str(t[0]) for t in spec),
        weights=weights / weights.sum(),
        firm_weights=np.array([float(t[2]) for t in spec]) / sum(float(t[2]) for t in spec),
        place_weights=place / place.sum(),
        adjectives=pa.array(_patterns()["_adjectives"][lang], pa.string()),
        is_local=np.array([n in local or lang == "en" for n in names]),
    )
