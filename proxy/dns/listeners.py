"""The listeners DNS sends connections to: ``reverse:`` listeners on 443 and 80 whose target
is a placeholder, and the gate's own look-ups while DNS mode is on.

A connection is routed to the name its client asked for, the SNI (443) or the Host header
(80), at the address the upstream resolvers give; the Host header is forwarded as sent. A
name that is not in the catalog is refused and logged: only a stale or forged answer, or a
device set up by hand, sends one here, and the gate must not be an open relay. The
decisions are the gate addon's, exactly as in transparent mode (``tls`` devices decrypted
and decided per request, ``sni`` devices tunnelled untouched or refused without a
certificate). Every other upstream connection to a host name is looked up through the
upstream resolvers too: the host's own resolver may be the gate.
"""

from __future__ import annotations

import ipaddress
import logging

from mitmproxy import connection, http
from mitmproxy.proxy import mode_specs, server_hooks

from proxy.dns import names
from proxy.dns.config import PLACEHOLDER, DnsConfig, wildcard
from proxy.dns.upstream import Resolver, is_own_address
from proxy.gate import Gate

log = logging.getLogger(__name__)


class DnsListeners:
    def __init__(self, config: DnsConfig, gate: Gate, resolver: Resolver, listen_host: str) -> None:
        self.config, self.gate, self.resolver = config, gate, resolver
        self.listen_host = config.host or listen_host
        self._original: dict[str, tuple[str, int]] = {}

    @staticmethod
    def _directed(client: connection.Client) -> mode_specs.ReverseMode | None:
        mode = client.proxy_mode
        if isinstance(mode, mode_specs.ReverseMode) and mode.address[0] == PLACEHOLDER:
            return mode
        return None

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        mode = self._directed(flow.client_conn)
        if mode is None:
            return
        name = flow.client_conn.sni if mode.scheme == "https" else flow.request.host_header
        host = names.clean(name or "")
        if host.count(":") == 1:
            host = host.partition(":")[0]
        if not host or self.gate.catalog.match(host) is None:
            self._refused(flow.client_conn, host)
            flow.response = http.Response.make(
                421, b"hearthgate: this gate only serves LLM services\n",
                {"content-type": "text/plain"},
            )  # fmt: skip
            return
        flow.request.data.host = host  # the Host header stays as the client sent it
        flow.request.port = mode.address[1]

    async def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        server = data.server
        if server.address is None or server.transport_protocol != "tcp":
            return
        name, port = str(server.address[0]), int(server.address[1])
        if self._directed(data.client) is not None:
            if name == PLACEHOLDER:  # tunnelled: the client's SNI says where it goes
                name = names.clean(data.client.sni or "")
            if not name or self.gate.catalog.match(name) is None:
                self._refused(data.client, name)
                server.error = "hearthgate: not an LLM service"
                return
        if _is_ip(name):
            return
        try:
            found = await self.resolver.lookup(name)
        except Exception as exc:  # noqa: BLE001
            found = []
            log.warning("looking up %s failed: %s", name, exc)
        found = [ip for ip in found if not self._loops(ip, port)]
        if not found:
            server.error = f"hearthgate: {name} does not resolve through the upstream resolvers"
            return
        self._original[server.id] = (name, port)
        server.address = (found[0], port)

    def _loops(self, ip: str, port: int) -> bool:
        """Would this connection come back to the gate's own DNS-directed listeners?"""
        if port not in (self.config.https_port, self.config.http_port):
            return False
        if wildcard(self.listen_host):
            return is_own_address(ip)
        return ipaddress.ip_address(ip) == ipaddress.ip_address(self.listen_host)

    def server_connected(self, data: server_hooks.ServerConnectionHookData) -> None:
        original = self._original.pop(data.server.id, None)
        if original is not None:  # flows keep reading the name; reuse matches by it
            data.server.__dict__["address"] = original

    def server_connect_error(self, data: server_hooks.ServerConnectionHookData) -> None:
        self._original.pop(data.server.id, None)

    def _refused(self, client: connection.Client, name: str) -> None:
        self.gate.metrics.dns_refused.inc()
        peer = client.peername[0] if client.peername else "?"
        log.warning(
            "refused a connection from %s for %r: not an LLM service (a stale or forged "
            "DNS answer, or a device set up by hand)",
            peer,
            name,
        )


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
