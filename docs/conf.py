"""Sphinx configuration of scoutframe's documentation site.

Build: ``.venv/bin/sphinx-build -W --keep-going -b html docs docs/_build/html``. The user
guides are the notebooks of ``notebooks/``, copied into ``docs/_notebooks/`` and executed
against the sandbox at build time (an error in a notebook fails the build).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import scoutframe

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

project = "scoutframe"
author = "scoutframe maintainers"
copyright = "2026, scoutframe maintainers"
release = version = scoutframe.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_nb",
]

# The guides: the project's notebooks, run against the sandbox when the site is built.
_NOTEBOOKS = HERE / "_notebooks"
shutil.rmtree(_NOTEBOOKS, ignore_errors=True)
_NOTEBOOKS.mkdir()
for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
    shutil.copy2(notebook, _NOTEBOOKS / notebook.name)

nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_timeout = 300
nb_execution_show_tb = True
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "README.md"]

autosummary_generate = True
autodoc_typehints = "none"  # numpydoc shows the types of the signature
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

html_theme = "pydata_sphinx_theme"
html_title = f"scoutframe {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
