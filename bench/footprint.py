"""Sections 7-9: what a small always-on box feels — start-up, memory, the CLI, one core.

* start-up: bare mitmdump and ``hearthgate run`` (each with the flags of section 1, a fixed
  free port, the CA and, for hearthgate, the database made by an uncounted first start, as on
  a box that reboots) started ``rounds`` times each in turns; the time is from ``Popen`` to the
  first TCP connection the proxy port accepts (polled every 5 ms). Idle RSS is read from
  /proc ``IDLE_SETTLE`` seconds after the port opened.
* idle keep-alive clients: ``IDLE_CLIENTS`` HTTPS connections (CONNECT, TLS, one request
  each) left open and idle on each proxy, RSS read before and while they are held.
* the CLI: every subcommand of ``hearthgate`` but ``run`` (found by walking its parser, with a
  dummy value for each required argument, as ``tests/proxy/cli/test_imports.py`` does), run
  ``CLI_RUNS`` times in a state directory that has its database, CA and rules cache; wall time
  from spawn to exit, beside ``python -c pass``.
* one core: section 1's proxy runs again with both proxies pinned by ``taskset`` to one core
  and the load generator and upstream kept off it, as on a box with one core to spare.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import sysinfo, throughput
from bench.load import Target, client_tls, open_connection, read_response, request_bytes
from bench.proxies import HEARTHGATE, ROOT, Lab
from bench.report import Report, number, table, verdict
from bench.stats import median
from tests.support.proxyproc import free_port, wait_until

IDLE_SETTLE = 3.0  # seconds after the port opened before idle RSS is read
IDLE_CLIENTS = 100
CLI_RUNS = 5
CLI_TARGET_MS = 300.0
START_TIMEOUT = 30.0
ONE_CORE_MODES = ("http", "https", "https-new")
ONE_CORE_CONCURRENCIES = (8, 1)


# --- start-up and idle RSS --------------------------------------------------------------


@dataclass
class Starts:
    seconds: dict[str, list[float]] = field(default_factory=dict)
    idle_mib: dict[str, list[float]] = field(default_factory=dict)
    admin_mib: list[float] = field(default_factory=list)  # hearthgate, after one /healthz

    def add(self, name: str, seconds: float, rss: float, admin: float | None) -> None:
        self.seconds.setdefault(name, []).append(seconds)
        self.idle_mib.setdefault(name, []).append(rss)
        if admin is not None:
            self.admin_mib.append(admin)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _start_once(
    argv: list[str], port: int, env: dict[str, str], state: Path | None = None
) -> tuple[float, float, float | None]:
    """Seconds to port open, idle RSS; with ``state`` (hearthgate's), RSS after one admin
    request too (the admin app is built on its first request)."""
    started = time.perf_counter()
    popen = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while not _port_open(port):
            if popen.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited with {popen.returncode} before listening")
            if time.perf_counter() - started > START_TIMEOUT:
                raise TimeoutError(f"{argv[0]} did not listen within {START_TIMEOUT:.0f} s")
            time.sleep(0.005)
        seconds = time.perf_counter() - started
        time.sleep(IDLE_SETTLE)
        idle = sysinfo.rss_mib(popen.pid)
        if state is None:
            return seconds, idle, None
        wait_until(lambda: (state / "run.json").exists(), START_TIMEOUT, "run.json")
        host, admin_port = json.loads((state / "run.json").read_text())["admin"]
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://{host}:{admin_port}/healthz", timeout=START_TIMEOUT) as answer:
            answer.read()
        time.sleep(1.0)
        return seconds, idle, sysinfo.rss_mib(popen.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGTERM)
        try:
            popen.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(popen.pid, signal.SIGKILL)
            popen.wait(5)


def measure_starts(lab: Lab, rounds: int, progress: Callable[[str], None]) -> Starts:
    env = {**os.environ, "HEARTHGATE_TEST_UPSTREAM": f"127.0.0.1:{lab.upstream.target.port}"}
    confdir = lab.workdir / "start-mitmdump"
    state = lab.workdir / "start-hearthgate"

    def argv(name: str, port: int) -> list[str]:
        if name == "mitmdump":
            return lab.mitmdump_argv(confdir, port)
        return lab.hearthgate_argv(state, port)

    starts = Starts()
    for name in ("mitmdump", "hearthgate"):  # first starts make the CA (and the database)
        port = free_port()
        _start_once(argv(name, port), port, env)
        with contextlib.suppress(OSError):
            (state / "run.json").unlink()
    for index in range(rounds):
        order = ("mitmdump", "hearthgate") if index % 2 == 0 else ("hearthgate", "mitmdump")
        for name in order:
            progress(f"start-up round {index + 1}/{rounds}: {name}")
            port = free_port()
            with contextlib.suppress(OSError):
                (state / "run.json").unlink()
            hg_state = state if name == "hearthgate" else None
            starts.add(name, *_start_once(argv(name, port), port, env, hg_state))
    return starts


# --- idle keep-alive clients ------------------------------------------------------------


async def _hold_idle(target: Target, clients: int, pid: int) -> float:
    tls = client_tls(target.ca)
    held = []
    try:
        for _ in range(clients):
            reader, writer = await asyncio.wait_for(open_connection(target, "https", tls), 10)
            writer.write(request_bytes(False))
            await writer.drain()
            status, _ = await asyncio.wait_for(read_response(reader), 10)
            if status != 200:
                raise ConnectionError(f"{target.name} answered {status}")
            held.append(writer)
        await asyncio.sleep(2.0)
        return sysinfo.rss_mib(pid)
    finally:
        for writer in held:
            writer.close()
        for writer in held:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2)


@dataclass
class IdleClients:
    before: dict[str, float] = field(default_factory=dict)
    held: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)  # 5 s after they closed


def measure_idle_clients(lab: Lab, progress: Callable[[str], None]) -> IdleClients:
    res = IdleClients()
    lab.hearthgate.metrics()  # the admin app built (as once a parent has looked): conservative
    time.sleep(1.0)
    for running in (lab.mitmdump, lab.hearthgate):
        name = running.target.name
        progress(f"{IDLE_CLIENTS} idle keep-alive clients: {name}")
        res.before[name] = sysinfo.rss_mib(running.pid)
        res.held[name] = asyncio.run(_hold_idle(running.target, IDLE_CLIENTS, running.pid))
        running.served += IDLE_CLIENTS
        time.sleep(5.0)
        res.after[name] = sysinfo.rss_mib(running.pid)
    return res


# --- the CLI ----------------------------------------------------------------------------


def cli_commands() -> list[list[str]]:
    """Every subcommand but ``run``, with a dummy value for each required argument."""
    from proxy.cli.main import build_parser

    found: list[list[str]] = [["--help"]]

    def dummy(action: argparse.Action) -> str:
        if action.choices:
            return str(list(action.choices)[0])
        return "1" if action.type in (int, float) else "x"

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> None:
        for action in parser._actions:
            if not isinstance(action, argparse._SubParsersAction):
                continue
            for name, sub in action.choices.items():
                path = [*prefix, name]
                if path == ["run"]:
                    continue
                if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
                    walk(sub, path)
                    continue
                argv = list(path)
                for arg in sub._actions:
                    if arg.required:
                        if arg.option_strings:
                            argv.append(arg.option_strings[-1])
                        argv.append(dummy(arg))
                found.append(argv)

    walk(build_parser(), [])
    return found


@dataclass
class CliTimes:
    baseline_ms: list[float] = field(default_factory=list)
    commands: dict[str, list[float]] = field(default_factory=dict)
    codes: dict[str, int] = field(default_factory=dict)


def _wall_ms(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(
        argv, env=env, cwd=ROOT, input="4711\n", capture_output=True, text=True, timeout=60
    )
    return 1000 * (time.perf_counter() - started), done.returncode


def measure_cli(workdir: Path, rules_text: str, progress: Callable[[str], None]) -> CliTimes:
    rules = workdir / "cli-rules.yaml"
    rules.write_text(rules_text)
    env = {
        **os.environ,
        "HEARTHGATE_RULES": str(rules),
        "HEARTHGATE_STATE_DIR": str(workdir / "cli-state"),
    }
    hg = [HEARTHGATE]
    for argv in (["ca"], ["status"]):  # the CA, the database and the rules cache, made once
        subprocess.run(hg + argv, env=env, cwd=ROOT, capture_output=True, timeout=120)
    res = CliTimes()
    commands = cli_commands()
    progress(f"CLI: {len(commands)} commands x {CLI_RUNS}")
    for _ in range(CLI_RUNS):
        res.baseline_ms.append(_wall_ms([sys.executable, "-c", "pass"], env)[0])
        for argv in commands:
            ms, code = _wall_ms(hg + argv, env)
            res.commands.setdefault(" ".join(argv), []).append(ms)
            res.codes[" ".join(argv)] = code
    return res


# --- one core ---------------------------------------------------------------------------


@dataclass
class OneCore:
    cpu: int
    results: throughput.ThroughputResults
    rss_mib: dict[str, tuple[float, float]]  # (idle, after the runs)


def measure_one_core(
    workdir: Path, rounds: int, seconds: float, warmup: float, progress: Callable[[str], None]
) -> OneCore | None:
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None
    proxy_cpu, rest = cores[-1], set(cores[:-1])
    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(0, rest)  # the load generator (and the upstream, started below)
    try:
        with Lab(workdir, proxy_cpu=proxy_cpu) as lab:
            os.sched_setaffinity(lab.upstream.pid, rest)
            idle = {r.target.name: sysinfo.rss_mib(r.pid) for r in (lab.mitmdump, lab.hearthgate)}
            res = throughput.ThroughputResults()
            targets = [lab.upstream, lab.mitmdump, lab.hearthgate]
            for mode in ONE_CORE_MODES:
                for conc in ONE_CORE_CONCURRENCIES:
                    for index in range(rounds):
                        for running in targets[index % 3 :] + targets[: index % 3]:
                            progress(
                                f"one core: {mode} c={conc} round {index + 1}/{rounds}: "
                                f"{running.target.name}"
                            )
                            result, cpu, main = throughput.measured(
                                running, mode, conc, seconds, warmup
                            )
                            res.cell(mode, conc, running.target.name).add(result, cpu, main)
            rss = {
                r.target.name: (idle[r.target.name], sysinfo.rss_mib(r.pid))
                for r in (lab.mitmdump, lab.hearthgate)
            }
    finally:
        os.sched_setaffinity(0, mine)
    return OneCore(proxy_cpu, res, rss)


# --- the section as a whole -------------------------------------------------------------


@dataclass
class Footprint:
    starts: Starts
    idle: IdleClients
    cli: CliTimes
    one_core: OneCore | None


def run(
    rounds: int,
    one_core_rounds: int,
    seconds: float,
    warmup: float,
    progress: Callable[[str], None],
) -> Footprint:
    from bench.proxies import bench_rules_text

    with tempfile.TemporaryDirectory(prefix="hearthgate-bench-footprint-") as tmp:
        work = Path(tmp)
        with Lab(work / "lab") as lab:
            progress("footprint: upstream, mitmdump and hearthgate are up")
            idle = measure_idle_clients(lab, progress)
            starts = measure_starts(lab, rounds, progress)
        cli = measure_cli(work, bench_rules_text(), progress)
        one = measure_one_core(work / "one-core", one_core_rounds, seconds, warmup, progress)
    return Footprint(starts, idle, cli, one)


def _spread(values: list[float]) -> str:
    return f"{median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def tables(report: Report, fp: Footprint) -> None:
    _starts(report, fp)
    _cli(report, fp.cli)
    if fp.one_core is None:
        report.section("9. One core", "Skipped: this machine lets the bench use one core only.")
    else:
        _one_core(report, fp.one_core)


def _starts(report: Report, fp: Footprint) -> None:
    s, idle = fp.starts, fp.idle
    m_start, h_start = median(s.seconds["mitmdump"]), median(s.seconds["hearthgate"])
    m_rss, h_rss = median(s.idle_mib["mitmdump"]), median(s.idle_mib["hearthgate"])
    start_ok = h_start <= 1.2 * m_start
    rss_ok = h_rss <= 1.15 * m_rss
    m_held, h_held = idle.held["mitmdump"], idle.held["hearthgate"]
    held_ok = h_held <= 1.25 * m_held
    report.target(
        "start-up: port open within 1.2x of bare mitmdump's",
        f"{h_start:.2f} s vs {m_start:.2f} s: {_ratio(h_start, m_start)}",
        start_ok,
    )
    report.target(
        "memory: idle RSS within 1.15x of bare mitmdump's",
        f"{h_rss:.1f} vs {m_rss:.1f} MiB: {_ratio(h_rss, m_rss)}",
        rss_ok,
    )
    report.target(
        f"memory: with {IDLE_CLIENTS} idle keep-alive clients within 1.25x of mitmdump's",
        f"{h_held:.1f} vs {m_held:.1f} MiB: {_ratio(h_held, m_held)}",
        held_ok,
    )
    rounds = len(s.seconds["mitmdump"])
    rows = [
        [
            "start: port open, s (median; min-max)",
            _spread(s.seconds["mitmdump"]),
            _spread(s.seconds["hearthgate"]),
            _ratio(h_start, m_start),
            f"<= 1.20x {verdict(start_ok)}",
        ],
        [
            f"RSS idle, {IDLE_SETTLE:.0f} s after the port opened, MiB",
            number(m_rss, 1),
            number(h_rss, 1),
            _ratio(h_rss, m_rss),
            f"<= 1.15x {verdict(rss_ok)}",
        ],
        [
            "RSS after the first admin request (hearthgate builds its admin app then), MiB",
            "-",
            number(median(s.admin_mib), 1) if s.admin_mib else "n/a",
            _ratio(median(s.admin_mib), m_rss) if s.admin_mib else "-",
            "",
        ],
        [
            "RSS of the running proxy before the idle clients, MiB",
            number(idle.before["mitmdump"], 1),
            number(idle.before["hearthgate"], 1),
            _ratio(idle.before["hearthgate"], idle.before["mitmdump"]),
            "",
        ],
        [
            f"RSS with {IDLE_CLIENTS} idle keep-alive HTTPS clients, MiB",
            number(m_held, 1),
            number(h_held, 1),
            _ratio(h_held, m_held),
            f"<= 1.25x {verdict(held_ok)}",
        ],
        [
            "RSS 5 s after they closed, MiB",
            number(idle.after["mitmdump"], 1),
            number(idle.after["hearthgate"], 1),
            _ratio(idle.after["hearthgate"], idle.after["mitmdump"]),
            "",
        ],
    ]
    report.section(
        "7. Start-up and memory beside bare mitmdump",
        f"{rounds} starts of each in turns, after an uncounted first start (CA and database "
        "made); the idle clients are held on the proxies of a fresh section-1 lab, hearthgate's "
        "admin app loaded by one /metrics read before.",
        table(["figure", "mitmdump", "hearthgate", "hearthgate/mitmdump", "target"], rows),
    )


def _cli(report: Report, cli: CliTimes) -> None:
    base = median(cli.baseline_ms)
    rows = []
    worst = 0.0
    for argv, times in cli.commands.items():
        mid = median(times)
        worst = max(worst, mid)
        rows.append(
            [
                f"`hearthgate {argv}`",
                number(mid),
                number(min(times)),
                f"{mid / base:.1f}x",
                str(cli.codes[argv]),
            ]
        )
    ok = worst <= CLI_TARGET_MS
    report.target(
        f"CLI: every subcommand but run within {CLI_TARGET_MS:.0f} ms wall (median of {CLI_RUNS})",
        f"{len(rows)} commands; slowest median {worst:.0f} ms (`python -c pass` {base:.0f} ms)",
        ok,
    )
    report.section(
        "8. The CLI",
        f"Wall time from spawn to exit, ms, {CLI_RUNS} runs of each (median, min), in a state "
        "directory with its database, CA and rules cache; dummy values for required arguments, "
        "so some commands end in a refusal (exit 1) after loading what they need. "
        f"`python -c pass` here: median {base:.0f} ms.",
        table(["command", "median ms", "min ms", "x python -c pass", "exit"], rows),
    )


def _one_core(report: Report, one: OneCore) -> None:
    res = one.results
    rows = []
    lat_rows = []
    for mode in ONE_CORE_MODES:
        for conc in ONE_CORE_CONCURRENCIES:
            d = res.cell(mode, conc, "direct")
            m = res.cell(mode, conc, "mitmdump")
            h = res.cell(mode, conc, "hearthgate")
            rows.append(
                [
                    throughput_label(mode),
                    str(conc),
                    number(m.median_rps),
                    number(h.median_rps),
                    _ratio(h.median_rps, m.median_rps),
                    number(m.cpu_us_per_request),
                    number(h.cpu_us_per_request),
                    str(m.errors + h.errors),
                ]
            )
            if conc == 1:
                lat_rows.append(
                    [
                        throughput_label(mode),
                        f"{m.ms(50) - d.ms(50):.2f} / {m.ms(99) - d.ms(99):.2f}",
                        f"{h.ms(50) - d.ms(50):.2f} / {h.ms(99) - d.ms(99):.2f}",
                    ]
                )
    rss = one.rss_mib
    report.section(
        "9. One core (a small box)",
        f"Both proxies pinned to core {one.cpu} with `taskset -c {one.cpu}` (every thread: the "
        "event loop, the decision-log writer), the load generator and upstream on the other "
        "core(s). Requests/s, median of the rounds; proxy CPU per answered request, µs:",
        table(
            [
                "mode",
                "conc.",
                "mitmdump rps",
                "hearthgate rps",
                "hearthgate/mitmdump",
                "mitmdump µs CPU",
                "hearthgate µs CPU",
                "errors",
            ],
            rows,
        ),
        "Added latency at concurrency 1, ms (p50 / p99, the proxy's minus direct's):",
        table(["mode", "mitmdump", "hearthgate"], lat_rows),
        "RSS on one core, MiB: "
        + "; ".join(
            f"{name} {idle:.1f} idle, {after:.1f} after the runs"
            for name, (idle, after) in rss.items()
        ),
    )


def throughput_label(mode: str) -> str:
    return {
        "http": "HTTP keep-alive",
        "https": "HTTPS keep-alive",
        "https-new": "HTTPS new conn/request",
    }[mode]
