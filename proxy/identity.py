"""Who is asking: a connection -> device, person and groups (SPEC section 2).

Order: proxy-auth user; WireGuard peer (the name of the peer's config file); device by MAC
from the kernel's neighbour table; device by IP or CIDR from the rules; otherwise the unknown
device ``ip:<address>`` in ``settings.unknown_devices.groups``.

The neighbour table is read by a background task (``NeighbourTable.refresh``), never on the
request path; a MAC is only known for devices on the gate's own network segment.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from governance.addresses import normalize_mac, try_normalize_ip
from governance.facts import Identity
from governance.snapshot import Snapshot
from governance.state import RuntimeState

if TYPE_CHECKING:
    import asyncio

# asyncio and logging are the running gate's (loaded there already): a command that resolves
# a device (`rules explain`) imports neither
ARP_TABLE = Path("/proc/net/arp")


class NeighbourTable:
    """IP -> MAC, refreshed in the background from /proc/net/arp and `ip -j neigh`.

    Only while the rules name a device by MAC (``needed``): a gate without one never reads
    the tables. ``ip -j neigh`` (a subprocess: the only way to IPv6 neighbours here) runs
    only once an IPv6 client without a known MAC has connected; IPv4 neighbours come from
    /proc/net/arp, a file read. Both cost an idle gate CPU every few seconds otherwise.
    """

    def __init__(self) -> None:
        self.macs: dict[str, str] = {}
        self._wake: asyncio.Event | None = None
        self._ipv6 = False  # an IPv6 client without a MAC was seen: read `ip neigh` too

    def mac_of(self, ip: str) -> str | None:
        return self.macs.get(ip)

    def poke(self, ip: str = "") -> None:
        """Ask for an early refresh (a client we have no MAC for connected); never blocks."""
        if ":" in ip:
            self._ipv6 = True
        if self._wake is not None:
            self._wake.set()

    async def refresh(self) -> None:
        table = _read_arp(ARP_TABLE)  # a procfs file: read at once, never blocks
        if self._ipv6:
            table.update(await _read_ip_neigh())
        self.macs = table

    async def run(
        self,
        interval: float = 5.0,
        min_gap: float = 1.0,
        needed: Callable[[], bool] = lambda: True,
    ) -> None:
        import asyncio
        import logging

        from proxy.runtime import grid_delay  # the running gate's; the CLI never needs it

        log = logging.getLogger(__name__)

        self._wake = asyncio.Event()
        while True:
            if needed():
                try:
                    await self.refresh()
                except Exception as exc:  # noqa: BLE001 - identity falls back to IPs
                    log.debug("neighbour table refresh failed: %s", exc)
            elif self.macs:
                self.macs = {}
            await asyncio.sleep(grid_delay(at_least=min_gap))
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), grid_delay(at_least=interval - min_gap))
            except TimeoutError:
                pass


def macs_matter(snap: Snapshot, state: RuntimeState) -> bool:
    """Whether anything decides by MAC: a device's ``macs``, or a MAC in the rules' or the
    runtime allowlist. Otherwise the neighbour table is not read at all."""
    return (
        bool(snap.device_by_mac)
        or any(entry.kind == "mac" for entry in snap.allowlist)
        or any(entry.kind == "mac" for entry in state.allowlist)
    )


def _read_arp(path: Path) -> dict[str, str]:
    table: dict[str, str] = {}
    try:
        lines = path.read_text().splitlines()[1:]
    except OSError:
        return table
    for line in lines:
        parts = line.split()
        if len(parts) >= 4 and parts[3] != "00:00:00:00:00:00":
            ip = try_normalize_ip(parts[0])
            try:
                if ip:
                    table[ip] = normalize_mac(parts[3])
            except ValueError:
                continue
    return table


async def _read_ip_neigh() -> dict[str, str]:
    import asyncio

    try:
        proc = await asyncio.create_subprocess_exec(
            "ip",
            "-j",
            "neigh",
            "show",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 5)
        entries = json.loads(out or b"[]")
    except (OSError, TimeoutError, ValueError):
        return {}
    table = {}
    for entry in entries:
        ip, mac = try_normalize_ip(str(entry.get("dst", ""))), entry.get("lladdr")
        if ip and mac:
            try:
                table[ip] = normalize_mac(mac)
            except ValueError:
                continue
    return table


def resolve(
    snap: Snapshot,
    client_ip: str,
    *,
    mac: str | None = None,
    user: str | None = None,
    peer: str | None = None,
) -> Identity:
    """The identity of a client, by the order of SPEC section 2."""
    ip = try_normalize_ip(client_ip) or client_ip
    if user:
        return _by_user(snap, ip, user, mac)
    for name in (peer, snap.device_by_mac.get(mac) if mac else None, _by_address(snap, ip)):
        if name and name in snap.devices:
            return _device_identity(snap, name, ip, mac)
    return Identity(
        client_ip=ip,
        device=f"ip:{ip}",
        groups=snap.unknown_groups,
        mac=mac,
        inspect=snap.default_inspect,
    )


def _by_user(snap: Snapshot, ip: str, user: str, mac: str | None) -> Identity:
    if user in snap.devices:
        return _device_identity(snap, user, ip, mac, user=user)
    if user in snap.person_groups:
        return Identity(
            client_ip=ip,
            device=f"user:{user}",
            person=user,
            groups=snap.person_groups[user],
            mac=mac,
            user=user,
            known=True,
            inspect=snap.default_inspect,
        )
    return Identity(
        client_ip=ip,
        device=f"user:{user}",
        groups=snap.unknown_groups,
        mac=mac,
        user=user,
        inspect=snap.default_inspect,
    )


def _device_identity(
    snap: Snapshot, name: str, ip: str, mac: str | None, user: str | None = None
) -> Identity:
    info = snap.devices[name]
    return Identity(
        client_ip=ip,
        device=name,
        person=info.person,
        groups=info.groups,
        mac=mac,
        user=user,
        known=True,
        inspect=info.inspect,
    )


def _by_address(snap: Snapshot, ip: str) -> str | None:
    name = snap.device_by_ip.get(ip)
    if name is not None or not snap.device_networks:
        return name
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    for network, device in snap.device_networks:
        if address.version == network.version and address in network:
            return device
    return None
