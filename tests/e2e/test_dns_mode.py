"""DNS mode for real: a device in its own namespace whose resolver is the gate, and the
gate's upstream resolver a small fake DNS server in another namespace that maps the catalog
names to the fake LLM. The official SDKs use no proxy setting: the name resolves to the
gate, the connection lands on its DNS-directed listener, and the gate finds the real
service through the upstream resolver."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import HEARTHGATE, Gate, cli, household
from tests.e2e.netns import Netns, netns
from tests.support.fake_llm import FakeLLM, reply_text
from tests.support.pki import Pki
from tests.support.proxyproc import wait_until

pytestmark = pytest.mark.e2e
HERE = Path(__file__).parent
CLIENT, FAKEDNS = str(HERE / "nsdns.py"), str(HERE / "fakedns.py")
ECH = base64.b64encode(b"an ECHConfigList would be here").decode()


@dataclass
class Net:
    client: Netns  # the device; its resolver is the gate at client.host_ip
    upstream: Netns  # the fake DNS server at upstream.client_ip
    queries: Path  # what the fake DNS server was asked, one "name TYPE" per line

    def device(self, *args: str, ca: Path | None = None) -> dict[str, Any]:
        env = {**os.environ, "HEARTHGATE_TEST_CA": str(ca or "")}
        done = self.client.run([sys.executable, CLIENT, *args], env=env, cwd=str(HERE))
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    def ask(self, name: str, qtype: str = "A") -> dict[str, Any]:
        return self.device("query", self.client.host_ip, name, qtype)

    def asked(self) -> list[str]:
        return self.queries.read_text().splitlines()


@contextmanager
def network(tmp_path: Path, pki: Pki, forward_to_gate: bool = False) -> Iterator[Net]:
    """``forward_to_gate``: the upstream forwards every query to the gate, as a router does
    whose own DNS server was set to the gate."""
    with netns(resolver="{ns.host_ip}") as client, netns(mac="aa:bb:cc:dd:ee:98") as upstream:
        llm = upstream.host_ip  # the fake LLM listens on the host's side of that link
        zone = {
            "api.openai.com A": [llm],
            "api.anthropic.com A": [llm],
            "api.openai.com HTTPS": [{"alpn": ["h2"], "ipv4hint": "203.0.113.9"}],
            "ech.example.org HTTPS": [{"alpn": ["h2", "h3"], "ech": ECH}],
            "plain.example.org A": ["192.0.2.77"],
            "alias.example.org A": [{"cname": "api.openai.com"}, "203.0.113.5"],
        }
        (tmp_path / "zone.json").write_text(json.dumps(zone))
        log = tmp_path / "queries.log"
        log.write_text("")
        server = subprocess.Popen(
            ["ip", "netns", "exec", upstream.name, sys.executable, FAKEDNS,
             upstream.client_ip, "53", str(tmp_path / "zone.json"), str(log),
             *([upstream.host_ip] if forward_to_gate else [])],
            cwd=HERE,
        )  # fmt: skip
        try:
            wait_until(lambda: "ready" in log.read_text(), 20, "the fake DNS server")
            with nullcontext() if forward_to_gate else FakeLLM(pki, host=llm, port=443):
                yield Net(client, upstream, log)
        finally:
            server.kill()
            server.wait(10)


def dns_gate(make_gate, net: Net, rules: str) -> Gate:  # type: ignore[no-untyped-def]
    gate_ip = net.client.host_ip
    return make_gate(  # type: ignore[no-any-return]
        rules,
        "--dns",
        f"{gate_ip}:53",
        "--dns-upstream",
        net.upstream.client_ip,
        listen_host=gate_ip,
        redirect=False,
    )


def kid_rules(net: Net, *, bedtime: bool, inspect: str = "tls", extra: str = "") -> str:
    return household(bedtime=bedtime, extra=extra).replace(
        "  mom-laptop:",
        f"  alice-pc: {{person: alice, ips: [{net.client.client_ip}], inspect: {inspect}}}\n"
        "  mom-laptop:",
    )


def test_sdks_resolve_through_the_gate_and_reach_the_service(  # type: ignore[no-untyped-def]
    make_gate, tmp_path: Path, pki: Pki
) -> None:
    with network(tmp_path, pki) as net:
        gate = dns_gate(make_gate, net, kid_rules(net, bedtime=False))
        assert net.device("resolve", "api.openai.com") == {"addresses": [net.client.host_ip]}
        assert net.device("openai", ca=gate.ca) == {"allowed": True, "text": reply_text("hi")}
        streamed = net.device("openai-stream", ca=gate.ca)
        assert streamed == {"allowed": True, "text": "one two three four five"}
        answer = net.device("anthropic", ca=gate.ca)
        assert answer["allowed"] is True and answer["text"], answer
        rows = gate.rows("device = 'alice-pc'", expect=3)
        assert [(r["host"], r["allowed"]) for r in rows] == [
            ("api.openai.com", 1), ("api.openai.com", 1), ("api.anthropic.com", 1)
        ]  # fmt: skip
        # the gate looked the services up through its upstream, never through itself
        assert "api.openai.com A" in net.asked() and "api.anthropic.com A" in net.asked()


def test_blocked_requests_get_the_sdks_own_errors(make_gate, tmp_path: Path, pki: Pki) -> None:  # type: ignore[no-untyped-def]
    with network(tmp_path, pki) as net:
        gate = dns_gate(make_gate, net, kid_rules(net, bedtime=True))
        for kind in ("openai", "anthropic"):
            answer = net.device(kind, ca=gate.ca)
            assert answer["allowed"] is False, answer
            assert answer["error"] == "PermissionDeniedError"
            assert "Bedtime, Alice." in answer["message"]
        # plain HTTP on port 80, routed by its Host header, is decided the same way
        plain = net.device("http", "api.openai.com")
        assert plain.get("status") == 403 and "Bedtime, Alice." in plain["body"], plain
        rows = gate.rows("device = 'alice-pc'", expect=3)
        assert {r["stage"] for r in rows} == {"time_rule"}
        assert [r["path"] for r in rows].count("/v1/chat/completions") == 2


def test_answers_other_names_unchanged_and_strips_ech(make_gate, tmp_path: Path, pki: Pki) -> None:  # type: ignore[no-untyped-def]
    with network(tmp_path, pki) as net:
        rules = kid_rules(net, bedtime=False, extra="dns: {block_doh: true}\n")
        gate = dns_gate(make_gate, net, rules)
        plain = net.ask("plain.example.org")
        assert plain == {
            "rcode": 0,
            "answers": [
                {"name": "plain.example.org", "type": "A", "ttl": 4321, "data": "192.0.2.77",
                 "ech": None, "alpn": None}
            ],
        }  # fmt: skip
        [https] = net.ask("ech.example.org", "HTTPS")["answers"]
        assert https["ech"] is None and https["ttl"] == 4321
        assert https["alpn"] == ["h2", "h3"], https  # the rest is left as it came
        assert net.ask("nothing.example.org")["rcode"] == 3  # the upstream's NXDOMAIN
        # a catalog name: the gate's address, and no HTTPS record whose hints lead past it
        assert [a["data"] for a in net.ask("api.openai.com")["answers"]] == [net.client.host_ip]
        assert net.ask("api.openai.com", "HTTPS")["answers"] == []
        assert net.ask("api.openai.com", "AAAA")["answers"] == []  # no IPv6 on that side
        # an alias of a catalog name also leads to the gate
        cname, address = net.ask("alias.example.org")["answers"]
        assert (cname["type"], cname["data"]) == ("CNAME", "api.openai.com")
        assert (address["name"], address["data"]) == ("api.openai.com", net.client.host_ip)
        # Firefox's canary and (dns.block_doh) public DoH resolvers: NXDOMAIN, never forwarded
        assert net.ask("use-application-dns.net")["rcode"] == 3
        assert net.ask("dns.google")["rcode"] == 3
        assert net.ask("chrome.cloudflare-dns.com")["rcode"] == 3
        asked = net.asked()
        assert not any(
            line.split()[0] in ("use-application-dns.net", "dns.google") for line in asked
        )
        assert "api.openai.com HTTPS" not in asked
        # a connection for a name outside the catalog is refused, without a certificate
        refused = net.device("handshake", "plain.example.org", net.client.host_ip)
        assert refused["certificate"] is False, refused
        metrics = gate.metrics()
        assert 'hearthgate_dns_queries_total{device="alice-pc",outcome="gate"} 3.0' in metrics
        assert (
            'hearthgate_dns_queries_total{device="alice-pc",outcome="doh_blocked"} 2.0' in metrics
        )
        assert "hearthgate_dns_refused_connections_total 1.0" in metrics
        status = cli(gate, "status", "--json")
        dns = json.loads(status[status.index("{") :])["dns"]
        assert dns["on"] is True and dns["queries"] >= 10, dns


def test_blocked_sni_device_sees_no_certificate(make_gate, tmp_path: Path, pki: Pki) -> None:  # type: ignore[no-untyped-def]
    with network(tmp_path, pki) as net:
        gate = dns_gate(make_gate, net, kid_rules(net, bedtime=True, inspect="sni"))
        answer = net.device("handshake", "api.openai.com")
        assert answer["certificate"] is False and "error" in answer, answer
        [row] = gate.rows("device = 'alice-pc'")
        assert (row["method"], row["stage"], row["allowed"]) == ("CONNECT", "time_rule", 0)


def test_allowed_sni_device_is_tunnelled_to_the_service_untouched(  # type: ignore[no-untyped-def]
    make_gate, tmp_path: Path, pki: Pki
) -> None:
    with network(tmp_path, pki) as net:
        gate = dns_gate(make_gate, net, kid_rules(net, bedtime=False, inspect="sni"))
        # the device sees the service's own certificate (the fake's test CA), not the gate's
        assert net.device("openai", ca=pki.ca_cert) == {"allowed": True, "text": reply_text("hi")}
        [row] = gate.rows("device = 'alice-pc'")
        assert (row["method"], row["allowed"], row["model"]) == ("CONNECT", 1, None)


def test_an_upstream_that_is_the_gate_itself_is_refused_at_start(tmp_path: Path) -> None:
    rules = tmp_path / "household.yaml"
    rules.write_text(household())
    base = [HEARTHGATE, "run", "--rules", str(rules), "--state-dir", str(tmp_path / "s"),
            "--admin", "127.0.0.1:0", "--listen-port", "0"]  # fmt: skip
    given = subprocess.run(
        [*base, "--dns", "127.0.0.1:5399", "--dns-upstream", "127.0.0.1:5399"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert given.returncode == 2 and "is this gate's own DNS server" in given.stderr
    # the usual trap: the router hands out the gate as DNS server, the gate's host takes it
    with netns(resolver="{ns.client_ip}") as ns:
        done = ns.run([*base, "--listen-host", ns.client_ip, "--dns", f"{ns.client_ip}:53"])
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"upstream resolver {ns.client_ip} is this gate's own DNS server" in done.stderr


def test_an_upstream_that_forwards_back_to_the_gate_stops_it(  # type: ignore[no-untyped-def]
    make_gate, tmp_path: Path, pki: Pki
) -> None:
    with network(tmp_path, pki, forward_to_gate=True) as net:
        rules = tmp_path / "loop.yaml"
        rules.write_text(household())
        gate_ip = net.upstream.host_ip  # where the "router" forwards to
        done = subprocess.run(
            [HEARTHGATE, "run", "--rules", str(rules), "--state-dir", str(tmp_path / "loop"),
             "--admin", "127.0.0.1:0", "--listen-host", gate_ip, "--listen-port", "0",
             "--dns", f"{gate_ip}:53", "--dns-upstream", net.upstream.client_ip],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 2, done.stdout + done.stderr
        assert f"upstream resolver {net.upstream.client_ip} forwards queries back" in done.stderr
        [probe] = [line for line in net.asked() if "loop-check" in line]
        assert probe.endswith(".hearthgate.arpa A")  # asked once, refused, never forwarded


def test_status_says_dns_mode_is_off_without_it(gate: Gate) -> None:
    out = cli(gate, "status")
    assert "DNS mode: off" in out
    wait_until(lambda: httpx.get(f"{gate.admin_url}/healthz").json()["dns"] == {"on": False})
    time.sleep(0)
