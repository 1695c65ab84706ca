"""A cross-check of the plain-HTTP rows with ``wrk`` (C, one thread), when it is available.

wrk cannot send CONNECT, so it only covers plain HTTP: through a proxy the Lua script asks
for the absolute-form target ``http://api.openai.com/v1/chat/completions``; direct, the
origin form. It is installed from Debian (``apt-get install wrk``) when missing and the bench
runs as root; otherwise these rows are skipped with a note.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.load import BODY, LLM_HOST, PATH, Target

APT_TIMEOUT = 300
_RESULT = re.compile(
    r"BENCH requests=(\d+) duration_us=(\d+) status_errors=(\d+) socket_errors=(\d+) "
    r"p50_us=(\d+) p99_us=(\d+)"
)

SCRIPT = """\
wrk.method = "POST"
wrk.path = "{path}"
wrk.headers["Host"] = "{host}"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench-not-a-real-key"
wrk.body = '{body}'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d status_errors=%d socket_errors=%d p50_us=%d p99_us=%d\\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def ensure_wrk() -> tuple[str | None, str]:
    """The path of ``wrk`` (installing it if possible) and a note on how it was found."""
    found = shutil.which("wrk")
    if found:
        return found, "wrk found on PATH"
    if os.geteuid() != 0:
        return None, "wrk is not installed and the bench is not root: wrk rows skipped"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        try:
            subprocess.run(argv, env=env, check=True, capture_output=True, timeout=APT_TIMEOUT)
        except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            return None, f"installing wrk failed ({type(exc).__name__}): wrk rows skipped"
    found = shutil.which("wrk")
    return found, (
        "wrk installed with apt-get"
        if found
        else "apt-get ran but wrk is still missing: wrk rows skipped"
    )


def run_wrk(wrk: str, target: Target, connections: int, seconds: float) -> WrkResult:
    """One wrk run (whole seconds: wrk takes no fractions); RuntimeError if it fails."""
    path = f"http://{LLM_HOST}{PATH}" if target.via_proxy else PATH
    script_text = SCRIPT.format(path=path, host=LLM_HOST, body=BODY.decode())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-wrk-") as script:
        script.write(script_text)
        script.flush()
        argv = [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            script.name,
            f"http://127.0.0.1:{target.port}",
        ]
        out = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            env=_without_proxy_env(),
            cwd=Path(script.name).parent,
        )
    match = _RESULT.search(out.stdout)
    if out.returncode != 0 or match is None:
        raise RuntimeError(
            f"wrk failed ({out.returncode}): {out.stdout[-500:]} {out.stderr[-500:]}"
        )
    requests, duration_us, status_err, socket_err, p50, p99 = (int(g) for g in match.groups())
    return WrkResult(
        requests - status_err, duration_us / 1e6, status_err + socket_err, p50 / 1000, p99 / 1000
    )


def _without_proxy_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }
