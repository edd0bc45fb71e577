"""A read's warnings point at the user's line, not inside scoutframe (warn_from_caller)."""

from __future__ import annotations

import warnings

import pandas as pd

from scoutframe.tables.schema import MaskedEmailWarning


def test_the_masked_email_warning_of_a_read_points_at_the_caller(sandbox_docs, client_for):
    client = client_for(sandbox_docs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pd.read_spherescout(  # type: ignore[attr-defined]
            countries="FR", category="Plumber", method="pages", client=client, progress=False
        )
    masked = [w for w in caught if issubclass(w.category, MaskedEmailWarning)]
    assert len(masked) == 1
    assert masked[0].filename == __file__
