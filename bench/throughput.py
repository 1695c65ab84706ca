"""Section 1: requests/s and added latency — direct vs bare mitmdump vs hearthgate.

For every mode and concurrency the three targets are measured in ``rounds`` short runs, in a
rotating order (so a burst of load from elsewhere on the machine does not always hit the same
target); requests/s is the median over the rounds, latency percentiles are over every request
of every round. The proxy's own CPU time per request is read from /proc alongside: it is far
less sensitive than requests/s to other processes competing for the two cores.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

from bench import sysinfo
from bench.load import LoadResult, run_load
from bench.proxies import Lab, Running
from bench.stats import median, percentile
from bench.wrk import WrkResult, run_wrk

CONCURRENCIES = (8, 1)


@dataclass
class Cell:
    """One (mode, concurrency, target) measurement, merged over the rounds."""

    rps: list[float] = field(default_factory=list)
    latencies_ns: list[int] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    answered: int = 0
    cpu_s: float = 0.0
    main_cpu_s: float = 0.0

    @property
    def median_rps(self) -> float:
        return median(self.rps)

    def ms(self, q: float) -> float:
        return percentile(self.latencies_ns, q) / 1e6

    @property
    def cpu_us_per_request(self) -> float:
        return 1e6 * self.cpu_s / self.answered if self.answered else float("nan")

    @property
    def off_main_share(self) -> float:
        """Share of the CPU spent outside the main thread (e.g. the SQLite writer thread)."""
        return 1 - self.main_cpu_s / self.cpu_s if self.cpu_s else float("nan")

    def add(self, result: LoadResult, cpu_s: float, main_cpu_s: float) -> None:
        self.rps.append(result.rps)
        self.latencies_ns.extend(result.latencies_ns)
        self.errors += result.errors
        self.first_error = self.first_error or result.first_error
        self.answered += result.completed_total
        self.cpu_s += cpu_s
        self.main_cpu_s += main_cpu_s


@dataclass
class ThroughputResults:
    cells: dict[tuple[str, int, str], Cell] = field(default_factory=dict)
    wrk: dict[str, WrkResult] = field(default_factory=dict)
    wrk_note: str = ""
    seconds: float = 0.0
    foreign_cores: float = 0.0  # average cores busy with processes not in the bench

    def cell(self, mode: str, concurrency: int, target: str) -> Cell:
        return self.cells.setdefault((mode, concurrency, target), Cell())


def measured(
    running: Running, mode: str, concurrency: int, seconds: float, warmup: float
) -> tuple[LoadResult, float, float]:
    """One run against one target, with the CPU its process used meanwhile."""
    cpu0, main0 = sysinfo.process_cpu(running.pid), sysinfo.main_thread_cpu(running.pid)
    result = run_load(running.target, mode, concurrency, seconds, warmup)
    cpu = sysinfo.process_cpu(running.pid) - cpu0
    main = sysinfo.main_thread_cpu(running.pid) - main0
    running.served += result.completed_total
    return result, cpu, main


def measure(
    lab: Lab,
    modes: tuple[str, ...],
    rounds: int,
    seconds: float,
    warmup: float,
    progress: Callable[[str], None],
) -> ThroughputResults:
    results = ThroughputResults()
    targets = [lab.upstream, lab.mitmdump, lab.hearthgate]
    for mode in modes:
        for concurrency in CONCURRENCIES:
            for index in range(rounds):
                order = targets[index % 3 :] + targets[: index % 3]
                for running in order:
                    progress(
                        f"{mode} c={concurrency} round {index + 1}/{rounds}: {running.target.name}"
                    )
                    result, cpu, main = measured(running, mode, concurrency, seconds, warmup)
                    results.cell(mode, concurrency, running.target.name).add(result, cpu, main)
    return results


def measure_wrk(
    lab: Lab,
    wrk: str | None,
    note: str,
    results: ThroughputResults,
    seconds: float,
    progress: Callable[[str], None],
) -> None:
    results.wrk_note = note
    if wrk is None:
        return
    for running in (lab.upstream, lab.mitmdump, lab.hearthgate):
        progress(f"wrk http c=8: {running.target.name}")
        try:
            result = run_wrk(wrk, running.target, CONCURRENCIES[0], seconds)
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
            results.wrk.clear()
            results.wrk_note = f"wrk failed: {str(exc).splitlines()[0][:200]}"
            return
        running.served += result.requests + result.errors
        results.wrk[running.target.name] = result
