"""Export jobs: charged at start, built by background worker threads, refunded on failure.

Life cycle ``pending → processing → ready | failed``. The charge (balance check, debit, ledger
row), the task and its history entry are one SQLite transaction in `State.start_export`; a
failure refunds in one transaction too. Pacing (ready only after N polls / S seconds) lets
clients exercise their poll loops; ``processing_seconds`` keeps a job really unfinished (its
worker waits before writing the file), for restart and crash tests.

[DESIGN] A restart never leaves a job stuck: jobs a stopped (or killed) server left
``pending``/``processing`` are failed and refunded by `ExportManager.recover` at start.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from scoutframe.sandbox.csvexport import write_export_csv
from scoutframe.sandbox.state import State
from scoutframe.sandbox.store import ContactStore, Index, SearchFilters

__all__ = ["DOWNLOAD_LIFETIME", "ExportManager", "Pacing"]

#: [DOC] a ready export's URL stays valid 30 days.
DOWNLOAD_LIFETIME = 30 * 86400.0

_log = logging.getLogger(__name__)


@dataclass
class Pacing:
    """How fast jobs go.

    A finished job is reported ready only after ``min_polls`` polls and ``delay_seconds``
    (sandbox clock) since it started; ``processing_seconds`` (real seconds) is how long the
    worker holds each job in ``processing`` before it writes the file.
    """

    min_polls: int = 0
    delay_seconds: float = 0.0
    processing_seconds: float = 0.0


class ExportManager:
    """Starts export jobs and runs them on a small thread pool.

    Parameters
    ----------
    state, store
        The database and the contacts index.
    export_dir
        Where CSV files are written (served by the storage origin).
    should_fail
        Consulted once per job when it starts processing (fault injection).
    """

    def __init__(
        self,
        state: State,
        store: ContactStore,
        export_dir: Path,
        should_fail: Any,
        workers: int = 2,
    ) -> None:
        self.state = state
        self.store = store
        self.export_dir = export_dir
        export_dir.mkdir(parents=True, exist_ok=True)
        self._should_fail = should_fail
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox-export")
        self._stopping = threading.Event()
        self.pacing = Pacing()

    def recover(self) -> int:
        """Fail and refund jobs a stopped server left unfinished, drop their partial files.

        Returns how many jobs failed.

        [DESIGN] they are not re-run: the client sees ``failed`` and may start again.
        """
        stale = self.state.unfinished_tasks()
        for task_id in stale:
            self.state.fail_task(task_id, "The sandbox restarted while this export was running.")
            # A file written just before the server died, its task never marked ready.
            for orphan in self.export_dir.glob(f"{task_id}-*.csv"):
                orphan.unlink(missing_ok=True)
        for part in self.export_dir.glob(".*.part"):  # their writers died with the server
            part.unlink(missing_ok=True)
        return len(stale)

    def sweep(self) -> int:
        """Delete export files whose signed URL has expired (sandbox clock); returns how many.

        Their URLs answer 403 before the file is looked at, so nothing can fetch them again.
        """
        removed = 0
        for name in self.state.expired_exports(self.state.clock()):
            try:
                (self.export_dir / name).unlink()
            except FileNotFoundError:
                continue
            removed += 1
        return removed

    def start(self, account_id: int, search_id: str, filters: SearchFilters) -> dict[str, Any]:
        """Charge and enqueue an export; raises `InsufficientCredits` (nothing charged)."""
        # The file holds exactly the rows counted (and charged) now, whatever changes later.
        table, idx = self.store.snapshot(filters)
        lead_count = int(idx.size)
        task_id = "task_" + secrets.token_hex(8)
        task, _ = self.state.start_export(
            account_id,
            search_id,
            json.dumps(filters.to_json(), sort_keys=True),
            lead_count,
            task_id,
        )
        self._pool.submit(self._run, task_id, table, idx)
        return task

    def _run(self, task_id: str, table: pa.Table, idx: Index) -> None:
        try:
            self.state.set_task_status(task_id, "processing")
            if self.pacing.processing_seconds > 0:
                # cut short by shutdown; capped: Event.wait overflows on huge timeouts
                self._stopping.wait(min(self.pacing.processing_seconds, 86_400.0))
            if self._should_fail():
                self.state.fail_task(task_id, "Export failed (injected fault); credits refunded.")
                return
            object_name = f"{task_id}-{secrets.token_hex(8)}.csv"
            write_export_csv(table, self.export_dir / object_name, indices=idx)
            self.state.finish_task(task_id, object_name, self.state.clock() + DOWNLOAD_LIFETIME)
            self.sweep()
        except Exception:
            _log.exception("export %s failed", task_id)
            self.state.fail_task(task_id, "Export failed; credits refunded.")

    def visible_status(self, task: dict[str, Any], *, count_poll: bool) -> str:
        """Return the status a client sees, holding ``ready`` back until pacing allows it."""
        polls = self.state.count_poll(task["task_id"]) if count_poll else int(task["polls"])
        status = str(task["status"])
        if status != "ready":
            return status
        pacing = self.pacing
        if polls < pacing.min_polls:
            return "processing"
        if self.state.clock() - float(task["created_at"]) < pacing.delay_seconds:
            return "processing"
        return "ready"

    def shutdown(self) -> None:
        """Wait for running jobs and stop the workers."""
        self._stopping.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
