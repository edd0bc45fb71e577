"""Reading searches into DataFrames: :func:`read_spherescout` and :func:`read_export_csv`.

The public names live in :mod:`scoutframe.read.api`; the rest of the package is the private
machinery of one read (plan, sources, output).
"""

from ..models import ReadPlan
from ..tables.schema import PageDriftWarning
from .api import read_export_csv, read_spherescout
from .request import AUTO_PAGES_MAX_ROWS

__all__ = [
    "AUTO_PAGES_MAX_ROWS",
    "PageDriftWarning",
    "ReadPlan",
    "read_export_csv",
    "read_spherescout",
]
