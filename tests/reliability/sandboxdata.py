"""The reliability suite's sandbox data: generated once per session, hard-linked into each user."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def linked_data_dir(tmp_path_factory: pytest.TempPathFactory, name: str, contacts: int) -> Path:
    """Return a fresh sandbox data directory holding the session's shared dataset (hard links).

    A sandbox writes its state beside the dataset, so each module gets a directory of its own;
    the dataset of ``contacts`` (seed 0) is generated once per session (per xdist worker).
    """
    from scoutframe.sandbox.dataset import load_or_generate

    base = tmp_path_factory.getbasetemp() / f"reliability-dataset-{contacts}"
    base.mkdir(exist_ok=True)
    load_or_generate(base, contacts=contacts, seed=0)
    data_dir = tmp_path_factory.mktemp(name)
    for source in base.glob("*.parquet"):
        os.link(source, data_dir / source.name)
    return data_dir
