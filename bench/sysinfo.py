"""What the machine is and what processes use: /proc readings for the report.

CPU times are in seconds (user + system, children that were waited for included, so the
``ip neigh`` helper hearthgate spawns counts as hearthgate's); RSS in MiB.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(path: Path) -> list[str]:
    text = path.read_text()
    return text[text.rindex(")") + 2 :].split()  # the fields after "(comm)"


def process_cpu(pid: int) -> float:
    """CPU seconds used by a process, all threads and reaped children."""
    fields = _stat_fields(Path(f"/proc/{pid}/stat"))
    return sum(int(v) for v in fields[11:15]) / TICK


def process_cpu_fine(pid: int) -> float:
    """CPU seconds of a process's live threads, to the microsecond: the scheduler's
    ``se.sum_exec_runtime`` of each thread (/proc/PID/task/*/sched, ms), where the kernel
    shows it; else ``process_cpu``, whose 10 ms ticks are coarse for a short stream."""
    total = 0.0
    try:
        for sched in Path(f"/proc/{pid}/task").glob("*/sched"):
            for line in sched.read_text().splitlines():
                if line.startswith("se.sum_exec_runtime"):
                    total += float(line.split(":")[1]) / 1e3
                    break
            else:
                return process_cpu(pid)
    except (OSError, ValueError):
        return process_cpu(pid)
    return total


def main_thread_cpu(pid: int) -> float:
    """CPU seconds of the process's main thread (the event loop of a proxy)."""
    fields = _stat_fields(Path(f"/proc/{pid}/task/{pid}/stat"))
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_busy() -> float:
    """CPU seconds all cores have spent busy since boot (not idle, not iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / TICK


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _wrk_version() -> str:
    path = shutil.which("wrk")
    if path is None:
        return "not installed"
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    words = (out.stdout + out.stderr).split()
    return words[1] if len(words) > 1 else "unknown"


def machine() -> dict[str, str]:
    from mitmproxy.version import VERSION as MITMPROXY

    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "CPU": cpu_model(),
        "cores": f"{cores} ({usable} usable by the bench)",
        "kernel": f"{platform.system()} {platform.release()}",
        "Python": sys.version.split()[0],
        "mitmproxy": MITMPROXY,
        "wrk": _wrk_version(),
    }


class ForeignLoad:
    """How busy the machine was with processes other than ``pids`` over a stretch of time."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self._start = self._reading()

    def _reading(self) -> tuple[float, float, float]:
        own = 0.0
        for pid in self.pids:
            try:
                own += process_cpu(pid)
            except OSError:
                pass
        return time.monotonic(), machine_busy(), own

    def cores(self) -> float:
        """Average number of cores busy with other processes since construction."""
        t0, busy0, own0 = self._start
        t1, busy1, own1 = self._reading()
        return max(0.0, (busy1 - busy0) - (own1 - own0)) / max(t1 - t0, 1e-9)
