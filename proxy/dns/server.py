"""The gate's DNS server (mitmproxy's DNS mode): what DNS mode answers.

Queries: a catalog name is answered with the gate's own address (on
the interface the query arrived on, or ``--dns-answer``), for A and AAAA, and with no data
for every other type (an HTTPS record's address hints would lead past the gate); Firefox's
DoH canary and, with ``dns.block_doh``, public DoH resolvers get NXDOMAIN; everything else is
forwarded to the first upstream and its answer returned unchanged, except that ECH is
removed from HTTPS/SVCB records and a CNAME chain that ends at a catalog name points at the
gate. Each query is attributed to the client like a request and counted by outcome.

The connections that follow the answers arrive on the listeners (``proxy.dns.listeners``).

Loops: right after start each upstream is asked for a name only this gate knows; if that
question arrives here, the upstream forwards to the gate, and the gate stops (exit 2).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mitmproxy import ctx, dns
from mitmproxy.net.dns import response_codes, types
from mitmproxy.proxy import mode_specs

from proxy import flowfacts
from proxy.dns import names
from proxy.dns.config import DnsConfig, wildcard
from proxy.dns.local import LocalAddresses
from proxy.dns.upstream import Resolver, ask, query
from proxy.gate import Gate

log = logging.getLogger(__name__)
ANSWER_TTL = 60
OUTCOMES = ("gate", "forwarded", "canary", "doh_blocked", "failed")
FORWARDED = "hearthgate-dns-forwarded"
_SVCB = 64


@dataclass
class _Answers:
    v4: list[str] = field(default_factory=list)
    v6: list[str] = field(default_factory=list)


class DnsServer:
    def __init__(self, config: DnsConfig, gate: Gate, resolver: Resolver, listen_host: str) -> None:
        self.config, self.gate = config, gate
        self.listen_host = config.host or listen_host
        self.resolver = resolver
        self.local = LocalAddresses()
        self.counts: Counter[str] = Counter(dict.fromkeys(OUTCOMES, 0))
        # Listeners bound to one address are reached only there; on every address, the
        # address toward each client is looked up (see proxy.dns.local).
        fixed = config.answers or (() if wildcard(self.listen_host) else (self.listen_host,))
        self._fixed = _Answers([a for a in fixed if ":" not in a], [a for a in fixed if ":" in a])
        self._per_client = not fixed
        # A query for this name reaching the gate means an upstream forwards back to it.
        self.probe_name = f"loop-check-{secrets.token_hex(6)}.hearthgate.arpa"
        self.loop: str | None = None  # the upstream that forwards back, once seen
        self._probe: asyncio.Task[None] | None = None

    def stats(self) -> dict[str, Any]:
        return {
            "on": True,
            "queries": sum(self.counts.values()) - self.counts["failed"],
            "by_outcome": dict(self.counts),
            "upstreams": [str(u) for u in self.config.upstreams],
        }

    # --- the loop check ----------------------------------------------------------------

    def running(self) -> None:
        self._probe = asyncio.get_running_loop().create_task(self._check_upstreams())

    def done(self) -> None:
        if self._probe is not None:
            self._probe.cancel()

    async def _check_upstreams(self) -> None:
        """Ask each upstream for a name only this gate knows: if the question comes back
        here, that upstream (a router, say) forwards to the gate, and every forwarded query
        would circle until the client gives up. The gate then stops (exit 2)."""
        for upstream in self.config.upstreams:
            try:
                await ask(upstream, query(self.probe_name, types.A))
            except (TimeoutError, OSError):
                pass
            if self.loop is not None:
                self.loop = str(upstream)
                log.error(
                    "the upstream resolver %s forwards queries back to this gate; they would "
                    "loop. Give --dns-upstream a resolver that does not ask the gate",
                    upstream,
                )
                ctx.master.shutdown()
                return

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
        if names.clean(q.name) == self.probe_name:
            self.loop = self.loop or "?"
            flow.response = request.fail(response_codes.REFUSED)  # and never forwarded
            return "failed"
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
