"""End-to-end fixtures: the real ``hearthgate run`` between SDK clients and a fake TLS upstream.

Every address is on loopback. Clients pick their *source* address to play different devices:
127.0.0.2 is a kid's laptop, 127.0.0.3 a parent's, 127.0.0.1 an unknown device.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anthropic
import httpcore
import httpcore2
import httpx
import httpx2
import openai
import pytest

from tests.support.fake_llm import FakeLLM
from tests.support.pki import Pki, make_pki
from tests.support.proxyproc import ProxyProcess, ssl_context, wait_until

ROOT = Path(__file__).resolve().parents[2]
HEARTHGATE = str(Path(sys.executable).with_name("hearthgate"))
REDIRECT = str(ROOT / "tests" / "support" / "redirect_addon.py")
KID, PARENT, UNKNOWN = "127.0.0.2", "127.0.0.3", "127.0.0.1"
HOSTS = [
    "api.openai.com",
    "api.anthropic.com",
    "generativelanguage.googleapis.com",
    "chatgpt.com",
    "example.org",
    "api.mistral.ai",
    "api.groq.com",
    "api.cohere.com",
    "ollama.lan",
]
# A household's own Ollama server, as SPEC section 4 shows it (reached over TLS in the tests).
OLLAMA_PROVIDER = "providers:\n  - {name: home-ollama, hosts: [ollama.lan], api: ollama}\n"


def window_around_now() -> tuple[str, str]:
    """A UTC time window that is open now and for the next hour."""
    now = datetime.now(UTC)
    start, end = now - timedelta(hours=1), now + timedelta(hours=2)
    return start.strftime("%H:%M"), end.strftime("%H:%M")


def household(*, bedtime: bool = True, extra: str = "") -> str:
    start, end = window_around_now()
    rules = f"""\
version: 1
settings: {{timezone: UTC, unknown_devices: {{groups: [guests]}}}}
groups: {{parents: {{}}, kids: {{}}, guests: {{}}}}
people:
  alice: {{groups: [kids]}}
  mom: {{groups: [parents]}}
devices:
  alice-laptop: {{person: alice, ips: [{KID}]}}
  mom-laptop: {{person: mom, ips: [{PARENT}]}}
"""
    if bedtime:
        rules += f"""\
time_rules:
  - name: bedtime
    start: "{start}"
    end: "{end}"
    applies_to: {{groups: [kids]}}
    message: Bedtime, Alice.
"""
    return rules + extra


def proxied_transport(
    proxy_url: str,
    source: str,
    ca: Path,
    hx: Any = httpx,
    hcore: Any = httpcore,
    http2: bool = False,
    proxy_headers: list[tuple[bytes, bytes]] | None = None,
) -> Any:
    """A transport through the proxy *from* ``source``. httpx drops ``local_address`` when a
    proxy is set, so the proxy pool is built here with a backend that binds the source.
    ``hx``/``hcore`` are httpx/httpcore or httpx2/httpcore2 (the anthropic SDK's)."""

    class SourceBackend(hcore.SyncBackend):  # type: ignore[misc,name-defined]
        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Any = None,
        ) -> Any:
            return super().connect_tcp(host, port, timeout, source, socket_options)

    transport = hx.HTTPTransport(verify=ssl_context(ca), trust_env=False)
    url = hx.URL(proxy_url)
    transport._pool = hcore.HTTPProxy(
        proxy_url=hcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=b"/"),
        ssl_context=ssl_context(ca),
        network_backend=SourceBackend(),
        http2=http2,
        proxy_headers=proxy_headers,
    )
    return transport


class Gate:
    """A running ``hearthgate run`` and what tests need to talk to it."""

    def __init__(self, proc: ProxyProcess, state_dir: Path, rules: Path, pki: Pki) -> None:
        self.proc, self.state_dir, self.rules, self.pki = proc, state_dir, rules, pki
        info = json.loads((state_dir / "run.json").read_text())
        self.admin_url = "http://{}:{}".format(*info["admin"])
        self.ca = Path(info["ca_cert"])

    @property
    def url(self) -> str:
        return self.proc.url

    def http(
        self, source: str = UNKNOWN, verify: Path | None = None, **kwargs: Any
    ) -> httpx.Client:
        transport = proxied_transport(self.url, source, verify or self.ca)
        return httpx.Client(transport=transport, timeout=20, **kwargs)

    def openai(self, source: str = UNKNOWN) -> openai.OpenAI:
        return openai.OpenAI(
            api_key="sk-test-secret",
            base_url="https://api.openai.com/v1",
            max_retries=0,
            http_client=self.http(source),
        )

    def anthropic(self, source: str = UNKNOWN) -> anthropic.Anthropic:
        transport = proxied_transport(self.url, source, self.ca, httpx2, httpcore2)
        client = httpx2.Client(transport=transport, timeout=20, trust_env=False)
        return anthropic.Anthropic(
            api_key="sk-ant-test-secret",
            max_retries=0,
            base_url="https://api.anthropic.com",
            http_client=client,
        )

    def health(self) -> dict[str, Any]:
        return httpx.get(f"{self.admin_url}/healthz", timeout=5).json()

    def rows(
        self, where: str = "1=1", params: tuple[Any, ...] = (), expect: int = 1, timeout: float = 10
    ) -> list[sqlite3.Row]:
        """Decision-log rows, waiting until at least ``expect`` of them are written."""
        found: list[sqlite3.Row] = []

        def enough() -> bool:
            nonlocal found
            with sqlite3.connect(self.state_dir / "hearthgate.db") as conn:
                conn.row_factory = sqlite3.Row
                found = conn.execute(
                    f"SELECT * FROM decisions WHERE {where} ORDER BY id", params
                ).fetchall()
            return len(found) >= expect

        wait_until(enough, timeout, f"{expect} decision rows where {where}")
        return found

    def metrics(self) -> str:
        return httpx.get(f"{self.admin_url}/metrics", timeout=5).text

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with sqlite3.connect(self.state_dir / "hearthgate.db") as conn:
            conn.row_factory = sqlite3.Row
            return conn.execute(query, params).fetchall()

    def write_rules(self, text: str) -> None:
        tmp = self.rules.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.rules)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), HOSTS)


@pytest.fixture(scope="session")
def fake_llm(pki: Pki) -> Iterator[FakeLLM]:
    with FakeLLM(pki) as server:
        yield server


def start_gate(
    tmp: Path,
    rules_text: str,
    pki: Pki,
    fake: FakeLLM,
    *extra: str,
    listen_host: str = "127.0.0.1",
    env: dict[str, str] | None = None,
    state: Path | None = None,
    redirect: bool = True,
) -> ProxyProcess:
    """``redirect=False``: no redirect addon, upstream connections go where DNS says."""
    state, rules = state or tmp / "state", tmp / "household.yaml"
    rules.write_text(rules_text)
    argv = [
        HEARTHGATE,
        "run",
        "--rules",
        str(rules),
        "--state-dir",
        str(state),
        "--listen-host",
        listen_host,
        "--listen-port",
        "0",
        "--admin",
        "127.0.0.1:0",
        *(["-s", REDIRECT] if redirect else []),
        "--set",
        f"ssl_verify_upstream_trusted_ca={pki.ca_cert}",
        *extra,
    ]
    proc = ProxyProcess.start(
        argv,
        env={"HEARTHGATE_TEST_UPSTREAM": fake.address, **(env or {})},
        cwd=ROOT,
        host=listen_host,
        probe="transparent" not in extra,  # ready once run.json is written (below)
    )
    try:
        wait_until(lambda: (state / "run.json").exists(), 20, "run.json")
    except TimeoutError as exc:
        proc.stop()
        raise TimeoutError(f"{exc}\n--- gate output ---\n{proc.output}") from None
    return proc


@pytest.fixture
def make_gate(tmp_path: Path, pki: Pki, fake_llm: FakeLLM) -> Iterator[Any]:
    started: list[ProxyProcess] = []

    def make(
        rules_text: str | None = None,
        *extra: str,
        listen_host: str = "127.0.0.1",
        env: dict[str, str] | None = None,
        state: Path | None = None,
        redirect: bool = True,
    ) -> Gate:
        state = state or tmp_path / "state"
        proc = start_gate(
            tmp_path,
            rules_text or household(),
            pki,
            fake_llm,
            *extra,
            listen_host=listen_host,
            env=env,
            state=state,
            redirect=redirect,
        )
        started.append(proc)
        return Gate(proc, state, tmp_path / "household.yaml", pki)

    yield make
    for proc in started:
        proc.stop()


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory, pki: Pki, fake_llm: FakeLLM) -> Iterator[Gate]:
    tmp = tmp_path_factory.mktemp("gate")
    proc = start_gate(tmp, household(), pki, fake_llm)
    try:
        yield Gate(proc, tmp / "state", tmp / "household.yaml", pki)
    finally:
        proc.stop()


def settle(seconds: float = 0.1) -> None:
    time.sleep(seconds)


def cli(gate: Gate, *args: str, check: bool = True) -> str:
    """Run the real ``hearthgate`` CLI against a running gate's state and rules."""
    import subprocess

    done = subprocess.run(
        [HEARTHGATE, *args, "--state-dir", str(gate.state_dir), "--rules", str(gate.rules)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"hearthgate {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )
    return done.stdout + done.stderr
