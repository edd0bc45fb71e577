"""The CI matrix: ``nox`` runs every default session (the README's test command, ``.ci/run``).

Sessions (``nox -l`` lists them):

* ``lint``: ruff (check and format), the pre-commit config, mypy strict on the package.
* ``build``: the sdist and wheel (``python -m build``), then ``twine check --strict``.
* ``bare``: the wheel with no extra; the one-line "install the extra" messages
  (``tests/bare``).
* ``tests``: the suite, one cell per Python, pandas lines spread over them (``CELLS``).
* ``docs``: the site, its guides (the notebooks) executed on the sandbox, warnings as errors.

Environments are built by uv (seconds, not minutes). An interpreter that is not on ``PATH``
is looked for under pyenv's versions; one that is nowhere makes its sessions skip, and says
so both when the file loads and in nox's summary (never silently, on CI too).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent

#: The Pythons the package supports and tests (the classifiers list the same ones).
PYTHONS = ("3.11", "3.12", "3.13")
#: The one every single-environment session uses: the oldest supported, Debian 12's.
DEFAULT_PYTHON = PYTHONS[0]

#: The extras every full test environment installs.
EXTRAS = "sandbox,notebook,keyring,polars,excel,s3,delta"
#: pandas lines: the floor, the newest 2.x (what a `pandas<3` pin resolves to), the newest.
PANDAS = {"2.2": "pandas==2.2.*", "2.3": "pandas==2.3.*", "3": "pandas>=3,<4"}
#: The whole suite (notebooks, reliability, browser) runs on the two corners: the oldest
#: Python with the oldest pandas, the newest Python with the newest pandas. The middle Python
#: runs the unit, sandbox and widget tests on the newest pandas 2.x (the sandbox tests serve
#: and read over loopback HTTP): with the integration tests too, the three cells took more
#: than CI's 20 minutes on two cores.
QUICK = ("tests/unit", "tests/sandbox", "tests/widgets")
CELLS = [
    ("3.11", "2.2", ()),
    ("3.12", "2.3", QUICK),
    ("3.13", "3", ()),
]
#: pytest-xdist workers: three on the machine's two cores, since part of the suite's wall time
#: is spent waiting (children starting, polls, S3 leases): 9 min 22 s with three against
#: 10 min 6 s with two (four: 10 min 40 s). No fixture shares a fixed path or port
#: (sandboxes, caches and state live under each test's tmp_path, ports are free ones).
#: ``loadfile`` keeps each file on one worker: a notebook's cells share one kernel, in order.
WORKERS = "3"
DIST = "loadfile"
#: uv installs without compiling bytecode and CI's shell sets PYTHONDONTWRITEBYTECODE=1: then
#: every interpreter the suite starts (xdist workers, killed readers, sandbox processes,
#: notebook kernels) compiled pandas, pyarrow and the test tools from source again (`import
#: scoutframe` 3.9 s of CPU, not 1.0 s; a test cell 10 min, not 7). The sessions that run code
#: let Python keep what it compiles (the first process writes it, the others read it), which
#: costs less than uv's `--compile-bytecode` of every installed file (40 s per environment).
WRITE_BYTECODE: dict[str, str | None] = {"PYTHONDONTWRITEBYTECODE": None}

nox.options.default_venv_backend = "uv"
nox.options.download_python = "never"  # no interpreter from the internet: use what is here
nox.options.error_on_missing_interpreters = False  # skip with a reason, even where CI=true
nox.options.reuse_venv = "no"
nox.options.sessions = ["lint", "build", "bare", "tests", "docs"]


def _works(executable: str) -> bool:
    """Whether ``executable`` runs (a pyenv shim of an inactive version does not)."""
    try:
        argv = [executable, "-c", "import sys"]
        done = subprocess.run(argv, capture_output=True, timeout=30)  # noqa: S603 - no shell
    except OSError:
        return False
    return done.returncode == 0


def _pyenv_python(version: str) -> Path | None:
    """Find the newest pyenv build of ``version`` (``3.12``: ``versions/3.12.*/bin/python3.12``)."""
    versions = Path(os.environ.get("PYENV_ROOT", "~/.pyenv")).expanduser() / "versions"
    found = []
    for candidate in versions.glob(f"{version}.*/bin/python{version}"):
        patch = candidate.parent.parent.name.removeprefix(f"{version}.")
        if patch.isdigit() and _works(str(candidate)):
            found.append((int(patch), candidate))
    return max(found)[1] if found else None


def _expose_interpreters() -> None:
    """Put each supported Python on ``PATH`` as ``pythonX.Y``; say which ones are missing."""
    links = ROOT / ".nox" / "_interpreters"
    for version in PYTHONS:
        on_path = shutil.which(f"python{version}")
        if on_path is not None and _works(on_path):
            continue
        found = _pyenv_python(version)
        if found is None:
            print(
                f"nox: Python {version} is not on PATH nor under pyenv's versions: its "
                f"sessions are skipped (install it, e.g. `pyenv install {version}`)"
            )
            continue
        links.mkdir(parents=True, exist_ok=True)
        link = links / f"python{version}"
        link.unlink(missing_ok=True)
        link.symlink_to(found)
    if links.is_dir():
        os.environ["PATH"] = f"{links}{os.pathsep}{os.environ.get('PATH', '')}"


_expose_interpreters()


def _install_project(session: nox.Session, extras: str, *groups: str, pandas: str = "") -> None:
    args = ["-e", f".[{extras}]"] if extras else ["."]
    for group in groups:
        args += ["--group", group]
    if pandas:
        args.append(pandas)
    session.install(*args)


@nox.session(python=DEFAULT_PYTHON)
def lint(session: nox.Session) -> None:
    """Run ruff check, ruff format --check, the pre-commit config check, mypy (strict)."""
    _install_project(session, EXTRAS, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("pre-commit", "validate-config", ".pre-commit-config.yaml")
    session.run("mypy")


@nox.session(python=DEFAULT_PYTHON)
def build(session: nox.Session) -> None:
    """Build the sdist and the wheel in isolation, then check their metadata with twine."""
    session.install("--group", "release")
    dist = Path(session.create_tmp()) / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.run("python", "-m", "build", "--installer", "uv", "--outdir", str(dist), ".")
    session.run("twine", "check", "--strict", *(str(path) for path in sorted(dist.iterdir())))


@nox.session(python=DEFAULT_PYTHON)
def bare(session: nox.Session) -> None:
    """Install the wheel with no extra: each optional part must name the extra it needs."""
    _install_project(session, "", "test-bare")
    # Not the repository's addopts: nbval, which they name, is a test tool this venv lacks.
    session.run(
        *("pytest", "-p", "no:cacheprovider", "-o", "addopts=-ra --strict-markers", "tests/bare"),
        env=WRITE_BYTECODE,
    )


@nox.session
@nox.parametrize(
    ("python", "pandas", "paths"),
    CELLS,
    ids=[f"{python}-pandas{pandas}" for python, pandas, _ in CELLS],
)
def tests(session: nox.Session, pandas: str, paths: tuple[str, ...]) -> None:
    """Run the test suite on one Python and one pandas line (``CELLS`` says which)."""
    _install_project(session, EXTRAS, "test", pandas=PANDAS[pandas])
    session.run(
        "python", "-c", "import pandas, sys; print('pandas', pandas.__version__, sys.version)"
    )
    session.run(
        *("python", "-m", "pytest", "-n", WORKERS, "--dist", DIST, *paths, *session.posargs),
        env=WRITE_BYTECODE,
    )


@nox.session(python=DEFAULT_PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation site from the notebooks as stored; a warning fails it.

    The notebooks are not executed again here: the test cells just ran each of them under
    nbval, on both pandas lines (``--execute`` runs them at build time, as before).
    """
    _install_project(session, EXTRAS, "docs")
    execute = "--execute" in session.posargs
    mode = [] if execute else ["-D", "nb_execution_mode=off"]
    session.run(
        *("sphinx-build", *mode),
        *("-W", "--keep-going", "-q", "-b", "html", "docs", "docs/_build/html"),
        env=WRITE_BYTECODE,
    )
