"""Transparent mode for real: a device in its own network namespace connects straight to the
service address; nftables redirects TCP 443 to the gate, as on a home router."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.conftest import Gate, household
from tests.e2e.netns import Netns, netns

pytestmark = pytest.mark.e2e
PROBE = str(Path(__file__).with_name("nsprobe.py"))


@contextmanager
def redirect_443(ns: Netns, port: int) -> Iterator[None]:
    if shutil.which("nft") is None:
        pytest.fail("nftables (nft) is needed for the transparent-mode tests")
    table = f"hgt{ns.name}"
    ruleset = (
        f"table ip {table} {{\n  chain pre {{\n"
        "    type nat hook prerouting priority dstnat; policy accept;\n"
        f'    iifname "{ns.host_if}" tcp dport 443 redirect to :{port}\n  }}\n}}\n'
    )
    subprocess.run(["nft", "-f", "-"], input=ruleset, text=True, check=True, timeout=10)
    try:
        yield
    finally:
        subprocess.run(["nft", "delete", "table", "ip", table], capture_output=True, timeout=10)


def probe(ns: Netns, *args: str) -> dict[str, object]:
    done = ns.run([sys.executable, PROBE, *args])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def transparent_gate(make_gate, ns: Netns, inspect: str) -> Gate:  # type: ignore[no-untyped-def]
    rules = household().replace(
        "  mom-laptop:",
        f"  alice-pc: {{person: alice, ips: [{ns.client_ip}], inspect: {inspect}}}\n  mom-laptop:",
    )
    return make_gate(rules, "--mode", "transparent", listen_host=ns.host_ip)  # type: ignore[no-any-return]


def test_inspected_device_is_decided_per_request(make_gate) -> None:  # type: ignore[no-untyped-def]
    with netns() as ns:
        gate = transparent_gate(make_gate, ns, "tls")
        with redirect_443(ns, gate.proc.port):
            answer = probe(ns, "https", ns.host_ip, str(gate.ca))
        assert answer.get("status") == 403, answer
        assert "Bedtime, Alice." in str(answer["body"])
        [row] = gate.rows("device = 'alice-pc'")
        assert (row["host"], row["model"], row["stage"]) == (
            "api.openai.com",
            "gpt-4o-mini",
            "time_rule",
        )


def test_sni_device_block_refuses_the_handshake_without_a_certificate(make_gate) -> None:  # type: ignore[no-untyped-def]
    with netns() as ns:
        gate = transparent_gate(make_gate, ns, "sni")
        with redirect_443(ns, gate.proc.port):
            answer = probe(ns, "handshake", ns.host_ip)
        assert answer["certificate"] is False and "error" in answer
        [row] = gate.rows("device = 'alice-pc'")
        assert (row["method"], row["stage"], row["allowed"]) == ("CONNECT", "time_rule", 0)


def test_allowed_sni_device_is_tunnelled_with_the_real_certificate(make_gate) -> None:  # type: ignore[no-untyped-def]
    with netns() as ns:
        rules = household(bedtime=False).replace(
            "  mom-laptop:",
            f"  alice-pc: {{person: alice, ips: [{ns.client_ip}], inspect: sni}}\n  mom-laptop:",
        )
        gate: Gate = make_gate(rules, "--mode", "transparent", listen_host=ns.host_ip)
        with redirect_443(ns, gate.proc.port):
            answer = probe(ns, "https", ns.host_ip, str(gate.pki.ca_cert))
        assert answer.get("status") == 200, answer
        [row] = gate.rows("device = 'alice-pc'")
        assert row["allowed"] == 1 and row["model"] is None
