"""A delta bought once: the one rule for paid delta files.

The API serves a delta's body once (1 credit a row); asked again, it charges the same rows
again. So a paid delta is written whole into a file the caller keeps (in a cache entry, or in
``client.state_dir / "downloads"`` for a frame that was not cached) **before** anything reads
it, and the caller removes it only once its rows are merged and delivered. A later run finds
the file waiting and merges it without paying: :func:`take_delta` is that rule, for the cache
refresh and for ``df.spherescout.refresh()`` of an uncached frame alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..models import Freshness
    from .client import Client

__all__ = ["DeltaFile", "LocalDeltaFile", "PaidDelta", "take_delta"]


class DeltaFile(Protocol):
    """Where a paid delta waits until its rows are merged."""

    @property
    def location(self) -> str:
        """Where the file is, for messages."""
        ...

    def exists(self) -> bool:
        """Whether a paid delta waits there already."""
        ...

    def writing(self) -> AbstractContextManager[Path]:
        """Give a local path to download into; it becomes the kept file whole, or not at all."""
        ...

    def reading(self) -> AbstractContextManager[Path]:
        """Give a local path holding the kept file, for the duration of the block."""
        ...

    def remove(self) -> None:
        """Forget the file (once its rows are merged and delivered)."""
        ...


class LocalDeltaFile:
    """A paid delta kept in a local file (``download_delta`` writes it atomically, 0600).

    Parameters
    ----------
    path
        The file.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"LocalDeltaFile({str(self.path)!r})"

    @property
    def location(self) -> str:
        """The file's path."""
        return str(self.path)

    def exists(self) -> bool:
        """Whether the file is there."""
        return self.path.is_file()

    @contextlib.contextmanager
    def writing(self) -> Iterator[Path]:
        """Give the path itself: the download is atomic already."""
        yield self.path

    @contextlib.contextmanager
    def reading(self) -> Iterator[Path]:
        """Give the path itself."""
        yield self.path

    def remove(self) -> None:
        """Delete the file."""
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class PaidDelta:
    """A delta that waits in its :class:`DeltaFile` until merged.

    Attributes
    ----------
    history_id
        The delta's own history entry (where the next delta starts); ``None`` when it could
        not be learnt (then the caller must not commit a chain it cannot continue).
    credits_spent
        What this call paid: 0 when the file was paid by an earlier run.
    reused
        Whether the file was found waiting (paid by an earlier run that did not merge it).
    """

    history_id: int | None
    credits_spent: int
    reused: bool


def take_delta(
    client: Client,
    parent: int,
    kept: DeltaFile,
    *,
    max_credits: int | None,
    before_paying: Callable[[Freshness], None] | None = None,
) -> PaidDelta | None:
    """Return the delta since history entry ``parent``, kept in ``kept``, paid at most once.

    A file waiting in ``kept`` is used as it is (free). Otherwise ``freshness`` is asked
    (free): nothing new returns ``None``; else ``before_paying(freshness)`` may refuse (a
    :class:`~scoutframe.errors.ConsentError`, say), and the delta is bought into ``kept``.

    Parameters
    ----------
    client
        The client of the account and origin the delta belongs to.
    parent
        The history entry the delta starts from.
    kept
        Where the paid file waits until the caller merged it (then ``kept.remove()``).
    max_credits
        The delta's budget (``BudgetError`` above it, before anything is spent).
    before_paying
        Called with the freshness just before buying; raise to refuse.

    Returns
    -------
    PaidDelta or None
        ``None`` when nothing is new (nothing spent).
    """
    if kept.exists():  # paid by an earlier run that stopped before merging it
        found = client.job_store.newest_delta(parent)
        return PaidDelta(
            history_id=None if found is None else found.id, credits_spent=0, reused=True
        )
    fresh = client.history.freshness(parent)
    if fresh.is_fresh:
        return None
    if before_paying is not None:
        before_paying(fresh)
    with kept.writing() as path:
        delta = client.history.download_delta(
            parent, path, max_credits=max_credits, freshness=fresh
        )
    return PaidDelta(history_id=delta.history_id, credits_spent=delta.credits_spent, reused=False)
