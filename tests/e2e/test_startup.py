"""Start-up order: the admin socket is bound first, the admin app loads after the proxy listens."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import HEARTHGATE, ROOT, Gate, household


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
