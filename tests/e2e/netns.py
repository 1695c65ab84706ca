"""A private network namespace joined to this one by a veth pair, for tests that need a real
layer-2 neighbour (a MAC address in the kernel's neighbour table) or transparent redirection.

Addresses come from 10.231.0.0/16 and exist only on the test's own veth pair; the namespace
and the link are removed when the test ends.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Netns:
    name: str
    host_if: str
    host_ip: str
    client_ip: str
    client_mac: str

    def run(
        self, argv: Sequence[str], timeout: float = 60, **kwargs: object
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.name, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            **kwargs,
        )  # type: ignore[call-overload]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


def available() -> str | None:
    """None when namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 (ip) is not installed"
    return None


def _subnets_in_use() -> set[int]:
    shown = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, timeout=10)
    return {int(m) for m in re.findall(r"inet 10\.231\.(\d+)\.", shown.stdout)}


@contextmanager
def netns(mac: str = "aa:bb:cc:dd:ee:99", resolver: str | None = None) -> Iterator[Netns]:
    """``resolver``: the namespace's resolv.conf names this server (``ip netns exec``
    mounts ``/etc/netns/NAME/resolv.conf`` over ``/etc/resolv.conf``)."""
    why = available()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the namespace tests: {why}")
        pytest.skip(why)
    used = _subnets_in_use()
    tag = secrets.token_hex(3)
    while int(tag[:2], 16) in used:  # two namespaces of one test must not share a subnet
        tag = secrets.token_hex(3)
    subnet = int(tag[:2], 16)
    ns = Netns(f"hg{tag}", f"hgh{tag}", f"10.231.{subnet}.1", f"10.231.{subnet}.2", mac)
    _ip("netns", "add", ns.name)
    etc = Path("/etc/netns") / ns.name
    try:
        if resolver is not None:
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "resolv.conf").write_text(f"nameserver {resolver.format(ns=ns)}\n")
        _ip("link", "add", ns.host_if, "type", "veth", "peer", "name", f"hgc{tag}")
        _ip("link", "set", f"hgc{tag}", "netns", ns.name)
        _ip("-n", ns.name, "link", "set", f"hgc{tag}", "address", mac)
        _ip("addr", "add", f"{ns.host_ip}/30", "dev", ns.host_if)
        _ip("link", "set", ns.host_if, "up")
        _ip("-n", ns.name, "addr", "add", f"{ns.client_ip}/30", "dev", f"hgc{tag}")
        _ip("-n", ns.name, "link", "set", f"hgc{tag}", "up")
        _ip("-n", ns.name, "link", "set", "lo", "up")
        yield ns
    finally:
        subprocess.run(["ip", "link", "del", ns.host_if], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "del", ns.name], capture_output=True, timeout=10)
        shutil.rmtree(etc, ignore_errors=True)
