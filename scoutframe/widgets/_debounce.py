"""Debounced background tasks: run a task once its inputs have been still for a moment.

The form recounts, looks categories up and searches locations while the user types; each
keystroke would otherwise send a request. :class:`Debouncer` runs a named task ``delay``
seconds after its last :meth:`Debouncer.schedule` (in a timer thread), and
:meth:`Debouncer.flush` runs whatever is pending at once, in the caller's thread, and waits for
tasks already running, so code and tests never need to sleep.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["Debouncer"]


class Debouncer:
    """Run named tasks after a quiet period, or at once with :meth:`flush`.

    Parameters
    ----------
    run
        Called with a task's name when it is due; it must not raise (the form's tasks catch
        and report their own errors).
    delay
        Seconds of quiet before a task runs; ``0`` runs it at once, in the caller's thread.
    """

    def __init__(self, run: Callable[[str], None], delay: float = 0.3) -> None:
        if delay < 0:
            raise ValueError(f"delay must be >= 0 seconds, not {delay!r}")
        self._run = run
        self.delay = float(delay)
        self._lock = threading.Lock()
        self._timers: dict[str, threading.Timer] = {}
        self._running: set[threading.Thread] = set()

    def __repr__(self) -> str:
        return f"Debouncer(delay={self.delay}, pending={sorted(self.pending)})"

    @property
    def pending(self) -> set[str]:
        """Names of the tasks waiting for their quiet period to end."""
        with self._lock:
            return set(self._timers)

    def schedule(self, name: str) -> None:
        """Run task ``name`` after ``delay`` seconds, unless it is scheduled again before."""
        if self.delay == 0:
            self._run(name)
            return
        with self._lock:
            old = self._timers.pop(name, None)
            if old is not None:
                old.cancel()
            timer = threading.Timer(self.delay, self._fire, args=(name,))
            timer.daemon = True
            timer.name = f"scoutframe-form-{name}"
            self._timers[name] = timer
        timer.start()

    def _fire(self, name: str) -> None:
        me = threading.current_thread()
        with self._lock:
            if self._timers.get(name) is not me:
                return  # rescheduled or flushed meanwhile
            del self._timers[name]
            self._running.add(me)
        try:
            self._run(name)
        finally:
            with self._lock:
                self._running.discard(me)

    def flush(self, order: tuple[str, ...] = ()) -> None:
        """Run every pending task now, those named in ``order`` first.

        Tasks already running in a timer thread are waited for first.
        """
        with self._lock:
            due = list(self._timers)
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()
            running = list(self._running)
        me = threading.current_thread()
        for thread in running:
            if thread is not me:
                thread.join()
        ranked = sorted(due, key=lambda n: order.index(n) if n in order else len(order))
        for name in ranked:
            self._run(name)

    def cancel(self) -> None:
        """Drop every pending task."""
        with self._lock:
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()
