"""The DNS-mode addon: the gate's DNS server and the listeners DNS sends connections to.

Queries (mitmproxy's DNS mode): a catalog name is answered with the gate's own address (on
the interface the query arrived on, or ``--dns-answer``), for A and AAAA, and with no data
for every other type (an HTTPS record's address hints would lead past the gate); Firefox's
DoH canary and, with ``dns.block_doh``, public DoH resolvers get NXDOMAIN; everything else is
forwarded to the first upstream and its answer returned unchanged, except that ECH is
removed from HTTPS/SVCB records and a CNAME chain that ends at a catalog name points at the
gate. Each query is attributed to the client like a request and counted by outcome.

Connections (``reverse:`` listeners on 443/80 whose target is a placeholder): a connection
is routed to the name its client asked for, the SNI or the Host header, with the address
the upstream resolvers give. A name that is not in the catalog is refused and logged: only
a stale or forged answer sends one here. Decisions are the gate addon's, exactly as in
transparent mode.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mitmproxy import connection, dns, http
from mitmproxy.net.dns import response_codes, types
from mitmproxy.proxy import mode_specs, server_hooks

from proxy import flowfacts
from proxy.dns import names
from proxy.dns.local import LocalAddresses
from proxy.dns.upstream import Resolver, Upstream, is_own_address
from proxy.gate import Gate

log = logging.getLogger(__name__)
PLACEHOLDER = "dns-directed.hearthgate.invalid"
ANSWER_TTL = 60
OUTCOMES = ("gate", "forwarded", "canary", "doh_blocked", "failed")
FORWARDED = "hearthgate-dns-forwarded"
_SVCB = 64


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


@dataclass
class _Answers:
    v4: list[str] = field(default_factory=list)
    v6: list[str] = field(default_factory=list)


class DnsGate:
    def __init__(self, config: DnsConfig, gate: Gate, listen_host: str = "") -> None:
        self.config, self.gate = config, gate
        self.listen_host = config.host or listen_host
        self.resolver = Resolver(config.upstreams)
        self.local = LocalAddresses()
        self.counts: Counter[str] = Counter(dict.fromkeys(OUTCOMES, 0))
        # Listeners bound to one address are reached only there; on every address, the
        # address toward each client is looked up (see proxy.dns.local).
        fixed = config.answers or (() if _wildcard(self.listen_host) else (self.listen_host,))
        self._fixed = _Answers([a for a in fixed if ":" not in a], [a for a in fixed if ":" in a])
        self._per_client = not fixed
        self._original: dict[str, tuple[str, int]] = {}

    def stats(self) -> dict[str, Any]:
        return {
            "on": True,
            "queries": sum(self.counts.values()) - self.counts["failed"],
            "by_outcome": dict(self.counts),
            "upstreams": [str(u) for u in self.config.upstreams],
        }

    # --- queries -----------------------------------------------------------------------

    def dns_request(self, flow: dns.DNSFlow) -> None:
        if not isinstance(flow.client_conn.proxy_mode, mode_specs.DnsMode) or flow.response:
            return
        try:
            outcome = self._answer(flow)
        except Exception:  # noqa: BLE001 - an answer we cannot build is a SERVFAIL, not a leak
            self.gate.metrics.errors.labels("dns").inc()
            log.exception("dns_request")
            flow.response = flow.request.fail(response_codes.SERVFAIL)
            outcome = "failed"
        self._count(flow, outcome)

    def _answer(self, flow: dns.DNSFlow) -> str:
        request = flow.request
        q = request.question
        if not request.query or request.op_code != 0 or q is None:
            return self._forward(flow)
        if names.is_canary(q.name):
            flow.response = request.fail(response_codes.NXDOMAIN)
            return "canary"
        if self.gate.rules.snapshot.rules.dns.block_doh and names.is_doh_resolver(q.name):
            flow.response = request.fail(response_codes.NXDOMAIN)
            return "doh_blocked"
        if self.gate.catalog.match(q.name) is None:
            return self._forward(flow)
        flow.response = request.succeed(self._records(q.name, q.type, self._client_ip(flow)))
        return "gate"

    def _forward(self, flow: dns.DNSFlow) -> str:
        if not self.config.upstreams:
            flow.response = flow.request.fail(response_codes.SERVFAIL)
            return "failed"
        first = self.config.upstreams[0]
        flow.server_conn.address = (first.host, first.port)
        flow.metadata[FORWARDED] = True
        return "forwarded"

    def _records(self, name: str, qtype: int, client_ip: str) -> list[dns.ResourceRecord]:
        if qtype not in (types.A, types.AAAA):
            return []  # no data: HTTPS/SVCB address hints would lead past the gate
        answers = _Answers(*self.local.toward(client_ip)) if self._per_client else self._fixed
        if qtype == types.A:
            return [dns.ResourceRecord.A(name, ipaddress.IPv4Address(a), ttl=ANSWER_TTL)
                    for a in answers.v4]  # fmt: skip
        return [dns.ResourceRecord.AAAA(name, ipaddress.IPv6Address(a), ttl=ANSWER_TTL)
                for a in answers.v6]  # fmt: skip

    def dns_response(self, flow: dns.DNSFlow) -> None:
        if not flow.metadata.get(FORWARDED) or flow.response is None:
            return
        try:
            response = flow.response
            for record in response.answers:
                if record.type in (types.HTTPS, _SVCB) and record.https_ech is not None:
                    record.https_ech = None
            self._point_chain_at_gate(flow, response)
        except Exception:  # noqa: BLE001 - an odd answer is passed on as it came
            self.gate.metrics.errors.labels("dns").inc()
            log.exception("dns_response")

    def _point_chain_at_gate(self, flow: dns.DNSFlow, response: dns.DNSMessage) -> None:
        """An alias of a catalog name (``my.example CNAME api.openai.com``) leads to the gate."""
        target = next(
            (r.domain_name for r in response.answers
             if r.type == types.CNAME and self.gate.catalog.match(r.domain_name)),
            None,
        )  # fmt: skip
        q = response.question
        if target is None or q is None:
            return
        kept = [r for r in response.answers if r.type not in (types.A, types.AAAA, types.HTTPS)]
        response.answers = kept + self._records(target, q.type, self._client_ip(flow))

    def dns_error(self, flow: dns.DNSFlow) -> None:
        if flow.metadata.get(FORWARDED):
            self.counts["failed"] += 1
            self.gate.metrics.dns_queries.labels("failed", "unknown").inc()

    def _client_ip(self, flow: dns.DNSFlow) -> str:
        peer = flow.client_conn.peername
        return str(peer[0]) if peer else "127.0.0.1"

    def _count(self, flow: dns.DNSFlow, outcome: str) -> None:
        snap = self.gate.rules.snapshot
        ident = flowfacts.identify_client(flow.client_conn, snap, self.gate.neighbours)
        device = self.gate.device_label(ident)
        self.counts[outcome] += 1
        self.gate.metrics.dns_queries.labels(outcome, device).inc()
        q = flow.request.question
        log.debug("dns %s %s from %s: %s", q.type if q else "-", q, ident.device, outcome)

    # --- connections DNS sent here -----------------------------------------------------

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
        if _wildcard(self.listen_host):
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


def _wildcard(host: str) -> bool:
    return host in ("", "0.0.0.0", "::")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
