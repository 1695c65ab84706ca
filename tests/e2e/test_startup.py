"""Start-up order: the admin socket is bound first, the admin app loads after the proxy listens."""

from __future__ import annotations

import socket
import subprocess
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
