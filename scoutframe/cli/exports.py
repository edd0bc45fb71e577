"""``scoutframe history`` and ``scoutframe exports list | resume``: exports already paid for."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._files import check_file_target, umask_mode
from ._run import open_client, run
from ._show import add_json_flag, frame_rows, print_json, print_table
from ._terms import filters_as_flags

if TYPE_CHECKING:
    from ..api.jobs import ExportJob

__all__ = ["exports_main", "history_main"]

_HISTORY_COLUMNS = (
    "id",
    "kind",
    "status",
    "row_count",
    "created_at",
    "expires_at",
    "parent_id",
    "search_id",
    "filters",
)
_JOB_COLUMNS = ("job_id", "state", "lead_count", "created_at", "history_id", "filters")


def history_main(argv: list[str]) -> int:
    """Run ``scoutframe history``: the account's exports and deltas, newest first.

    Parameters
    ----------
    argv
        The arguments after ``history``.

    Returns
    -------
    int
        The exit status.
    """
    p = argparse.ArgumentParser(
        prog="scoutframe history",
        description="List the account's exports (kind full) and delta "
        "downloads (kind delta), newest first. Signed download links "
        "are never shown.",
    )
    add_json_flag(p)
    options = p.parse_args(argv)

    def body() -> int:
        with open_client() as client:
            rows = frame_rows(client.history.list())
        if options.json:
            print_json(rows)
            return 0
        for row in rows:
            row["filters"] = filters_as_flags(row.get("filters"))
        print_table(rows, _HISTORY_COLUMNS, empty="no exports yet")
        return 0

    return run("history", body)


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(text)
    return value


_seconds.__name__ = "number of seconds > 0"


def exports_parser() -> argparse.ArgumentParser:
    """Return the parser of ``scoutframe exports``."""
    p = argparse.ArgumentParser(
        prog="scoutframe exports",
        description="Exports started from this machine (their handles "
        "are kept in scoutframe's state directory), and how to finish "
        "one without paying again.",
    )
    sub = p.add_subparsers(dest="action", required=True, metavar="action")
    listing = sub.add_parser(
        "list",
        help="the exports started here and not downloaded yet",
        description="List the exports whose handles are saved on this "
        "machine, newest first: by default those not delivered yet.",
    )
    listing.add_argument(
        "--all",
        dest="include_done",
        action="store_true",
        help="also the exports already downloaded or failed",
    )
    add_json_flag(listing)
    resume = sub.add_parser(
        "resume",
        help="wait for an export and download it (no new charge)",
        description="Wait for an export started earlier (by a search that "
        "was interrupted, or in another process) and download its CSV. "
        "It is paid for already: nothing is charged again.",
    )
    resume.add_argument(
        "job_id",
        metavar="JOB_ID",
        help="the task id or search id (`scoutframe exports list`, `scoutframe history`)",
    )
    resume.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="FILE.csv",
        help="where to write the export's CSV; its directory must exist",
    )
    resume.add_argument(
        "--timeout",
        type=_seconds,
        default=600.0,
        metavar="SECONDS",
        help="how long to wait for the export to be ready (default 600)",
    )
    add_json_flag(resume)
    return p


def exports_main(argv: list[str]) -> int:
    """Run ``scoutframe exports list | resume``.

    Parameters
    ----------
    argv
        The arguments after ``exports``.

    Returns
    -------
    int
        The exit status.
    """
    options = exports_parser().parse_args(argv)
    if options.action == "list":
        return run("exports list", lambda: _list(options))
    return run("exports resume", lambda: _resume(options))


def _job_fields(job: ExportJob) -> dict[str, Any]:
    data = job.to_dict()  # ids, filters, counts and times: no credential, no signed URL
    return {
        "job_id": job.job_id,
        "task_id": data.get("task_id"),
        "search_id": data.get("search_id"),
        "state": data.get("state"),
        "lead_count": data.get("lead_count"),
        "created_at": data.get("created_at"),
        "history_id": data.get("history_id"),
        "origin": data.get("origin"),
        "filters": data.get("filters"),
    }


def _list(options: argparse.Namespace) -> int:
    with open_client() as client:
        rows = [
            _job_fields(job) for job in client.exports.list_saved(include_done=options.include_done)
        ]
    if options.json:
        print_json(rows)
        return 0
    for row in rows:
        row["filters"] = filters_as_flags(row.get("filters"))
    empty = (
        "no saved exports"
        if options.include_done
        else ("no export waiting to be downloaded (--all lists the finished ones too)")
    )
    print_table(rows, _JOB_COLUMNS, empty=empty)
    return 0


def _resume(options: argparse.Namespace) -> int:
    target: Path = options.output
    check_file_target(target, suffixes=None)
    with open_client() as client:
        job = client.exports.resume(options.job_id)
        try:
            job.wait(timeout=options.timeout)
            job.download(target)
        except KeyboardInterrupt as exc:
            exc.add_note(_again(job, target))
            raise
    os.chmod(target, umask_mode())  # a report: readable as any new file of the user is
    fields = {**_job_fields(job), "path": str(target), "credits_spent": 0}
    if options.json:
        print_json(fields)
    else:
        rows = f"{job.lead_count:,} contacts" if job.lead_count is not None else "its contacts"
        print(f"downloaded export {job.job_id} ({rows}) to {target}; no credits spent")
    return 0


def _again(job: ExportJob, target: Path) -> str:
    return (
        f"export {job.job_id} is paid for; run `scoutframe exports resume {job.job_id} "
        f"-o {target}` again to finish it (nothing is charged again)"
    )
