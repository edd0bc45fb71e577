"""Paths: unwritable directories refused before paying, planted links never followed, ids tamed.

* A state or cache directory that cannot be written gets a clear error (naming the path)
  before anything is paid: the ledger is unchanged. The forms: its parent is a regular file,
  and it is a regular file. Not mode 0500: CI runs as root, which that mode does not stop;
  the two file forms stop root too. An output path (``to_parquet``/``to_csv``) under a file
  is refused likewise.
* A symbolic link planted at a path scoutframe writes, pointing at a victim file outside,
  leaves the victim unchanged: the job handle in ``state_dir/jobs``, the export's file and
  its ``.part`` file, the cache entry's ``data.parquet`` and ``_manifest.json``, the output
  of ``to_parquet``/``to_csv``. (Temporary files are made by ``mkstemp``: a random name
  opened with ``O_EXCL``, which never follows a link, so no link can be planted there.)
* Ids from a server (``task_id``, ``search_id``) holding ``/``, ``..``, NUL or thousands of
  characters never steer a file name outside the state directory: a scripted server sends
  them through a whole export read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sandboxdata import linked_data_dir
from scene import SEARCH_ID, Scene, export_csv, json_answer
from scripted import ScriptedServers

import scoutframe
from scoutframe.cache.entry import DATA, MANIFEST
from scoutframe.errors import ArgumentError, ScoutError
from scoutframe.sandbox import Sandbox

FILTERS: dict[str, Any] = {"countries": "FR"}


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(
        contacts=5_000,
        data_dir=linked_data_dir(tmp_path_factory, "sandbox-paths", 5_000),
        rate_limit=0,
    ) as sandbox:
        yield sandbox


class Place:
    """An account and a client whose state directory and cache are given."""

    def __init__(self, sb: Sandbox, tmp: Path, state: Path) -> None:
        self.sb = sb
        self.account = sb.admin.create_account(credits=50_000)
        self.client = scoutframe.Client(
            self.account["api_key"],
            base_url=sb.url,
            allow_http=True,
            state_dir=state,
            config_file=tmp / "none.toml",
            max_retries=1,
            backoff_factor=0.01,
            poll_interval=(0.01, 0.05),
        )

    def read(self, **options: Any) -> pd.DataFrame:
        return scoutframe.read_spherescout(
            **FILTERS, method="export", client=self.client, progress=False, **options
        )

    def charges(self) -> list[int]:
        return [-e["delta"] for e in self.sb.admin.ledger(self.account["id"]) if e["delta"] < 0]


def _unwritable(tmp: Path, form: str) -> Path:
    """A directory path scoutframe cannot write in, made in the way ``form`` names."""
    if form == "parent is a file":
        (tmp / "a-file").write_text("not a directory\n")
        return tmp / "a-file" / "dir"
    if form == "is a file":
        (tmp / "a-file").write_text("not a directory\n")
        return tmp / "a-file"
    raise AssertionError(form)


FORMS = ["parent is a file", "is a file"]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("which", ["state", "cache"])
def test_an_unwritable_directory_is_refused_before_anything_is_paid(
    sb: Sandbox, tmp_path: Path, figures: Any, which: str, form: str
) -> None:
    bad = _unwritable(tmp_path, form)
    if which == "state":
        place = Place(sb, tmp_path, bad)
        options: dict[str, Any] = {}
    else:
        place = Place(sb, tmp_path, tmp_path / "state")
        options = {"cache": True, "cache_dir": bad}
    with pytest.raises(ScoutError) as caught:
        place.read(**options)
    assert str(bad) in str(caught.value)
    assert isinstance(caught.value, OSError) or "cache directory" in str(caught.value)
    assert place.charges() == []  # refused before the export start
    place.client.close()
    figures.add("paths: unwritable directories tried")


@pytest.mark.parametrize("writer", ["to_parquet", "to_csv"])
def test_an_output_path_under_a_file_is_refused(tmp_path: Path, writer: str) -> None:
    frame = scoutframe.read_export_csv(_csv_file(tmp_path))
    (tmp_path / "a-file").write_text("not a directory\n")
    target = tmp_path / "a-file" / "out.data"
    with pytest.raises(ArgumentError, match="is a file, not a directory"):
        getattr(frame.spherescout, writer)(target)


def _csv_file(tmp: Path) -> Path:
    path = tmp / "export.csv"
    path.write_bytes(export_csv())
    return path


class Victims:
    """Files outside every directory scoutframe writes, that links point at."""

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "elsewhere"
        self.dir.mkdir()
        self.planted: dict[Path, tuple[Path, bytes]] = {}

    def plant(self, at: Path, content: bytes | None = None) -> None:
        """Put a link at ``at`` to a victim holding ``content`` (default: ``at``'s own bytes)."""
        victim = self.dir / f"victim-{len(self.planted)}"
        data = content if content is not None else (at.read_bytes() if at.exists() else b"")
        victim.write_bytes(data or b"the victim's own bytes\n")
        at.parent.mkdir(parents=True, exist_ok=True)
        at.unlink(missing_ok=True)
        at.symlink_to(victim)
        self.planted[at] = (victim, victim.read_bytes())

    def check(self) -> int:
        """Every victim unchanged; return how many."""
        for at, (victim, data) in self.planted.items():
            assert victim.read_bytes() == data, f"{victim} was written through the link at {at}"
        return len(self.planted)


def test_links_planted_where_files_are_written_are_not_followed(
    sb: Sandbox, tmp_path: Path, figures: Any
) -> None:
    victims = Victims(tmp_path)
    state, cache = tmp_path / "state", tmp_path / "cache"
    place = Place(sb, tmp_path, state)
    first = place.read(cache=True, cache_dir=cache)
    (entry,) = [p for p in cache.iterdir() if p.is_dir()]
    (handle,) = (state / "jobs").glob("*.json")
    job = place.client.export_job(handle.stem)

    # The cache entry's table and manifest (links to copies, so the entry still reads), and
    # the job handle; a refresh by delta rewrites all three.
    victims.plant(entry / DATA)
    victims.plant(entry / MANIFEST)
    victims.plant(handle)
    sb.admin.add_contacts(200)
    place.read(cache="refresh", cache_dir=cache, max_credits=10_000)
    for path in (entry / DATA, entry / MANIFEST):
        assert not path.is_symlink()
        assert path.is_file()  # the new file is in the link's place

    # A download's final file: the link is replaced, the victim untouched.
    target = tmp_path / "out" / "export.csv"
    victims.plant(target)
    job.download(target)
    assert not target.is_symlink()
    assert len(scoutframe.read_export_csv(target)) == len(first)

    # A download's part file: refused (never opened through the link).
    other = tmp_path / "out" / "again.csv"
    victims.plant(job.part_path(other))
    with pytest.raises(scoutframe.LocalFileError, match="symbolic link"):
        job.download(other)
    assert not other.exists()

    # The outputs of to_parquet and to_csv.
    for writer, name in (("to_parquet", "frame.parquet"), ("to_csv", "frame.csv")):
        out = tmp_path / "out" / name
        victims.plant(out)
        getattr(first.spherescout, writer)(out)
        assert not out.is_symlink()
    figures.add("paths: links planted (victims unchanged)", victims.check())
    place.client.close()


HOSTILE_IDS = [
    "../../escaped",
    "/tmp/absolute-escape",
    "a/../../b",
    "nul\x00byte",
    "x" * 5_000,
    ".hidden",
    "..",
]


@pytest.mark.parametrize("task_id", HOSTILE_IDS, ids=lambda i: repr(i[:12]))
def test_hostile_ids_never_steer_a_file_name_outside_the_state_directory(
    tmp_path: Path, figures: Any, task_id: str
) -> None:
    with ScriptedServers() as servers:
        scene = Scene(servers, tmp_path / "scene")
        hostile = {"task_id": task_id, "search_id": f"{SEARCH_ID}/{task_id}"}
        scene.api.script(
            "GET",
            "/api/download-csv",
            lambda _: json_answer({**hostile, "status": "pending", "lead_count": scene.rows}, 202),
        )
        scene.api.script(
            "GET",
            "/api/download-status/",
            lambda _: json_answer(
                {
                    **hostile,
                    "status": "ready",
                    "lead_count": scene.rows,
                    "progress": 1.0,
                    "download_url": scene.download_url,
                    "expires_at": "2099-01-01T00:00:00Z",
                }
            ),
        )
        try:
            client = scene.client()
            before = _tree(tmp_path)
            frame = scene.read(client, cache=None, cache_dir=None)
            assert len(frame) == scene.rows
        finally:
            scene.close()
    new = _tree(tmp_path) - before
    assert new, "the read wrote its handle"
    state = scene.state_dir.resolve()
    for path in new:
        assert path.resolve().is_relative_to(state), path
        assert len(path.name) < 256
    handles = list((scene.state_dir / "jobs").glob("*.json"))
    assert len(handles) == 1
    assert not (tmp_path / "escaped").exists()
    assert not Path("/tmp/absolute-escape.json").exists()
    figures.add("paths: hostile ids sent through a read")


def _tree(top: Path) -> set[Path]:
    return {p for p in top.rglob("*") if p.is_file() or p.is_symlink()}


def test_ids_that_sanitise_alike_keep_files_of_their_own(tmp_path: Path) -> None:
    """Two hostile ids that sanitise alike keep two files (a hash of the whole id)."""
    store_dir = tmp_path / "state"
    client = scoutframe.Client(
        "0" * 64,
        base_url="http://127.0.0.1:9",
        allow_http=True,
        state_dir=store_dir,
        config_file=tmp_path / "none.toml",
    )
    store = client.job_store
    paths = {store.path_for(i) for i in ("a/b", "a_b", "a\x00b", "a..b/")}
    assert len(paths) == 4
    for path in paths:
        assert path.parent == store.directory
    client.close()
