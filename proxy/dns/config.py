"""DNS mode's settings: where the DNS server and its listeners listen, and what they answer.

Data and parsing only (no mitmproxy), so ``hearthgate run``'s argument checks stay light.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from proxy.dns.upstream import Upstream

# The target of the DNS-directed listeners: never connected to (a connection is routed by
# its SNI or Host header, see proxy.dns.listeners); .invalid never resolves, so a
# connection nothing routed fails closed.
PLACEHOLDER = "dns-directed.hearthgate.invalid"


@dataclass(frozen=True, slots=True)
class DnsConfig:
    host: str  # "" listens where --listen-host does
    port: int
    upstreams: tuple[Upstream, ...]
    answers: tuple[str, ...] = ()
    https_port: int = 443
    http_port: int = 80

    def modes(self) -> list[str]:
        at = f"{self.host}:" if self.host else ""
        return [
            f"dns@{at}{self.port}",
            f"reverse:https://{PLACEHOLDER}:443@{at}{self.https_port}",
            f"reverse:http://{PLACEHOLDER}:80@{at}{self.http_port}",
        ]


def parse_listen(text: str) -> tuple[str, int]:
    """``--dns [HOST:]PORT``: (host or "", port); ValueError otherwise."""
    value = text.strip()
    host, sep, port = value.rpartition(":") if ":" in value else ("", "", value)
    host = host.strip("[]")
    if host:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{text!r}: the host must be an IP address of this machine") from None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r}: expected [HOST:]PORT with a port from 1 to 65535")
    return host, int(port)


def wildcard(host: str) -> bool:
    """Does a listener on *host* listen on every address?"""
    return host in ("", "0.0.0.0", "::")
