"""Section 5: hearthgate's resident memory, idle and after rounds of requests.

Each round sends ``new_connections`` requests that each open a new connection (so
per-connection state — TLS objects, the identity cache — would show up as growth too), then
``requests`` HTTPS keep-alive requests (8 connections), then at once reads VmRSS of the
hearthgate process from /proc, and the decision-log queue depth from its ``/metrics`` (rows
waiting in memory are part of the RSS). The growth that matters is between the last two
rounds, once caches and allocator pools have settled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bench import sysinfo
from bench.load import run_load
from bench.proxies import Running

ROUND_TIME_LIMIT = 240.0  # seconds; a round stops here even if its count is not reached
DRAIN_TIMEOUT = 60.0


@dataclass(frozen=True)
class MemoryPoint:
    label: str
    served: int  # requests hearthgate had answered when the reading was taken
    rss_mib: float
    queue_depth: int = 0  # decision-log writes waiting in hearthgate's queue at the reading
    rps: float | None = None
    errors: int = 0


def reading(running: Running, label: str) -> MemoryPoint:
    depth = running.metrics().get("hearthgate_decision_log_queue_depth", -1)
    return MemoryPoint(label, running.served, sysinfo.rss_mib(running.pid), int(depth))


def measure_rounds(
    running: Running,
    rounds: int,
    requests: int,
    new_connections: int,
    progress: Callable[[str], None],
) -> list[MemoryPoint]:
    points = []
    for index in range(rounds):
        progress(f"memory round {index + 1}/{rounds}: {requests} + {new_connections} requests")
        fresh = run_load(
            running.target,
            "https-new",
            4,
            ROUND_TIME_LIMIT,
            warmup=0.0,
            max_requests=new_connections,
        )
        kept = run_load(
            running.target, "https", 8, ROUND_TIME_LIMIT, warmup=0.0, max_requests=requests
        )
        running.served += kept.completed_total + fresh.completed_total
        point = reading(running, f"after round {index + 1}")
        points.append(
            MemoryPoint(
                point.label,
                point.served,
                point.rss_mib,
                point.queue_depth,
                kept.rps,
                kept.errors + fresh.errors,
            )
        )
    return points


@dataclass(frozen=True)
class LiveLog:
    """The decision log of the live hearthgate once the load has stopped."""

    answered: int  # requests answered, as counted by the bench's clients
    written: int  # decision rows written (hearthgate_decision_log_written_total)
    dropped: int  # writes dropped because the queue was full
    depth_at_stop: int  # writes still queued when the load stopped
    drain_s: float  # how long the idle proxy took to write them


def drain(running: Running) -> LiveLog:
    """Wait (bounded) until hearthgate's decision-log queue is empty and its last batch is
    committed (the written count stops moving); report what happened."""
    samples = running.metrics()
    depth = int(samples.get("hearthgate_decision_log_queue_depth", 0))
    t0 = time.monotonic()
    previous = None
    while time.monotonic() - t0 < DRAIN_TIMEOUT:
        written = samples.get("hearthgate_decision_log_written_total")
        if not samples.get("hearthgate_decision_log_queue_depth", 0) and written == previous:
            break
        previous = written
        time.sleep(0.2)
        samples = running.metrics()
    return LiveLog(
        running.served,
        int(samples.get("hearthgate_decision_log_written_total", -1)),
        int(samples.get("hearthgate_decision_log_dropped_total", -1)),
        depth,
        time.monotonic() - t0,
    )
