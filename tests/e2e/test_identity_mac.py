"""A device recognised by its MAC address, from the kernel's neighbour table, in a real
network namespace joined by a veth pair (root only; CI runs as root)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Gate, cli, household
from tests.e2e.netns import Netns, netns
from tests.support.proxyproc import wait_until

pytestmark = pytest.mark.e2e
CLIENT = str(Path(__file__).with_name("nsclient.py"))


def ask(ns: Netns, gate: Gate, host_ip: str) -> dict[str, object]:
    done = ns.run([sys.executable, CLIENT, f"http://{host_ip}:{gate.proc.port}", str(gate.ca)])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_allowlisted_mac_passes_at_bedtime(make_gate) -> None:  # type: ignore[no-untyped-def]
    with netns("aa:bb:cc:dd:ee:99") as ns:
        rules = household().replace(
            "applies_to: {groups: [kids]}", "applies_to: {groups: [kids, guests]}"
        )
        gate: Gate = make_gate(rules, listen_host=ns.host_ip)
        assert ask(ns, gate, ns.host_ip)["allowed"] is False  # a guest at bedtime
        cli(gate, "allow", "add", "AA-BB-CC-DD-EE-99", "--reason", "visiting cousin", "--as", "mom")
        wait_until(
            lambda: ask(ns, gate, ns.host_ip)["allowed"] is True,
            10,
            "the MAC to be recognised and allowed",
        )
        [row] = gate.rows("stage = 'allowlist'")
        assert row["client_ip"] == ns.client_ip
        assert "aa:bb:cc:dd:ee:99" in row["reason"] and "visiting cousin" in row["reason"]


def test_device_named_by_mac_in_the_rules(make_gate) -> None:  # type: ignore[no-untyped-def]
    with netns("02:00:00:00:00:42") as ns:
        rules = household().replace(
            "  mom-laptop:",
            '  kid-phone: {person: alice, macs: ["02-00-00-00-00-42"]}\n  mom-laptop:',
        )
        gate: Gate = make_gate(rules, listen_host=ns.host_ip)

        def decided_as_kid_phone() -> bool:
            ask(ns, gate, ns.host_ip)
            return any(r["device"] == "kid-phone" for r in gate.rows("1=1", expect=0))

        # the first request may come before the neighbour table has the new MAC
        wait_until(decided_as_kid_phone, 15, "a decision for kid-phone")
        row = [r for r in gate.rows("1=1") if r["device"] == "kid-phone"][-1]
        assert (row["person"], row["stage"], row["allowed"]) == ("alice", "time_rule", 0)
