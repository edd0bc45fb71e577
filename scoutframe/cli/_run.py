"""How every command runs: exit codes, one-line errors, warnings as notes, Ctrl-C.

Exit codes: 0 success; 1 a scoutframe error (one line ``scoutframe <cmd>: message``, no
traceback); 2 a usage error (argparse, a bad value, a missing output directory); 130 Ctrl-C
(after the library's note on what was paid and how to resume).
"""

from __future__ import annotations

import contextlib
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TextIO

from ._terms import in_cli_terms, notes_in_cli_terms

if TYPE_CHECKING:
    from ..api.client import Client

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "UsageError",
    "open_client",
    "run",
    "say",
    "verbose_logging",
]

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: 128 + SIGPIPE: what a shell shows for a writer whose reader went away.
EXIT_BROKEN_PIPE = 141
#: The start of a notice (``progress.notify``) or a log line of a scoutframe logger.
_NOTICE = re.compile(r"scoutframe(\.[\w.]+)?: ")


class UsageError(Exception):
    """A usage problem the command line finds itself (exit status 2), e.g. a missing directory."""


def say(command: str, message: str) -> None:
    """Print ``scoutframe <command>: message`` on standard error, as one line."""
    print(f"scoutframe {command}: {_one_line(message)}", file=sys.stderr, flush=True)


def _one_line(message: str) -> str:
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


class _CliStream:
    """Standard error, with the library's ``scoutframe: ...`` notices said in CLI words."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        prefix = _NOTICE.match(text)
        if prefix is not None:
            text = prefix.group(0) + in_cli_terms(text[prefix.end() :])
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def _cli_stderr() -> Iterator[None]:
    original = sys.stderr
    sys.stderr = _CliStream(original)
    try:
        yield
    finally:
        sys.stderr = original


def run(command: str, body: Callable[[], int]) -> int:
    """Run one command's work and turn what happens into its exit status.

    Parameters
    ----------
    command
        The command's name as typed (``"search"``, ``"cache prune"``), for the messages.
    body
        The work; returns the exit status of a normal end.

    Returns
    -------
    int
        ``body``'s status, else 1 (a scoutframe error or a failed file operation), 2 (a usage
        error) or 130 (Ctrl-C). Library warnings become ``note:`` lines on standard error.
    """
    from ..errors import ArgumentError, ScoutError

    status: int
    lines: list[str] = []
    with _cli_stderr(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            status = body()
        except BrokenPipeError:  # `scoutframe history | head`: the reader has had enough
            _silence_stdout()
            status = EXIT_BROKEN_PIPE
        except KeyboardInterrupt as exc:
            lines = [f"note: {note}" for note in notes_in_cli_terms(exc)]
            lines.append("interrupted")
            status = EXIT_INTERRUPTED
        except (UsageError, ArgumentError) as exc:
            lines = [in_cli_terms(str(exc))]
            status = EXIT_USAGE
        except ScoutError as exc:
            lines = [in_cli_terms(str(exc)), *(f"note: {n}" for n in notes_in_cli_terms(exc))]
            status = EXIT_ERROR
        except OSError as exc:  # a file that cannot be written, a full disk
            where = f": {exc.filename}" if exc.filename else ""
            lines = [f"{exc.strerror or exc}{where}"]
            status = EXIT_ERROR
    # Warnings (masked emails, schema drift) are messages for the user, not code locations.
    for message in dict.fromkeys(str(item.message) for item in caught):
        say(command, f"note: {in_cli_terms(message)}")
    for line in lines:
        say(command, line)
    return status


@contextlib.contextmanager
def verbose_logging(enabled: bool) -> Iterator[None]:
    """Log scoutframe's requests (redacted) to standard error while the block runs (``-v``).

    The handler goes on the ``scoutframe`` logger and is removed afterwards, so a command run
    in-process (a notebook, a test) leaves the logging configuration as it found it.
    """
    if not enabled:
        yield
        return
    import logging

    logger = logging.getLogger("scoutframe")
    handler = logging.StreamHandler(_CliStream(sys.stderr))
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _silence_stdout() -> None:
    """Point standard output at the null device: flushing it at exit must not fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (a test's capture)
        return


def open_client() -> Client:
    """Return a client configured as ``scoutframe.Client()`` is: environment, config, keyring.

    Raises
    ------
    ConfigurationError
        A setting is malformed or unsafe (the message names it).
    """
    from ..api.client import Client

    return Client()
