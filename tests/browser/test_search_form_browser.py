"""The search form in a real browser: JupyterLab runs notebook 06, Chromium clicks the form.

JupyterLab starts headless on loopback (no token, a free port, the root dir a temporary copy
of ``notebooks/06-search-form.ipynb``, its settings and runtime files in the temporary
directory too). Playwright drives Debian's Chromium (``/usr/bin/chromium``; ``.ci/run``
installs it; no ``playwright install``), with every request off loopback refused: the notebook
must not need the internet. The test runs every cell but the last (which stops the notebook's
sandbox), picks a country and a category in the rendered form, waits for the live count to
change, clicks the preview, and saves screenshots to ``test-artifacts/search-form-*.png``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "06-search-form.ipynb"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("SCOUTFRAME_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
COUNT = re.compile(r"([\d,]+) contacts")

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_server(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"jupyter lab exited ({proc.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    raise AssertionError(f"jupyter lab did not answer within 90 s:\n{log.read_text()}")


@pytest.fixture
def jupyter_lab(tmp_path: Path) -> Iterator[str]:
    """A JupyterLab server over a copy of notebook 06; yields its URL."""
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    settings = tmp_path / "settings"
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))  # every cell in the DOM
    news = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text(json.dumps({"fetchNews": "false"}))  # no "Jupyter news?" toast
    (tmp_path / "tmp").mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(("SPHERESCOUT_", "SCOUTFRAME_"))
    }
    env.update(
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"),
        TMPDIR=str(tmp_path / "tmp"),
        JUPYTER_PLATFORM_DIRS="1",
    )
    port = _free_port()
    jupyter = Path(sys.executable).with_name("jupyter")
    argv = [
        str(jupyter),
        "lab",
        "--no-browser",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--port-retries=0",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={tmp_path / 'ws'}",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-root")  # CI containers run as root
    log = tmp_path / "jupyter-lab.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(url, proc, log)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)  # Jupyter's clean stop: its kernels are shut down
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the session this fixture started
            proc.wait(timeout=10)


# The notebook's panel, found by its path (the focused widget may be a dialog or a toast).
_PANEL = """const app = window.jupyterapp;
    const panel = app && Array.from(app.shell.widgets("main")).find(
        w => w.context && w.content && w.context.path.endsWith("06-search-form.ipynb"));"""

_NOTEBOOK_READY = f"""() => {{  // not async: wait_for_function wants a truthy value
    {_PANEL}
    if (!panel || !panel.context.isReady || !panel.sessionContext.isReady) return false;
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    return !!kernel && kernel.status === "idle";
}}"""

_RUN_ALL_ABOVE_LAST = f"""async () => {{
    {_PANEL}
    app.shell.activateById(panel.id);
    panel.content.activeCellIndex = panel.content.widgets.length - 1;
    await app.commands.execute("notebook:run-all-above");
    return panel.content.widgets.length;
}}"""

_CELLS_DONE = f"""() => {{
    {_PANEL}
    const code = panel.content.widgets.filter(c => c.model.type === "code");
    const kernel = panel.sessionContext.session.kernel;
    const ran = code.slice(0, -1).every(c => c.model.executionCount !== null);
    return ran && kernel.status === "idle";
}}"""

_ERRORS = f"""() => {{
    {_PANEL}
    const errors = [];
    for (const cell of panel.content.widgets) {{
        if (cell.model.type !== "code") continue;
        for (const out of cell.model.outputs.toJSON()) {{
            if (out.output_type === "error") errors.push(out.ename + ": " + out.evalue);
        }}
    }}
    return errors;
}}"""


def _to_top(locator: Any) -> None:
    """Scroll the notebook so that the element starts at its top (below the toolbar)."""
    locator.evaluate("el => el.scrollIntoView({block: 'start'})")


def _count_of(text: str) -> int | None:
    found = COUNT.search(text)
    return int(found.group(1).replace(",", "")) if found else None


def test_the_form_in_jupyterlab(jupyter_lab: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium"
    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.glob("search-form-*.png"):
        old.unlink()
    refused: list[str] = []

    def loopback_only(route: Any) -> None:
        if route.request.url.startswith(jupyter_lab):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 2000})
            context.route("**/*", loopback_only)
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{jupyter_lab}/lab/tree/{NOTEBOOK.name}")
            page.wait_for_function(_NOTEBOOK_READY, timeout=120_000, polling=500)
            assert page.evaluate(_RUN_ALL_ABOVE_LAST) > 10
            page.wait_for_function(_CELLS_DONE, timeout=180_000, polling=500)
            assert page.evaluate(_ERRORS) == []

            form = page.locator(".scoutframe-search-form").first
            expect(form).to_be_visible()
            count = form.locator(".scoutframe-count")
            expect(count).to_contain_text("contacts")  # the count the notebook's code left
            _to_top(form)
            page.screenshot(path=str(ARTIFACTS / "search-form-1-notebook-ran.png"))
            before = count.inner_text()

            form.locator(".scoutframe-countries select").select_option(label="Germany (DE)")
            expect(count).not_to_have_text(before, timeout=30_000)
            expect(count).not_to_contain_text("updating", timeout=30_000)
            in_germany = count.inner_text()
            form.locator(".scoutframe-category input").fill("Bakery")
            expect(count).not_to_have_text(in_germany, timeout=30_000)
            expect(count).not_to_contain_text("updating", timeout=30_000)
            bakeries = count.inner_text()
            form.locator(".scoutframe-countries option:checked").evaluate(
                "el => el.parentElement.scrollTop = el.offsetTop - el.parentElement.offsetTop"
            )
            _to_top(form)
            form.screenshot(path=str(ARTIFACTS / "search-form-2-count-changed.png"))

            counts = [_count_of(t) for t in (before, in_germany, bakeries)]
            assert None not in counts, (before, in_germany, bakeries)
            # The notebook left France + Plumber; then Germany + Plumber; then Germany + Bakery.
            assert counts[0] != counts[1] != counts[2], counts
            assert counts[2] > 0, counts  # type: ignore[operator]
            assert "credits" in bakeries

            table = form.locator(".scoutframe-table-area table")
            expect(table.locator("caption")).to_have_text("The loaded frame (form.df)")
            form.locator(".scoutframe-button-preview").click()
            expect(table.locator("caption")).to_have_text("Preview (form.preview)", timeout=30_000)
            expect(form.locator(".scoutframe-status")).to_contain_text(
                f"Preview: {min(10, counts[2])} of {counts[2]} contacts"
            )  # type: ignore[type-var]
            rows = table.locator("tbody tr")
            assert rows.count() == min(10, counts[2])  # type: ignore[type-var]
            expect(table.locator("thead")).to_contain_text("email")
            for row in rows.all():  # German bakeries: the preview of the picked search
                expect(row.locator("td").nth(3)).to_contain_text("Bakery")
            expect(form.locator(".scoutframe-message")).to_have_text("")
            _to_top(form)
            form.screenshot(path=str(ARTIFACTS / "search-form-3-preview.png"))
        finally:
            browser.close()
    assert sorted(ARTIFACTS.glob("search-form-*.png"))
    external = [u for u in refused if not u.startswith("data:")]
    assert external == [], f"the page asked for the internet: {external[:5]}"
