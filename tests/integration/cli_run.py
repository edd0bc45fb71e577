"""Running the ``scoutframe`` command in-process, as the CLI tests do."""

from __future__ import annotations

from typing import Any

import pytest

from scoutframe.cli import main


def cli(
    capsys: pytest.CaptureFixture[str], account: dict[str, Any], *argv: str, status: int = 0
) -> tuple[str, str]:
    """Run one command; check its status and that no API key appears in what it printed."""
    try:
        got = main(list(argv))
    except SystemExit as exit_info:
        got = int(exit_info.code or 0)
    captured = capsys.readouterr()
    assert got == status, captured.err
    assert account["api_key"] not in captured.out + captured.err
    assert "Traceback" not in captured.err
    return captured.out, captured.err
