"""The gate's own address toward a client: what a catalog name resolves to in DNS mode.

The kernel is asked which local address it would send from to reach the client (a UDP
socket "connected" to it sends nothing): that is the gate's address on the interface the
query arrived on. The other family's address is the one on the same interface (Linux:
``SIOCGIFADDR`` and ``/proc/net/if_inet6``); without one, that family gets no answer, so a
device falls back to the family that reaches the gate instead of reaching the service.
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
import time

SIOCGIFADDR = 0x8915
CACHE_SECONDS = 30.0
IF_INET6 = "/proc/net/if_inet6"


def _source_toward(client_ip: str) -> str | None:
    family = socket.AF_INET6 if ":" in client_ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((client_ip, 9))
            return str(probe.getsockname()[0]).split("%", 1)[0]
        except OSError:
            return None


def _ipv4_of(interface: str) -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            raw = fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", interface.encode()))
        except OSError:
            return None
    return socket.inet_ntoa(raw[20:24])


def _ipv6_table() -> list[tuple[str, str]]:
    """(address, interface) of every global or unique-local IPv6 address in use."""
    try:
        with open(IF_INET6) as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or parts[3] != "00" or int(parts[4], 16) & 0x60:  # global, usable
            continue
        found.append((str(ipaddress.IPv6Address(bytes.fromhex(parts[0]))), parts[5]))
    return found


def _interface_of(address: str) -> str | None:
    if ":" in address:
        return next((name for addr, name in _ipv6_table() if addr == address), None)
    for _, name in socket.if_nameindex():
        if _ipv4_of(name) == address:
            return name
    return None


def addresses_toward(client_ip: str) -> tuple[list[str], list[str]]:
    """(IPv4 addresses, IPv6 addresses) of the gate on the client's side."""
    source = _source_toward(client_ip)
    if source is None:
        return [], []
    mapped = ipaddress.ip_address(source)
    if isinstance(mapped, ipaddress.IPv6Address) and mapped.ipv4_mapped:
        source = str(mapped.ipv4_mapped)
    if ipaddress.ip_address(source).is_loopback:
        return (["127.0.0.1"], ["::1"]) if ":" not in source else (["127.0.0.1"], [source])
    interface = _interface_of(source)
    if ":" in source:
        v4 = _ipv4_of(interface) if interface else None
        return ([v4] if v4 else []), [source]
    v6 = [addr for addr, name in _ipv6_table() if name == interface] if interface else []
    return [source], v6[:1]


class LocalAddresses:
    """``addresses_toward`` with a short cache per client address."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, tuple[list[str], list[str]]]] = {}

    def toward(self, client_ip: str) -> tuple[list[str], list[str]]:
        now = time.monotonic()
        hit = self._cache.get(client_ip)
        if hit is not None and hit[0] > now:
            return hit[1]
        found = addresses_toward(client_ip)
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[client_ip] = (now + CACHE_SECONDS, found)
        return found
