"""The resolvers DNS mode forwards to, the check that they are not the gate itself, and the
gate's own look-ups through them.

The gate's own look-ups (where a DNS-directed connection really goes, and every upstream
connection while DNS mode is on) never use the host's resolver: on a network whose router
hands out the gate as DNS server, the host's resolver is the gate, and a look-up would come
back with the gate's own address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

from mitmproxy import dns
from mitmproxy.net.dns import classes, response_codes, types

TIMEOUT = 2.0  # seconds per resolver and attempt
MAX_CACHE_TTL = 300


@dataclass(frozen=True, slots=True)
class Upstream:
    host: str  # an IP address
    port: int = 53

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == 53 else f"{host}:{self.port}"


def parse_upstream(text: str) -> Upstream:
    """``1.1.1.1``, ``1.1.1.1:5353``, ``2606:4700::1111``, ``[::1]:53``; ValueError otherwise."""
    value = text.strip()
    host, port = value, "53"
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ("53" if not rest else "x")
    elif value.count(":") == 1:
        host, port = value.split(":")
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an IP address (a resolver is given by address)"
        ) from None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
    if addr.is_unspecified or addr.is_multicast:
        raise ValueError(f"{text!r} cannot be a resolver's address")
    return Upstream(str(addr), int(port))


def system_upstreams() -> list[Upstream]:
    """The host's own resolvers (resolv.conf on Linux)."""
    import mitmproxy_rs

    try:
        found = mitmproxy_rs.dns.get_system_dns_servers()
    except RuntimeError:
        return []
    return [parse_upstream(s) for s in found]


def is_own_address(host: str) -> bool:
    """True when *host* is an address of this machine (it can be bound here)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, 0))
        except OSError:
            return False
    return True


def points_at_gate(upstream: Upstream, listen_host: str, port: int) -> bool:
    """Would a query sent to *upstream* arrive at the gate's own DNS server?"""
    if upstream.port != port:
        return False
    wildcard = listen_host in ("", "0.0.0.0", "::")
    if not wildcard:
        return ipaddress.ip_address(upstream.host) == ipaddress.ip_address(listen_host)
    return is_own_address(upstream.host)


def query(name: str, qtype: int) -> dns.DNSMessage:
    return dns.DNSMessage(
        id=random.randrange(1 << 16),
        query=True,
        op_code=0,
        authoritative_answer=False,
        truncation=False,
        recursion_desired=True,
        recursion_available=False,
        reserved=0,
        response_code=0,
        questions=[dns.Question(name, qtype, classes.IN)],
        answers=[],
        authorities=[],
        additionals=[],
    )


class _Exchange(asyncio.DatagramProtocol):
    def __init__(self, wanted: int) -> None:
        self.wanted = wanted
        self.answer: asyncio.Future[dns.DNSMessage] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        try:
            message = dns.DNSMessage.unpack(data)
        except Exception:  # noqa: BLE001 - not a DNS answer; keep waiting
            return
        if message.id == self.wanted and not message.query and not self.answer.done():
            self.answer.set_result(message)


async def ask(upstream: Upstream, message: dns.DNSMessage) -> dns.DNSMessage:
    """One UDP exchange; TimeoutError or OSError when the resolver does not answer."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: _Exchange(message.id), remote_addr=(upstream.host, upstream.port)
    )
    try:
        transport.sendto(message.packed)
        return await asyncio.wait_for(proto.answer, TIMEOUT)
    finally:
        transport.close()


class Resolver:
    """Look-ups through the upstreams, in order, with a small TTL-bounded cache."""

    def __init__(self, upstreams: Sequence[Upstream]) -> None:
        self.upstreams = list(upstreams)
        self._cache: dict[tuple[str, int], tuple[float, list[str]]] = {}

    async def lookup(self, name: str) -> list[str]:
        """IPv4 addresses first, then IPv6; [] when the name does not resolve."""
        found = await self._addresses(name, types.A)
        return found or await self._addresses(name, types.AAAA)

    async def _addresses(self, name: str, qtype: int) -> list[str]:
        key = (name.lower().rstrip("."), qtype)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        answer = await self._ask_any(query(key[0], qtype))
        if answer is None or answer.response_code != response_codes.NOERROR:
            return []
        records = [r for r in answer.answers if r.type == qtype]
        ips = [str(ipaddress.ip_address(r.data)) for r in records]
        ttl = min([r.ttl for r in records] + [MAX_CACHE_TTL])
        if ips:
            self._cache[key] = (time.monotonic() + ttl, ips)
        return ips

    async def _ask_any(self, message: dns.DNSMessage) -> dns.DNSMessage | None:
        for upstream in self.upstreams:
            try:
                return await ask(upstream, message)
            except (TimeoutError, OSError):
                continue
        return None
