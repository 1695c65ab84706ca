"""Starting what the proxy benchmark talks to: the upstream, bare mitmdump, hearthgate.

Each is a subprocess in its own process group (``tests.support.proxyproc.ProxyProcess``), so
stopping it takes its children down too; ``Lab`` stops them all on exit, on success or on
failure. Both proxies get the same redirect script (the minimum needed to reach the fake
upstream), ``connection_strategy=lazy`` and an ``allow_hosts`` covering api.openai.com.
"""

from __future__ import annotations

import contextlib
import json
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bench.load import Target
from proxy.rules.loader import load_rules_text
from tests.support.pki import Pki, make_pki
from tests.support.proxyproc import MITMDUMP, ProxyProcess

ROOT = Path(__file__).resolve().parents[1]
REDIRECT = ROOT / "tests" / "support" / "redirect_addon.py"
STREAM_ADDON = ROOT / "bench" / "stream_addon.py"
HOUSEHOLD = ROOT / "rules" / "household.yaml"
HEARTHGATE = str(Path(sys.executable).with_name("hearthgate"))
UPSTREAM_PATTERN = r"bench upstream listening at 127\.0\.0\.1:(?P<port>\d+)"
START_TIMEOUT = 30.0
BENCH_DEVICE = "bench-client"
BENCH_PERSON = "dad"  # in `parents`: nothing in household.yaml blocks parents


@dataclass
class Running:
    """A started process and the client's view of it."""

    process: ProxyProcess
    target: Target
    pid: int
    admin_port: int | None = None
    served: int = 0  # requests answered so far, counted by the bench client

    def metrics(self) -> dict[str, float]:
        """The hearthgate_* samples of ``/metrics`` on the admin port (loopback, no proxy)."""
        if self.admin_port is None:
            return {}
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        url = f"http://127.0.0.1:{self.admin_port}/metrics"
        with opener.open(url, timeout=10) as answer:
            text = answer.read().decode()
        samples = {}
        for line in text.splitlines():
            if line.startswith("hearthgate_") and " " in line:
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        return samples


def bench_rules_text() -> str:
    """household.yaml plus a device for 127.0.0.1 (a parent's) and a generous parents' quota.

    Requests from the bench then go through every stage (time rules for kids, policies incl.
    a quota check) and end at ``settings.default`` = allow.
    """
    rules = yaml.safe_load(HOUSEHOLD.read_text())
    rules["devices"][BENCH_DEVICE] = {"person": BENCH_PERSON, "ips": ["127.0.0.1", "::1"]}
    rules["policies"].append(
        {
            "name": "parents-fair-use",
            "priority": 60,
            "when": {"groups": ["parents"]},
            "quota": {"per": "person", "requests_per_day": 100_000_000},
            "action": "block",
        }
    )
    text = yaml.safe_dump(rules, sort_keys=False)
    load_rules_text(text, "bench-rules.yaml")  # fail here, not inside a starting proxy
    return text


@dataclass
class Lab:
    """The upstream and both proxies, started in ``workdir``; ``close()`` stops them all."""

    workdir: Path
    stream_addon: bool = False  # mitmdump streams SSE (the streaming section's baseline)
    proxy_cpu: int | None = None  # both proxies pinned to this core (taskset), when set
    pki: Pki = field(init=False)
    upstream: Running = field(init=False)
    mitmdump: Running = field(init=False)
    hearthgate: Running = field(init=False)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def start(self) -> Lab:
        try:
            self.pki = make_pki(self.workdir / "pki", ["api.openai.com"])
            self.upstream = self._start_upstream()
            env = {"HEARTHGATE_TEST_UPSTREAM": f"127.0.0.1:{self.upstream.target.port}"}
            self.mitmdump = self._start_mitmdump(env)
            self.hearthgate = self._start_hearthgate(env)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _own(self, process: ProxyProcess) -> ProxyProcess:
        self._stack.callback(process.stop)
        return process

    def _start_upstream(self) -> Running:
        argv = [
            sys.executable,
            "-m",
            "bench.upstream",
            "--cert",
            str(self.pki.cert),
            "--key",
            str(self.pki.key),
        ]
        proc = self._own(
            ProxyProcess.start(
                argv, cwd=ROOT, listen_pattern=UPSTREAM_PATTERN, timeout=START_TIMEOUT
            )
        )
        return Running(proc, Target("direct", proc.port, False, self.pki.ca_cert), proc.popen.pid)

    def pinned(self, argv: list[str]) -> list[str]:
        """``argv`` run on ``proxy_cpu`` alone (every thread it starts inherits the mask)."""
        return argv if self.proxy_cpu is None else ["taskset", "-c", str(self.proxy_cpu), *argv]

    def _start_mitmdump(self, env: dict[str, str]) -> Running:
        confdir = self.workdir / "mitmdump"
        argv = self.mitmdump_argv(confdir)
        proc = self._own(ProxyProcess.start(argv, env, cwd=ROOT, timeout=START_TIMEOUT))
        ca = proc.wait_for_file(confdir / "mitmproxy-ca-cert.pem", timeout=START_TIMEOUT)
        return Running(proc, Target("mitmdump", proc.port, True, ca), proc.popen.pid)

    def mitmdump_argv(self, confdir: Path, port: int = 0) -> list[str]:
        argv = [
            MITMDUMP,
            "--listen-host",
            "127.0.0.1",
            "--listen-port",
            str(port),
            "-s",
            str(REDIRECT),
            "--set",
            f"confdir={confdir}",
            "--set",
            f"ssl_verify_upstream_trusted_ca={self.pki.ca_cert}",
            "--set",
            "connection_strategy=lazy",
            "--set",
            r"allow_hosts=^api\.openai\.com(:\d+)?$",
            "--set",
            "flow_detail=0",  # no per-flow line on stdout: the leanest mitmdump
        ]
        if self.stream_addon:
            argv[5:5] = ["-s", str(STREAM_ADDON)]
        return self.pinned(argv)

    def _start_hearthgate(self, env: dict[str, str]) -> Running:
        state = self.workdir / "hearthgate-state"
        argv = self.hearthgate_argv(state)
        proc = self._own(ProxyProcess.spawn(argv, env, cwd=ROOT))
        run_file = proc.wait_for_file(state / "run.json", timeout=START_TIMEOUT)
        info = json.loads(run_file.read_text())
        port = int(info["proxy"][0][1])
        target = Target("hearthgate", port, True, Path(info["ca_cert"]))
        return Running(
            proc, target, int(info.get("pid") or proc.popen.pid), admin_port=int(info["admin"][1])
        )

    def hearthgate_argv(self, state: Path, port: int = 0) -> list[str]:
        rules = self.workdir / "bench-rules.yaml"
        if not rules.exists():
            rules.write_text(bench_rules_text())
        argv = [
            HEARTHGATE,
            "run",
            "--rules",
            str(rules),
            "--state-dir",
            str(state),
            "--listen-host",
            "127.0.0.1",
            "--listen-port",
            str(port),
            "--admin",
            "127.0.0.1:0",
            "-s",
            str(REDIRECT),
            "--set",
            f"ssl_verify_upstream_trusted_ca={self.pki.ca_cert}",
        ]
        return self.pinned(argv)

    @property
    def db_path(self) -> Path:
        return self.workdir / "hearthgate-state" / "hearthgate.db"
