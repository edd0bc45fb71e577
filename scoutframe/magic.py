"""The ``%%spherescout`` cell magic: a search into a notebook variable, as ``%%bigquery`` does.

``%load_ext scoutframe`` registers it. The first line names the variable and the read's
options; the filters are the cell's lines, ``key: value`` (or the ``scoutframe search``
flags, on the first line or in the cell)::

    %%spherescout df --client client --max-credits 500
    countries: FR, BE
    category: Plumber
    email: true

With flags only, the line magic does the same: ``%spherescout df --countries FR --email``.
IPython expands ``{name}`` and ``$name`` in the first line (``--cache-dir {cache_dir}``); the
cell's other lines are taken as written.

Options: ``--dry-run`` (show the plan, spend nothing), ``--method auto|pages|export``,
``--max-credits N``, ``--cache [refresh|only]`` with ``--max-age`` and ``--cache-dir``,
``--nrows``, ``--columns A,B``, ``--dtype-backend``, ``--all``, ``--no-progress`` and
``--client NAME`` (a :class:`~scoutframe.Client` in the notebook; default ``Client()`` from
the environment). The read is :func:`scoutframe.read_spherescout` itself, so it spends under
the same rule: only with ``--method export`` or a budget. A refused or failed read is one
line (IPython's ``UsageError``, in the flags' words), and leaves the variable as it was.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import warnings
from typing import Any, NoReturn

from .api.filters import BOOLEAN_FIELDS
from .cli import in_cli_terms
from .errors import ScoutError

__all__ = ["load_ipython_extension", "parse_cell", "spherescout"]

#: ``scoutframe search``'s flag spellings, and the read_spherescout keyword each one means.
_FLAG_NAMES = {
    "level1": "level1_locations",
    "level2": "level2_locations",
    "level3": "level3_locations",
}
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _usage(f"%%spherescout: {message}")


def _usage(message: str) -> Exception:
    from IPython.core.error import UsageError  # only ever run inside IPython

    return UsageError(message)


def _parser() -> _Parser:
    p = _Parser(prog="%%spherescout", add_help=False, allow_abbrev=False)
    p.add_argument("variable", nargs="?", default=None)
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--method", choices=("auto", "pages", "export"), default="auto")
    p.add_argument("--max-credits", type=int, default=None)
    p.add_argument(
        "--cache", nargs="?", const="use", default=None, choices=("use", "refresh", "only")
    )
    p.add_argument("--max-age", default=None)
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--nrows", type=int, default=None)
    p.add_argument("--columns", default=None)
    p.add_argument("--dtype-backend", choices=("pyarrow", "numpy_nullable"), default="pyarrow")
    p.add_argument("--all", dest="include_all", action="store_true")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None)
    p.add_argument("--client", default=None)
    return p


def _key(text: str) -> str:
    key = text.strip().lower().replace("-", "_")
    return _FLAG_NAMES.get(key, key)


def _value(key: str, text: str) -> Any:
    """One filter's text as read_spherescout takes it: a boolean, or a list of ids/names."""
    if key in BOOLEAN_FIELDS:
        word = text.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise _usage(f"%%spherescout: {key}: {text!r} is not true or false")
    items = [item.strip() for item in text.split(",") if item.strip()]
    return [int(item) if item.isdigit() else item for item in items]


def _add(filters: dict[str, Any], key: str, value: Any) -> None:
    if isinstance(value, list) and isinstance(filters.get(key), list):
        filters[key] = [*filters[key], *value]
    else:
        filters[key] = value


def _flag_filters(tokens: list[str]) -> dict[str, Any]:
    """Read filters given as ``scoutframe search`` flags (``--countries FR --no-website``)."""
    filters: dict[str, Any] = {}
    position = 0
    while position < len(tokens):
        token = tokens[position]
        if not token.startswith("--") or len(token) == 2:
            raise _usage(f"%%spherescout: unexpected {token!r}; filters are --NAME VALUE flags")
        name, equals, text = token[2:].partition("=")
        key = _key(name)
        if not equals and key.startswith("no_") and key[3:] in BOOLEAN_FIELDS:
            _add(filters, key[3:], False)
        elif not equals and key in BOOLEAN_FIELDS:
            _add(filters, key, True)
        else:
            if not equals:
                position += 1
                if position == len(tokens) or tokens[position].startswith("--"):
                    raise _usage(f"%%spherescout: {token} needs a value")
                text = tokens[position]
            _add(filters, key, _value(key, text))
        position += 1
    return filters


def parse_cell(line: str, cell: str) -> tuple[argparse.Namespace, dict[str, Any]]:
    """Split a ``%%spherescout`` cell into its options and its filters.

    Parameters
    ----------
    line
        The text after ``%%spherescout`` on the first line.
    cell
        The cell's other lines: ``key: value`` filters, flag lines, comments (``#``).

    Returns
    -------
    tuple
        The parsed options and the filters, as keywords of ``read_spherescout``.
    """
    tokens = shlex.split(line)
    pairs: list[tuple[str, str]] = []
    for raw in cell.splitlines():
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("--"):
            tokens += shlex.split(text)
            continue
        key, colon, value = text.partition(":")
        if not colon or not key.strip():
            raise _usage(f"%%spherescout: {text!r} is not a 'key: value' filter line")
        pairs.append((_key(key), value))
    options, rest = _parser().parse_known_args(tokens)
    if options.variable is not None and not options.variable.isidentifier():
        raise _usage(f"%%spherescout: {options.variable!r} is not a variable name")
    filters = _flag_filters(rest)
    for key, value in pairs:
        _add(filters, key, _value(key, value))
    return options, filters


def _read_options(options: argparse.Namespace, client: Any) -> dict[str, Any]:
    cache: dict[str, Any] = {}
    if options.cache is not None:
        cache["cache"] = {"use": True, "refresh": "refresh", "only": "only"}[options.cache]
        if options.max_age is not None:
            cache["max_age"] = options.max_age
        if options.cache_dir is not None:
            cache["cache_dir"] = options.cache_dir
    columns = [c.strip() for c in options.columns.split(",")] if options.columns else None
    return {
        "client": client,
        "method": options.method,
        "max_credits": options.max_credits,
        "dry_run": options.dry_run,
        "nrows": options.nrows,
        "columns": columns,
        "dtype_backend": options.dtype_backend,
        "progress": options.progress,
        "all": options.include_all,
        **cache,
    }


def _warn_in_cell(caught: list[warnings.WarningMessage]) -> None:
    """Warn again what the read warned, in the flags' words, pointing at the user's cell.

    The read's warnings point at the first frame outside scoutframe, which in a magic is
    IPython's machinery; the cell is the first frame outside both.
    """
    frame, level = sys._getframe(1), 2
    while frame.f_back is not None and str(frame.f_globals.get("__name__")).startswith(
        ("scoutframe.", "IPython.", "ipykernel.")
    ):
        frame, level = frame.f_back, level + 1
    for found in caught:
        category = found.category
        text = in_cli_terms(str(found.message))
        warnings.warn(category(text), stacklevel=level)


def spherescout(shell: Any, line: str, cell: str) -> Any:
    """Run one ``%%spherescout`` cell in *shell*; see the module's docstring.

    Returns
    -------
    object
        The plan with ``--dry-run``; the frame when no variable is named; otherwise ``None``
        (the frame is in the variable).
    """
    from .read import read_spherescout

    options, filters = parse_cell(line, cell)
    client = None
    if options.client is not None:
        if options.client not in shell.user_ns:
            raise _usage(f"%%spherescout: --client {options.client}: no such variable")
        client = shell.user_ns[options.client]
    try:
        with warnings.catch_warnings(record=True) as caught:
            result = read_spherescout(filters, **_read_options(options, client))
    except ScoutError as exc:
        raise _usage(in_cli_terms(str(exc))) from exc
    _warn_in_cell(caught)
    if options.dry_run or options.variable is None:
        return result
    shell.user_ns[options.variable] = result
    return None


def load_ipython_extension(shell: Any) -> None:
    """Register ``%%spherescout`` and the contacts display in *shell* (``%load_ext scoutframe``)."""
    from . import display

    def magic(line: str, cell: str | None = None) -> Any:
        return spherescout(shell, line, cell or "")

    magic.__doc__ = __doc__
    # A line magic too: IPython refuses a cell magic whose body is empty, and flags alone
    # make one (`%spherescout df --countries FR --category Plumber`)
    shell.register_magic_function(magic, magic_kind="line_cell", magic_name="spherescout")
    display.register(shell)
