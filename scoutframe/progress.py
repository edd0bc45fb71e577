"""Progress bars for the phases of a read: export running, download, parsing, pages.

Bars come from ``tqdm.auto`` (a widget in Jupyter when ipywidgets is installed, plain text
otherwise), imported only when a bar is actually shown, so ``import scoutframe`` stays cheap.
``progress=False`` or the environment variable ``SCOUTFRAME_PROGRESS=0`` silences them.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from types import TracebackType
from typing import Any

__all__ = ["ENV_VAR", "Bar", "notify", "progress_enabled"]

#: Environment variable that turns bars off when set to 0/false/no/off.
ENV_VAR = "SCOUTFRAME_PROGRESS"
_OFF = frozenset({"0", "false", "no", "off"})


def progress_enabled(progress: bool | None = None) -> bool:
    """Decide whether to show bars: an explicit argument wins, then ``SCOUTFRAME_PROGRESS``.

    Parameters
    ----------
    progress
        ``True``/``False`` to force; ``None`` to follow the environment (default: on).

    Returns
    -------
    bool
    """
    if progress is not None:
        return bool(progress)
    return os.environ.get(ENV_VAR, "1").strip().lower() not in _OFF


def notify(message: str) -> None:
    """Tell the user something they must not miss (money spent, a paid file kept): one line.

    Written to standard error, where notebooks show it under the cell and shells keep it out
    of piped output, and logged (logger ``scoutframe``) for scheduled jobs.
    """
    logging.getLogger("scoutframe").info(message)
    print(f"scoutframe: {message}", file=sys.stderr, flush=True)


class Bar:
    """One phase's bar; a no-op when disabled, so callers never branch on it.

    Use the constructors :meth:`export`, :meth:`download`, :meth:`rows`; update with
    :meth:`update`, :meth:`set_total` and :meth:`status`; close with :meth:`close` or a
    ``with`` block.
    """

    def __init__(self, enabled: bool, **tqdm_kwargs: Any) -> None:
        self._bar: Any = None
        self._started = time.monotonic()
        if enabled:
            from tqdm.auto import tqdm  # lazy: keeps `import scoutframe` light

            self._bar = tqdm(**tqdm_kwargs)

    @classmethod
    def export(cls, enabled: bool) -> Bar:
        """Bar for a running export job: percent done, elapsed time and the job's status."""
        return cls(
            enabled,
            total=100,
            desc="export",
            unit="%",
            bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}{postfix}]",
        )

    @classmethod
    def download(cls, enabled: bool, total: int | None = None) -> Bar:
        """Bar for a download, in bytes."""
        return cls(
            enabled,
            total=total,
            desc="download",
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
        )

    @classmethod
    def rows(cls, enabled: bool, total: int | None, desc: str) -> Bar:
        """Bar counting rows (parsing, pages)."""
        return cls(enabled, total=total, desc=desc, unit=" rows", unit_scale=True)

    @property
    def enabled(self) -> bool:
        """Whether a real bar is shown."""
        return self._bar is not None

    @property
    def elapsed(self) -> float:
        """Seconds since the bar was created."""
        return time.monotonic() - self._started

    def update(self, n: int) -> None:
        """Advance by *n* units."""
        if self._bar is not None and n:
            self._bar.update(n)

    def set_total(self, total: int | None) -> None:
        """Set or change the total (e.g. once a Content-Length is known)."""
        if self._bar is not None and total != self._bar.total:
            self._bar.total = total
            self._bar.refresh()

    def set_progress(self, done: float) -> None:
        """Move to an absolute position (``done`` in the bar's units)."""
        if self._bar is not None:
            self._bar.n = done
            self._bar.refresh()

    def status(self, text: str) -> None:
        """Show a short status text after the bar."""
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=True)

    def close(self) -> None:
        """Close the bar (idempotent)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Bar:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
