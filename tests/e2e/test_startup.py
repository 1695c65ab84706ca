"""Start-up order: the admin socket is bound first, the admin app loads after the proxy listens."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from tests.e2e.conftest import HEARTHGATE, KID, ROOT, Gate, household
from tests.support.proxyproc import wait_until

CHAT = [{"role": "user", "content": "hi"}]


def test_an_admin_port_in_use_stops_the_start_before_the_proxy_listens(tmp_path: Path) -> None:
    rules = tmp_path / "household.yaml"
    rules.write_text(household())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                HEARTHGATE,
                "run",
                "--rules",
                str(rules),
                "--state-dir",
                str(tmp_path / "state"),
                "--listen-host",
                "127.0.0.1",
                "--listen-port",
                "0",
                "--admin",
                f"127.0.0.1:{port}",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert f"the admin server cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "proxy listening" not in done.stdout + done.stderr
    assert not (tmp_path / "state" / "run.json").exists()


def test_run_json_is_written_once_the_admin_app_answers(gate: Gate) -> None:
    # run.json (which the fixture waited for) names an admin port that already serves
    assert gate.health()
    assert "hearthgate_" in gate.metrics()


def test_starting_the_gate_loads_no_admin_app_nor_alert_clients() -> None:
    # loaded when first used (admin.front.LazyApp, notify, reports.schedule): a gate nobody
    # administers and without alerts never carries FastAPI, uvicorn's app, httpx or smtplib
    probe = (
        "import sys, proxy.service\n"
        "banned = ('fastapi', 'starlette', 'httpx', 'httpcore', 'smtplib', 'uvicorn')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(banned)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_running_gate_compiles_its_rules_out_of_process(make_gate) -> None:  # type: ignore[no-untyped-def]
    # pydantic and the schema (about 10 MiB) stay in the child that compiled the rules: the
    # gate decides, reloads and refuses a broken edit without ever mapping pydantic_core
    gate: Gate = make_gate()
    maps = Path(f"/proc/{gate.proc.popen.pid}/maps")
    with pytest.raises(openai.PermissionDeniedError):  # bedtime, as the rules say
        gate.openai(KID).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    version = gate.health()["rules_version"]
    gate.write_rules("version: 1\npolicies: [{name: p, action: blok}]\n")
    wait_until(lambda: gate.health()["rules_error"] is not None, 10, "a reload error")
    assert "blok" in gate.health()["rules_error"]
    gate.write_rules(household(bedtime=False))
    wait_until(lambda: gate.health()["rules_version"] != version, 10, "the reload")
    assert gate.openai(KID).chat.completions.create(model="gpt-4o-mini", messages=CHAT).choices
    assert "_pydantic_core" not in maps.read_text()
    assert (gate.state_dir / "rules.cache").exists()
