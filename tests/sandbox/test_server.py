"""Starting, stopping and restarting the sandbox; the command line."""

from __future__ import annotations

import os
import stat

import pytest
import requests

from scoutframe.sandbox import Sandbox
from scoutframe.sandbox.cli import main


def test_restart_keeps_state(make_sandbox, api_for, wait_export):
    sb = make_sandbox()
    data_dir = sb._opts.data_dir
    key, password = sb.api_key, sb.password
    api = api_for(sb.url, f"Bearer {key}")
    sid = api.get("/api/companies", params={"countries": "NZ"}).json()["search_id"]
    task = api.get("/api/download-csv", params={"search_id": sid}).json()
    assert wait_export(api, task["task_id"])["status"] == "ready"
    sb.admin.add_contacts(5)
    sb.admin.advance_clock(3600)
    # a second export, left "processing" as if the server died while building it
    second_start = api.get("/api/download-csv", params={"search_id": sid}).json()
    second = second_start["task_id"]
    assert wait_export(api, second)["status"] == "ready"
    sb.runtime.state.set_task_status(second, "processing")
    profile = api.get("/api/user/profile").json()
    sb.stop()

    assert len(list((data_dir / "exports").glob(f"{second}-*.csv"))) == 1

    again = make_sandbox(data_dir=data_dir)
    assert (again.api_key, again.password) == (key, password)
    # The failed export's file (written, never marked ready) went; the ready one's stays.
    files = [p.name.partition("-")[0] for p in (data_dir / "exports").iterdir()]
    assert files == [task["task_id"]]
    api2 = api_for(again.url, f"Token {key}")
    after = api2.get("/api/user/profile").json()
    assert after["credits"] == profile["credits"] + second_start["lead_count"]  # refund
    history = api2.get("/api/user/search-history").json()
    assert history["count"] == 2
    assert [e["status"] for e in history["results"]] == ["failed", "ready"]
    failed = api2.get(f"/api/download-status/{second}").json()
    assert failed["status"] == "failed"
    assert "restarted" in failed["error"]
    assert api2.get("/api/companies").json()["totalCount"] == 20_005
    # the same search id for the same filters, and the stored search still exports
    assert api2.get("/api/companies", params={"countries": "NZ"}).json()["search_id"] == sid
    login = requests.post(
        f"{again.url}/api/auth/login",
        timeout=10,
        json={"username": again.username, "password": password},
    )
    assert login.status_code == 200
    assert again.admin.advance_clock(0) >= "2026"  # the moved clock came back


def test_secret_file_is_private(sandbox):
    mode = stat.S_IMODE(os.stat(sandbox._opts.data_dir / "secret.key").st_mode)
    assert mode == 0o600


def test_repr_and_env_hide_nothing_they_should_not(sandbox):
    text = repr(sandbox)
    assert sandbox.api_key not in text
    assert sandbox.password not in text
    assert sandbox.url in text
    assert sorted(sandbox.env) == [
        "SPHERESCOUT_API_KEY",
        "SPHERESCOUT_BASE_URL",
        "SPHERESCOUT_PASSWORD",
        "SPHERESCOUT_USERNAME",
    ]
    assert sandbox.env["SPHERESCOUT_BASE_URL"] == sandbox.url
    assert sandbox.admin_token not in repr(sandbox.admin)
    runtime = repr(sandbox.runtime)
    assert sandbox.admin_token not in runtime
    assert repr(sandbox.runtime.secret) not in runtime


def test_storage_is_another_origin(sandbox):
    assert sandbox.storage_url != sandbox.url
    assert sandbox.storage_url.startswith("http://127.0.0.")


def test_control_plane_needs_the_token(sandbox):
    r = requests.post(f"{sandbox.url}/_sandbox/clock", json={"advance": 1}, timeout=10)
    assert r.status_code == 401
    r = requests.post(
        f"{sandbox.url}/_sandbox/clock",
        json={"advance": 1},
        timeout=10,
        headers={"X-Sandbox-Admin-Token": "wrong"},
    )
    assert r.status_code == 401


def test_process_mode_and_cli(dataset_dir, tmp_path):
    for src in dataset_dir.glob("*.parquet"):
        os.link(src, tmp_path / src.name)
    with Sandbox(20_000, data_dir=tmp_path, mode="process", rate_limit=0) as sb:
        r = requests.get(
            f"{sb.url}/api/user/profile",
            timeout=10,
            headers={"Authorization": f"Token {sb.api_key}"},
        )
        assert r.status_code == 200
        assert sb.admin.set_faults(p500=0.0)["p500"] == 0.0
        proc = sb._proc
    assert proc is not None
    assert proc.returncode == 0


def test_help_says_what_is_emulated(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for word in ("--flavor", "--faults", "--rate-limit", "does not emulate", "[DESIGN]"):
        assert word in out
    emulated, _, rest = out.partition("What it does not emulate:")
    not_emulated, _, design = rest.partition("[DESIGN]")
    assert "What it emulates" in emulated
    assert "--flavor live" in emulated
    for word in ("billing", "TLS", "webhooks", "real data"):
        assert word in not_emulated
    for word in ("search_id", "sandbox clock", "docs/sandbox.md"):
        assert word in design


def test_bad_faults_spec_is_a_clear_error(capsys):
    assert main(["--faults", "nonsense=1", "--port", "0"]) == 2
    assert "nonsense" in capsys.readouterr().err


def test_control_plane_info(sandbox, api):
    info = sandbox.admin.info()
    assert info["flavor"] == "docs"
    assert info["contacts"] >= 20_000
    assert info["demo_credits"] == api.get("/api/user/profile").json()["credits"]


def test_clock_cannot_be_moved_past_representable_dates(make_sandbox, api_for):
    sb = make_sandbox()
    api = api_for(sb.url, f"Bearer {sb.api_key}")
    for advance in (1e12, 1e308):
        with pytest.raises(requests.HTTPError) as exc:
            sb.admin.advance_clock(advance)
        assert exc.value.response.status_code == 400
        assert "advance" in exc.value.response.json()
    # Nothing moved: dates still render, and a big but valid move works.
    assert api.get("/api/user/api-keys").status_code == 200
    assert sb.admin.advance_clock(100 * 365 * 86400) >= "2126"
    assert api.get("/api/user/api-keys").status_code == 200


def test_admin_command(sandbox, monkeypatch, capsys):
    import json

    monkeypatch.setenv("SPHERESCOUT_BASE_URL", sandbox.url)
    monkeypatch.setenv("SCOUTFRAME_SANDBOX_ADMIN_TOKEN", sandbox.admin_token)
    assert main(["admin", "info"]) == 0
    assert json.loads(capsys.readouterr().out)["flavor"] == "docs"
    assert main(["admin", "faults", "p503=0"]) == 0
    assert json.loads(capsys.readouterr().out)["p503"] == 0
    assert main(["admin", "faults", "bogus=1"]) == 2
    assert "unknown fault 'bogus'" in capsys.readouterr().err
    # A refusal by the control plane shows its reason, not just the status line.
    assert main(["admin", "add-contacts", "-5"]) == 1
    err = capsys.readouterr().err
    assert "400" in err
    assert "Client Error" not in err
    assert len(err.split("400", 1)[1].strip()) > 5
    monkeypatch.delenv("SCOUTFRAME_SANDBOX_ADMIN_TOKEN")
    assert main(["admin", "info"]) == 2


def test_a_revoked_demo_key_stays_revoked_and_says_so(make_sandbox, api_for, caplog):
    sb = make_sandbox()
    api = api_for(sb.url, f"Bearer {sb.api_key}")
    demo_key = api.get("/api/user/api-keys").json()[0]["id"]
    assert api("DELETE", f"/api/user/api-keys/{demo_key}").status_code == 204
    sb.stop()
    with caplog.at_level("WARNING", logger="scoutframe.sandbox.server"):
        again = make_sandbox(data_dir=sb._opts.data_dir)
    assert "revoked" in caplog.text
    assert again.api_key not in caplog.text
    assert api_for(again.url, f"Bearer {again.api_key}").get("/api/user/profile").status_code == 401


def test_admin_faults_take_the_start_options_syntax(make_sandbox, monkeypatch, capsys):
    import json

    sb = make_sandbox()
    monkeypatch.setenv("SPHERESCOUT_BASE_URL", sb.url)
    monkeypatch.setenv("SCOUTFRAME_SANDBOX_ADMIN_TOKEN", sb.admin_token)
    assert main(["admin", "faults", "latency=20ms,503=10%,export_fail=1"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert (config["latency_ms"], config["p503"], config["export_fail"]) == (20.0, 0.1, 1.0)
    assert main(["admin", "faults", "latency=0.5s"]) == 0  # only the fields named change
    config = json.loads(capsys.readouterr().out)
    assert (config["latency_ms"], config["p503"]) == (500.0, 0.1)
