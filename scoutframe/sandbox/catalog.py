"""Business categories of the sandbox: stable ids, gcids, professions and contact habits.

The list lives in ``data/categories.csv`` (authored for the sandbox; ids are fixed there and
8059 is Plumber as in production). Each category also carries how its businesses are
usually reached (restaurants show an Instagram, plumbers a phone, lawyers a website and an
email), which the generator uses to vary contact-method coverage.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources

import numpy as np
import numpy.typing as npt
import pyarrow as pa

__all__ = ["COVERAGE_FIELDS", "Catalog", "load_catalog"]

#: Contact methods whose coverage varies, in the order of ``Catalog.coverage`` columns.
COVERAGE_FIELDS = ("email", "phone", "website", "instagram", "facebook", "rating")

# Share of businesses showing each method, by profession:
#                              email phone website instagram facebook rated
_PROFESSION_COVERAGE: dict[str, tuple[float, ...]] = {
    "Health":                 (0.45, 0.95, 0.70, 0.15, 0.30, 0.75),
    "Food & Drink":           (0.30, 0.85, 0.55, 0.75, 0.60, 0.95),
    "Construction & Trades":  (0.40, 0.96, 0.50, 0.10, 0.35, 0.60),
    "Retail":                 (0.35, 0.85, 0.60, 0.45, 0.50, 0.85),
    "Beauty & Wellness":      (0.35, 0.90, 0.45, 0.80, 0.55, 0.90),
    "Automotive":             (0.35, 0.93, 0.60, 0.15, 0.40, 0.85),
    "Legal & Finance":        (0.80, 0.92, 0.88, 0.08, 0.25, 0.55),
    "Real Estate":            (0.70, 0.90, 0.85, 0.40, 0.55, 0.65),
    "Hospitality & Travel":   (0.65, 0.90, 0.85, 0.55, 0.60, 0.95),
    "Education":              (0.60, 0.85, 0.75, 0.30, 0.55, 0.60),
    "Sports & Fitness":       (0.50, 0.85, 0.70, 0.70, 0.55, 0.85),
    "Arts & Entertainment":   (0.50, 0.75, 0.75, 0.65, 0.60, 0.85),
    "Professional Services":  (0.55, 0.88, 0.70, 0.15, 0.30, 0.60),
    "Pets & Animals":         (0.40, 0.90, 0.55, 0.55, 0.50, 0.85),
    "Transport & Logistics":  (0.45, 0.92, 0.55, 0.05, 0.20, 0.60),
    "Public & Community":     (0.30, 0.70, 0.60, 0.15, 0.45, 0.70),
    "Agriculture & Industry": (0.55, 0.88, 0.60, 0.10, 0.25, 0.35),
}  # fmt: skip
_DEFAULT_COVERAGE = (0.45, 0.88, 0.60, 0.30, 0.40, 0.75)

# Categories whose habits differ from their profession's.
_CATEGORY_COVERAGE: dict[str, tuple[float, ...]] = {
    "Plumber":           (0.30, 0.98, 0.45, 0.05, 0.25, 0.70),
    "Electrician":       (0.30, 0.98, 0.45, 0.05, 0.25, 0.65),
    "Locksmith":         (0.20, 0.99, 0.55, 0.02, 0.15, 0.75),
    "Lawyer":            (0.85, 0.95, 0.90, 0.05, 0.20, 0.50),
    "Law firm":          (0.88, 0.96, 0.95, 0.08, 0.30, 0.55),
    "Notary public":     (0.85, 0.97, 0.85, 0.02, 0.05, 0.30),
    "Restaurant":        (0.25, 0.88, 0.60, 0.85, 0.65, 0.97),
    "Cafe":              (0.20, 0.75, 0.40, 0.88, 0.60, 0.95),
    "Coffee shop":       (0.20, 0.70, 0.45, 0.90, 0.55, 0.95),
    "Cocktail bar":      (0.20, 0.75, 0.50, 0.92, 0.60, 0.95),
    "Food truck":        (0.15, 0.60, 0.30, 0.90, 0.70, 0.80),
    "Tattoo shop":       (0.30, 0.80, 0.45, 0.95, 0.50, 0.92),
    "Taxi service":      (0.10, 0.99, 0.35, 0.02, 0.10, 0.55),
    "Gas station":       (0.05, 0.80, 0.50, 0.02, 0.10, 0.90),
    "Park":              (0.02, 0.10, 0.20, 0.05, 0.05, 0.90),
    "Cemetery":          (0.10, 0.40, 0.30, 0.00, 0.05, 0.40),
    "Hotel":             (0.85, 0.97, 0.92, 0.60, 0.70, 0.98),
    "Software company":  (0.70, 0.70, 0.95, 0.20, 0.30, 0.40),
}  # fmt: skip


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
    text = (resources.files("scoutframe.sandbox") / "data" / "categories.csv").read_text(
        encoding="utf-8"
    )
    rows = sorted(csv.DictReader(text.splitlines()), key=lambda r: int(r["id"]))
    professions = tuple(dict.fromkeys(r["profession"] for r in rows))
    categories = pa.table({
        "id": pa.array([int(r["id"]) for r in rows], pa.int32()),
        "name": pa.array([r["name"] for r in rows], pa.string()),
        "gcid": pa.array([r["gcid"] for r in rows], pa.string()),
        "profession": pa.array([r["profession"] for r in rows], pa.string()),
    })
    coverage = np.array([
        _CATEGORY_COVERAGE.get(r["name"], _PROFESSION_COVERAGE.get(r["profession"],
                                                                   _DEFAULT_COVERAGE))
        for r in rows
    ], dtype=np.float64)
    return Catalog(
        categories=categories,
        weight=np.array([float(r["weight"]) for r in rows], dtype=np.float64),
        profession_index=np.array([professions.index(r["profession"]) for r in rows],
                                  dtype=np.int32),
        professions=professions,
        coverage=coverage,
    )
