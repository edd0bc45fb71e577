"""Each optional part, used without its extra, says in one line which extra to install."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import scoutframe


def _one_line_naming(error: BaseException, feature: str, extra: str) -> None:
    message = str(error)
    assert "\n" not in message
    assert message.startswith(f"{feature} needs ")
    assert message.endswith(f'pip install "scoutframe[{extra}]"')


def test_search_form_names_the_notebook_extra() -> None:
    with pytest.raises(ModuleNotFoundError) as caught:
        scoutframe.search_form()  # type: ignore[call-arg]
    _one_line_naming(caught.value, "search_form", "notebook")
    with pytest.raises(ModuleNotFoundError) as caught:
        _ = scoutframe.SearchForm
    _one_line_naming(caught.value, "SearchForm", "notebook")


def test_to_excel_names_the_excel_extra(tmp_path: Path) -> None:
    frame = pd.DataFrame({"place_id": ["p1"], "name": ["Plomberie"]})
    with pytest.raises(ModuleNotFoundError) as caught:
        frame.spherescout.to_excel(tmp_path / "contacts.xlsx")
    _one_line_naming(caught.value, "to_excel", "excel")
    assert not (tmp_path / "contacts.xlsx").exists()


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        self.send_error(500)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def server() -> Iterator[str]:
    """A loopback server that records every request (there must be none)."""
    _Recorder.seen = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_return_type_polars_names_the_polars_extra_before_any_request(
    server: str, tmp_path: Path
) -> None:
    client = scoutframe.Client(
        "a" * 64, server, allow_http=True, state_dir=tmp_path, config_file=tmp_path / "none"
    )
    with pytest.raises(ModuleNotFoundError) as caught:
        scoutframe.read_spherescout(
            countries="FR", method="export", return_type="polars", client=client
        )
    _one_line_naming(caught.value, "return_type='polars'", "polars")
    assert _Recorder.seen == []  # refused before the first request: nothing could be paid
    with pytest.raises(ModuleNotFoundError) as caught:
        pd.DataFrame({"place_id": ["p1"]}).spherescout.to_polars()
    _one_line_naming(caught.value, "to_polars", "polars")


@pytest.mark.parametrize("command", ["sandbox", "demo"])
def test_the_sandbox_commands_name_the_sandbox_extra(command: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scoutframe.cli", command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr  # no traceback
    assert lines[0].startswith(f"scoutframe: scoutframe {command} needs ")
    assert lines[0].endswith('pip install "scoutframe[sandbox]"')
    assert done.stdout == ""


def test_the_rest_works_without_any_extra(tmp_path: Path) -> None:
    frame = pd.DataFrame({"place_id": ["p1", "p2"], "name": ["A", "B"]})
    path = frame.spherescout.to_parquet(tmp_path / "contacts.parquet")
    assert scoutframe.read_parquet(path)["name"].tolist() == ["A", "B"]


def test_delta_lake_names_the_delta_extra_before_any_request(server: str, tmp_path: Path) -> None:
    frame = pd.DataFrame({"place_id": ["p1"], "name": ["Plomberie"]})
    with pytest.raises(ModuleNotFoundError) as caught:
        frame.spherescout.to_delta(tmp_path / "table")
    _one_line_naming(caught.value, "to_delta", "delta")
    with pytest.raises(ModuleNotFoundError) as caught:
        scoutframe.write_delta(frame, tmp_path / "table")
    _one_line_naming(caught.value, "write_delta", "delta")
    with pytest.raises(ModuleNotFoundError) as caught:
        scoutframe.read_delta(tmp_path / "table")
    _one_line_naming(caught.value, "read_delta", "delta")
    assert not (tmp_path / "table").exists()
    client = scoutframe.Client(
        "a" * 64, server, allow_http=True, state_dir=tmp_path, config_file=tmp_path / "none"
    )
    with pytest.raises(ModuleNotFoundError) as caught:
        scoutframe.read_spherescout(
            countries="FR",
            method="export",
            cache=True,
            cache_format="delta",
            cache_dir=tmp_path / "cache",
            client=client,
        )
    _one_line_naming(caught.value, "cache_format='delta'", "delta")
    assert _Recorder.seen == []  # refused before the first request: nothing could be paid
