"""A delta merged into an export frame that is not cached (``df.spherescout.refresh()``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from .. import csvread, frames
from ..merge import upsert

if TYPE_CHECKING:
    from ..checks import DtypeBackend
    from ..client import Client

__all__ = ["merge_delta"]


def merge_delta(
    df: pd.DataFrame, parent: int, *, client: Client | None, max_credits: int | None
) -> tuple[pd.DataFrame, int, int | None]:
    """Return ``df`` with the delta since history entry ``parent`` merged in by ``place_id``.

    Also the credits spent and the delta's own history entry (``None`` when nothing was new:
    then nothing is spent and the frame comes back unchanged).
    """
    own = client is None
    if client is None:
        from ..client import Client

        client = Client()
    try:
        if client.history.freshness(parent).is_fresh:
            return df.copy(), 0, None
        path = client.job_store.download_path(f"delta-{parent}")
        delta = client.history.download_delta(parent, path, max_credits=max_credits)
        try:
            changes = csvread.read_csv(path, warn_drift=False)
        finally:
            path.unlink(missing_ok=True)
    finally:
        if own:
            client.close()
    base = frames.table_from_pandas(df)
    merged = upsert(base.select(changes.column_names), changes)
    backend: DtypeBackend = "pyarrow" if any(isinstance(t, pd.ArrowDtype) for t in df.dtypes) \
        else "numpy_nullable"  # fmt: skip
    return frames.to_pandas(merged, dtype_backend=backend), delta.credits_spent, delta.history_id
