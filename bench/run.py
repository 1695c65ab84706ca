"""``make bench``: run every section once, print the report and write ``bench/results.md``.

    python -m bench.run            # full run, about 4 minutes (100k requests for section 5)
    python -m bench.run --quick    # about 1 minute: fewer rounds, shorter runs
    python -m bench.run --only streaming   # one section alone (repeatable); see --help
    python -m bench.run --only footprint   # start-up, memory, the CLI, one core (7-9)

Sections 1 and 5 need the subprocesses of ``proxies.Lab`` (upstream, mitmdump, hearthgate);
they are stopped before the in-process sections 2-4 run, so those have the CPU to
themselves. Section 6 (streaming) starts its own upstream and proxies afterwards, its
mitmdump with the three-line streaming addon. Sections 7-9 (``footprint``: start-up and
memory beside bare mitmdump, every CLI subcommand's wall time, section 1 again on one core)
start their own labs last. ``--only`` runs the named sections alone and
writes their report to ``bench/out/`` (not over ``bench/results.md``). A section that
crashes is reported as such and the others still run; the exit status is 1 then, 0
otherwise — a missed target is a finding in the report, not a crash.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import (
    decision_log,
    engine_tables,
    footprint,
    memory,
    pipeline,
    prompt_scan,
    proxy_tables,
    streaming,
    sysinfo,
    throughput,
)
from bench.load import MODES
from bench.proxies import Lab
from bench.report import Report
from bench.wrk import ensure_wrk

RESULTS = Path(__file__).with_name("results.md")


@dataclass(frozen=True)
class Plan:
    name: str
    rounds: int  # rounds per throughput cell
    seconds: float  # measured seconds per run
    warmup: float
    wrk_seconds: float
    memory_rounds: int
    memory_requests: int  # HTTPS keep-alive requests per memory round, at least
    memory_total: int  # ... and enough that hearthgate has answered this many by the end
    memory_new: int  # plus this many on new connections
    decisions: int
    scan_repeats: int
    log_rows: int
    trickle_rows: int
    busy_seconds: float
    burst_rows: int
    stream_rounds: int  # streams per connection in section 6
    start_rounds: int  # starts of each proxy in section 7
    one_core_rounds: int  # rounds per throughput cell in section 9


FULL = Plan(
    "full",
    rounds=4,
    seconds=1.2,
    warmup=0.3,
    wrk_seconds=3,
    memory_rounds=3,
    memory_requests=6_000,
    memory_total=100_000,
    memory_new=150,
    decisions=100_000,
    scan_repeats=9,
    log_rows=200_000,
    trickle_rows=20_000,
    busy_seconds=4,
    burst_rows=50_000,
    stream_rounds=10,  # the per-chunk figures move by more than the proxies differ in 5
    start_rounds=5,
    one_core_rounds=2,
)
QUICK = Plan(
    "quick",
    rounds=1,
    seconds=1.0,
    warmup=0.3,
    wrk_seconds=1.5,
    memory_rounds=3,
    memory_requests=1_500,
    memory_total=0,
    memory_new=40,
    decisions=30_000,
    scan_repeats=3,
    log_rows=50_000,
    trickle_rows=5_000,
    busy_seconds=2,
    burst_rows=50_000,
    stream_rounds=2,
    start_rounds=3,
    one_core_rounds=1,
)
SECTIONS = ("proxy", "pipeline", "prompt-scan", "decision-log", "streaming", "footprint")

NOTES = (
    "Section 1 rows: 'direct' = the load generator straight to the fake upstream "
    "(127.0.0.1, plain or TLS on one port); 'mitmdump' = bare mitmdump 12 with only the "
    "redirect script every proxy needs to reach that upstream, `connection_strategy=lazy`, "
    "`allow_hosts` = api.openai.com and `flow_detail=0` (no per-flow printing); "
    "'hearthgate' = `hearthgate run` with rules/household.yaml plus a device for 127.0.0.1 "
    "owned by a parent and a parents' quota, so every request runs the whole pipeline, is "
    "allowed (checked: every answer must be a 200), logged to SQLite and counted for quotas.",
    "HTTP keep-alive: POST http://api.openai.com/v1/chat/completions in absolute form to the "
    "proxy over one connection per client; HTTPS keep-alive: one CONNECT and one TLS handshake "
    "(client trusts the proxy's CA; SNI api.openai.com) per client connection, then requests; "
    "HTTPS new conn/request: TCP connect + CONNECT + TLS handshake + one request + close, "
    "every time (latency includes all of it). 'conc.' = client connections, each with one "
    "request in flight. The load generator (raw asyncio streams) runs in the bench process, "
    "separate from every proxy; the fake upstream is its own process.",
    "Every measured request is a small OpenAI chat completion (~230-byte JSON body) answered "
    "by the fake upstream with a ~290-byte JSON completion including `usage`.",
    "Section 2 times `governance.pipeline.decide` alone (identity resolved beforehand, as the "
    "proxy caches it per connection). Section 3 times `policy_match.matches` for one policy "
    "on 100 KB of text (the proxy's per-request prompt cap), a new text for every call: "
    "hearthgate caches scan results per prompt text, so timing one string twice would time "
    "a cache hit. Section 4 drives the real "
    "`store.writer.Writer`. Section 5 reads VmRSS of the hearthgate process from /proc.",
    "hearthgate's decision-log writer runs in the proxy process; rows it has not written yet "
    "wait in memory (the 'log queue depth' of section 5). Whatever it defers while the load "
    "runs is work not yet paid for in section 1. The live row of section 4 may count a few "
    "more rows than answers: wrk stops with requests in flight, which hearthgate still logs.",
    "Two cores are shared by the load generator, the upstream and the proxy under test, and "
    "with whatever else runs on the machine (see the 'other processes' line in section 1): "
    "requests/s moves by 10-30% between runs here; the CPU-per-request table is steadier.",
)


@dataclass(frozen=True)
class Memory:
    hearthgate: list[memory.MemoryPoint]
    mitmdump: list[memory.MemoryPoint]  # the same readings of bare mitmdump, same load


class Progress:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        print(
            f"[bench {time.monotonic() - self.started:6.1f}s] {message}",
            file=sys.stderr,
            flush=True,
        )


def proxy_sections(
    plan: Plan, progress: Progress
) -> tuple[throughput.ThroughputResults, Memory, memory.LiveLog]:
    wrk, wrk_note = ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="hearthgate-bench-") as tmp, Lab(Path(tmp)) as lab:
        progress("upstream, mitmdump and hearthgate are up")
        idle = memory.reading(lab.hearthgate, "idle, after start-up")
        m_idle = memory.reading(lab.mitmdump, "idle, after start-up")
        pids = [os.getpid(), lab.upstream.pid, lab.mitmdump.pid, lab.hearthgate.pid]
        foreign = sysinfo.ForeignLoad(pids)
        res = throughput.measure(lab, MODES, plan.rounds, plan.seconds, plan.warmup, progress)
        throughput.measure_wrk(lab, wrk, wrk_note, res, plan.wrk_seconds, progress)
        res.foreign_cores = foreign.cores()
        after = memory.reading(lab.hearthgate, "after the throughput runs")
        m_after = memory.reading(lab.mitmdump, "after the throughput runs")
        rounds = {}
        for running in (lab.hearthgate, lab.mitmdump):  # the same rounds through each
            left = plan.memory_total - running.served - plan.memory_rounds * plan.memory_new
            per_round = max(plan.memory_requests, -(-left // plan.memory_rounds))
            progress(f"memory rounds through {running.target.name}")
            rounds[running.target.name] = memory.measure_rounds(
                running, plan.memory_rounds, per_round, plan.memory_new, progress
            )
        progress("waiting for hearthgate's decision log to catch up")
        live = memory.drain(lab.hearthgate)
        drained = memory.reading(lab.hearthgate, "after the log queue drained")
        m_drained = memory.reading(lab.mitmdump, "after the log queue drained")
        progress("stopping the proxies")
    points = [idle, after, *rounds["hearthgate"], drained]
    m_points = [m_idle, m_after, *rounds["mitmdump"], m_drained]
    return res, Memory(points, m_points), live


def _guarded(report: Report, name: str, step: Callable[[], None]) -> bool:
    try:
        step()
    except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
        traceback.print_exc()
        first_line = (str(exc).splitlines() or [""])[0][:200]
        report.target(
            f"{name}: the section ran", f"crashed: {type(exc).__name__}: {first_line}", False
        )
        return False
    return True


def streaming_section(plan: Plan, report: Report, progress: Progress) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="hearthgate-bench-stream-") as tmp,
        Lab(Path(tmp), stream_addon=True) as lab,
    ):
        progress("streaming: upstream, mitmdump (streaming addon) and hearthgate are up")
        res = streaming.measure(lab, plan.stream_rounds, progress)
    streaming.tables(report, res)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="about 1 minute instead of 4")
    parser.add_argument(
        "--output",
        type=Path,
        help="where to write the report (bench/results.md; bench/out/only-NAMES.md with --only)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        help="run only this section (repeatable); the report then holds only its tables",
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    # Installed, a gate runs from compiled bytecode (pip writes it; an editable checkout caches
    # it in __pycache__ on first run). With PYTHONDONTWRITEBYTECODE set, as some shells and CI
    # do, every start and every CLI command of an editable checkout would compile hearthgate's
    # own modules from source again (mitmproxy's come compiled from site-packages): measured
    # that way hearthgate pays a cost no installation pays. The bench's children cache it.
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
        sys.dont_write_bytecode = False
    plan = QUICK if args.quick else FULL
    chosen = set(args.only or SECTIONS)
    output = args.output or (
        RESULTS
        if not args.only
        else RESULTS.with_name("out") / f"only-{'-'.join(sorted(chosen))}.md"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    progress = Progress()
    report = Report("hearthgate benchmark", sysinfo.machine())
    state: dict[str, Any] = {}

    def proxies() -> None:
        res, state["memory"], state["live"] = proxy_sections(plan, progress)
        proxy_tables.throughput(report, res, plan.rounds, plan.seconds)

    steps: list[tuple[str, Callable[[], None]]] = [
        ("proxy", proxies),
        (
            "pipeline",
            lambda: engine_tables.pipeline(report, pipeline.run(plan.decisions)),
        ),
        (
            "prompt-scan",
            lambda: engine_tables.prompt_scan(report, prompt_scan.run(plan.scan_repeats)),
        ),
        (
            "decision-log",
            lambda: engine_tables.decision_log(
                report,
                decision_log.run(
                    plan.log_rows, plan.trickle_rows, plan.busy_seconds, plan.burst_rows
                ),
                state.get("live"),
            ),
        ),
        (
            "decision-log",
            lambda: engine_tables.decision_log_postgres(
                report,
                *decision_log.run_postgres(
                    plan.log_rows, plan.trickle_rows, plan.busy_seconds, plan.burst_rows
                ),
            ),
        ),
        ("streaming", lambda: streaming_section(plan, report, progress)),
        (
            "footprint",
            lambda: footprint.tables(
                report,
                footprint.run(
                    plan.start_rounds, plan.one_core_rounds, plan.seconds, plan.warmup, progress
                ),
            ),
        ),
    ]
    ok = True
    last_log = max(i for i, (name, _) in enumerate(steps) if name == "decision-log")
    for i, (name, step) in enumerate(steps):
        if name not in chosen:
            continue
        if name != "proxy":
            progress(name.replace("-", " ") + (" (PostgreSQL)" if i == last_log else ""))
        ok &= _guarded(report, name.replace("-", " "), step)
        if i == last_log and "memory" in state:  # section 5 after section 4 (and 4b)
            proxy_tables.memory(report, state["memory"].hearthgate, state["memory"].mitmdump)
    if "memory" in state and "decision-log" not in chosen:
        proxy_tables.memory(report, state["memory"].hearthgate, state["memory"].mitmdump)
    sections = "" if chosen == set(SECTIONS) else f", only {', '.join(sorted(chosen))}"
    report.machine["bench run"] = (
        f"{plan.name}{sections}, {time.monotonic() - progress.started:.0f} s"
    )
    if chosen & {"proxy", "pipeline", "prompt-scan", "decision-log"}:
        report.notes.extend(NOTES)
    text = report.render()
    print(text)
    output.write_text(text)
    progress(f"report written to {output}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
