"""Unit tests of the progress bars (no sockets)."""

from __future__ import annotations

import io

import pytest

from scoutframe.progress import ENV_VAR, Bar, progress_enabled


@pytest.mark.parametrize("value", ["0", "false", "OFF", "no"])
def test_environment_variable_silences(monkeypatch, value):
    monkeypatch.setenv(ENV_VAR, value)
    assert progress_enabled() is False
    assert progress_enabled(True) is True  # an explicit argument wins


def test_default_is_on_and_false_wins(monkeypatch):
    assert progress_enabled() is True
    monkeypatch.setenv(ENV_VAR, "1")
    assert progress_enabled(False) is False


def test_disabled_bar_is_a_no_op():
    bar = Bar.rows(False, 10, "pages")
    bar.update(5)
    bar.set_total(20)
    bar.status("x")
    bar.close()
    assert bar.enabled is False


def test_enabled_bar_writes_text(monkeypatch):
    out = io.StringIO()
    with Bar(True, total=10, desc="parsing", file=out, mininterval=0) as bar:
        assert bar.enabled
        bar.update(10)
        bar.status("ready")
    assert "parsing" in out.getvalue()
    assert "10/10" in out.getvalue()
    assert bar.enabled is False


def test_download_bar_counts_bytes():
    bar = Bar.download(True, total=None)
    bar._bar.fp = io.StringIO()  # keep the test output clean
    bar.set_total(2048)
    bar.update(2048)
    assert bar._bar.n == 2048
    assert bar._bar.unit == "B"
    bar.close()
