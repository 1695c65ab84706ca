from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from governance.state import EMPTY_STATE, RuntimeAllow, RuntimeState
from proxy.identity import NeighbourTable, _read_arp, macs_matter, resolve
from tests.governance.helpers import BASE, snapshot

RULES = """
  tv: {ips: [192.168.1.0/24], groups: [guests]}
  alice-phone: {person: alice, ips: ["fd00::1:50"]}
"""


@pytest.fixture
def snap():  # type: ignore[no-untyped-def]
    return snapshot(base=__import__("tests.governance.helpers", fromlist=["BASE"]).BASE + RULES)


def test_arp_table_is_parsed_and_normalised(tmp_path: Path) -> None:
    arp = tmp_path / "arp"
    arp.write_text(
        "IP address       HW type     Flags       HW address            Mask     Device\n"
        "192.168.1.50     0x1         0x2         AA:BB:CC:DD:EE:01     *        br-lan\n"
        "192.168.1.99     0x1         0x0         00:00:00:00:00:00     *        br-lan\n"
    )
    assert _read_arp(arp) == {"192.168.1.50": "aa:bb:cc:dd:ee:01"}
    assert _read_arp(tmp_path / "missing") == {}


def test_order_user_then_mac_then_ip_then_cidr(snap) -> None:  # type: ignore[no-untyped-def]
    # proxy-auth user names a person: wins over everything
    ident = resolve(snap, "192.168.1.50", user="mom", mac="aa:bb:cc:dd:ee:01")
    assert (ident.device, ident.person) == ("user:mom", "mom")
    # MAC wins over IP: alice's laptop MAC seen on the parent's IP
    ident = resolve(snap, "192.168.1.10", mac="aa:bb:cc:dd:ee:01")
    assert ident.device == "alice-laptop" and ident.groups == {"kids"}
    # exact IP wins over a CIDR that also covers it
    assert resolve(snap, "192.168.1.51").device == "bob-tablet"
    assert resolve(snap, "192.168.1.77").device == "tv"


def test_ipv6_forms_and_mapped_ipv4_are_normalised(snap) -> None:  # type: ignore[no-untyped-def]
    assert resolve(snap, "fd00:0:0:0:0:0:1:50").device == "alice-phone"
    assert resolve(snap, "::ffff:192.168.1.50").device == "alice-laptop"


def test_unknown_device_gets_unknown_groups(snap) -> None:  # type: ignore[no-untyped-def]
    ident = resolve(snap, "10.9.8.7")
    assert ident.device == "ip:10.9.8.7" and ident.groups == {"guests"} and not ident.known


def test_wireguard_peer_name_is_the_device(snap) -> None:  # type: ignore[no-untyped-def]
    assert resolve(snap, "10.0.0.1", peer="alice-laptop").device == "alice-laptop"
    assert resolve(snap, "10.0.0.1", peer="no-such-device").device == "ip:10.0.0.1"


def test_unknown_proxy_user_is_a_guest(snap) -> None:  # type: ignore[no-untyped-def]
    ident = resolve(snap, "192.168.1.50", user="stranger")
    assert ident.device == "user:stranger" and ident.groups == {"guests"}


def test_macs_matter_only_when_something_decides_by_mac() -> None:
    without = BASE.replace(', macs: ["aa:bb:cc:dd:ee:01"]', "")
    no_macs = snapshot(base=without)
    assert not macs_matter(no_macs, EMPTY_STATE)
    assert macs_matter(snapshot(), EMPTY_STATE), "alice-laptop is known by its MAC"
    by_runtime = RuntimeState(allowlist=(RuntimeAllow.make("mac", "aa:bb:cc:dd:ee:09"),))
    assert macs_matter(no_macs, by_runtime)
    assert not macs_matter(no_macs, RuntimeState(allowlist=(RuntimeAllow.make("device", "tv"),)))
    in_rules = snapshot('allowlist:\n  - {mac: "aa:bb:cc:dd:ee:09"}\n', base=without)
    assert macs_matter(in_rules, EMPTY_STATE)


async def test_the_table_is_not_read_when_nothing_decides_by_mac(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads: list[str] = []
    monkeypatch.setattr("proxy.identity._read_arp", lambda path: reads.append("arp") or {})

    async def ip_neigh() -> dict[str, str]:
        reads.append("ip neigh")
        return {"fd00::9": "aa:bb:cc:dd:ee:09"}

    monkeypatch.setattr("proxy.identity._read_ip_neigh", ip_neigh)
    table, needed = NeighbourTable(), [False]
    task = asyncio.create_task(table.run(interval=0.02, min_gap=0.01, needed=lambda: needed[0]))
    await asyncio.sleep(0.1)
    assert reads == []
    needed[0] = True
    while "arp" not in reads:
        await asyncio.sleep(0.01)
    assert "ip neigh" not in reads, "IPv4 neighbours come from /proc/net/arp alone"
    table.poke("fd00::9")  # an IPv6 client without a MAC: `ip neigh` is read from now on
    while table.mac_of("fd00::9") is None:
        await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
