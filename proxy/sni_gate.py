"""Host-level decisions for devices that do not trust the CA (``inspect: sni``).

Such a device's connection to an LLM service is decided once, by host name, and is never
decrypted. Allowed: the TLS connection is tunnelled untouched. Blocked: in regular mode the
CONNECT is refused with 403; otherwise the TLS handshake is refused without presenting any
certificate (a certificate-less server context), so the device never sees a forged one.

Two kinds of connection the gate would otherwise not read at all are handled here too (see
``catalog/learned.py``): a tunnel to an address where the gate reached an LLM service that
names no site (a bare IP, no TLS name) is decided like a connection to that service, for
every device; and in transparent modes a connection under a name the service's own
certificate covers is decrypted for a device that trusts the CA (``intercept_sibling``,
asked by ``chain.GateNextLayer``).
"""

from __future__ import annotations

import logging
import time

from cryptography import x509
from mitmproxy import connection, ctx, http, tls
from mitmproxy.addons.next_layer import NextLayer
from mitmproxy.proxy import layer, layers
from mitmproxy.proxy.context import Context
from mitmproxy.proxy.mode_specs import RegularMode
from OpenSSL import SSL

from governance import pipeline
from governance.facts import Identity, Inspect
from proxy import flowfacts
from proxy.catalog.learned import ip_text
from proxy.catalog.providers import Provider, Usage
from proxy.flowfacts import FlowRecord
from proxy.gate import Gate

log = logging.getLogger(__name__)


class SniGate:
    """Mixed into the addon: the connection-level hooks."""

    gate: Gate

    def __init__(self) -> None:
        self._tunnel: set[str] = set()  # client ids allowed through untouched
        self._refuse: set[str] = set()  # client ids whose TLS handshake is refused

    def _forget_connection(self, client: connection.Client) -> None:
        self._tunnel.discard(client.id)
        self._refuse.discard(client.id)

    def http_connect(self, flow: http.HTTPFlow) -> None:
        """Regular mode: a CONNECT from an sni device to an LLM host is decided here."""
        try:
            host = flow.request.host.lower().rstrip(".")
            auth = flow.metadata.get("proxyauth")
            user = str(auth[0]) if isinstance(auth, tuple) and auth and auth[0] else None
            allowed = self._decide_connection(flow.client_conn, host, user)
            if allowed is False:
                flow.response = http.Response.make(
                    403,
                    b"hearthgate: this service is blocked for this device right now\n",
                    {"content-type": "text/plain"},
                )
        except Exception:  # noqa: BLE001 - fail by settings.fail, never open by accident
            self.gate.metrics.errors.labels("addon").inc()
            log.exception("http_connect")
            if not self.gate.rules.snapshot.fail_open:
                flow.response = http.Response.make(503, b"hearthgate error\n")

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        client = data.context.client
        try:
            if client.id in self._tunnel:
                data.ignore_connection = True
                return
            if client.id in self._refuse:
                return
            host = (data.client_hello.sni or "").lower().rstrip(".")
            allowed = self._decide_connection(client, host, self._proxy_user(client))
            if allowed is True:
                data.ignore_connection = True
        except Exception:  # noqa: BLE001
            self.gate.metrics.errors.labels("addon").inc()
            log.exception("tls_clienthello")
            if not self.gate.rules.snapshot.fail_open:
                self._refuse.add(client.id)

    def tls_start_client(self, data: tls.TlsData) -> None:
        if data.context.client.id in self._refuse:
            refused = SSL.Connection(SSL.Context(SSL.TLS_METHOD))
            refused.set_accept_state()
            data.ssl_conn = refused

    def _decide_connection(
        self, client: connection.Client, host: str, user: str | None
    ) -> bool | None:
        """None: not ours to decide (not an LLM host, or the device is inspected)."""
        gate = self.gate
        provider = gate.catalog.match(host)
        if provider is None:
            return None
        snap = gate.rules.snapshot
        ident: Identity = flowfacts.identify_client(client, snap, gate.neighbours, user)
        if ident.inspect is not Inspect.SNI:
            return None
        allowed = self._decide_host(ident, provider, host)
        (self._tunnel if allowed else self._refuse).add(client.id)
        return allowed

    def _decide_host(self, ident: Identity, provider: Provider, host: str) -> bool:
        """One host-level decision, counted and logged (method CONNECT)."""
        gate = self.gate
        snap = gate.rules.snapshot
        facts = flowfacts.connection_facts(ident, provider, host)
        started = time.perf_counter_ns()
        try:
            decision = pipeline.decide(facts, snap, gate.cache.state, gate.clock())
        except Exception as exc:  # noqa: BLE001
            gate.metrics.errors.labels("pipeline").inc()
            decision = pipeline.error_decision(snap, exc)
        duration_us = (time.perf_counter_ns() - started) // 1000
        gate.metrics.duration.observe(duration_us / 1e6)
        gate.count_decision(facts, decision)
        record = FlowRecord(facts, decision, provider.api, time.time(), duration_us)
        gate.finish(record, None if decision.allowed else 403, Usage())
        return decision.allowed

    # --- what the gate learns, and the connections it lets it read --------------------

    def tls_established_server(self, data: tls.TlsData) -> None:
        """Learn where a catalog host was reached and which names its certificate covers
        (after mitmproxy verified that certificate, so neither can be made up)."""
        try:
            server = data.conn
            provider = self.gate.catalog.match(server.sni) if server.sni else None
            if provider is None or not isinstance(server, connection.Server):
                return
            hints = self.gate.hints
            address = server.address
            if not address or not ip_text(str(address[0])):
                address = server.peername  # the gate's own resolver's answer for the name
            if address:
                hints.learn_address(str(address[0]), int(address[1]), provider.name)
            if server.certificate_list:
                names = server.certificate_list[0].altnames.get_values_for_type(x509.DNSName)
                hints.learn_names(list(names), provider.name)
        except Exception:  # noqa: BLE001 - learning must never break a connection
            self.gate.metrics.errors.labels("addon").inc()
            log.exception("tls_established_server")

    def next_layer(self, nextlayer: layer.NextLayer) -> None:
        """A tunnel to an address where the gate reached an LLM service, naming no site (a
        bare IP and no TLS name): decided at host level as that service, for every device.
        Blocked, the tunnel is never opened; a row is logged either way."""
        try:
            if not isinstance(nextlayer.layer, layers.TCPLayer):
                return
            context = nextlayer.context
            address = context.server.address
            if not address or not ip_text(str(address[0])):
                return
            name = self.gate.hints.provider_at(str(address[0]), int(address[1]))
            provider = self._provider_named(name)
            if provider is None or _names_a_site(context, nextlayer.data_client()):
                return
            user = self._proxy_user(context.client)
            snap = self.gate.rules.snapshot
            ident = flowfacts.identify_client(context.client, snap, self.gate.neighbours, user)
            if not self._decide_host(ident, provider, ip_text(str(address[0]))):
                context.server.error = "hearthgate: this service is blocked for this device"
        except Exception:  # noqa: BLE001 - fail by settings.fail, never open by accident
            self.gate.metrics.errors.labels("addon").inc()
            log.exception("next_layer")
            if not self.gate.rules.snapshot.fail_open:
                nextlayer.context.server.error = "hearthgate error"

    def intercept_sibling(self, context: Context, sni: str | None) -> bool:
        """Transparent modes: decrypt a connection for a name a catalog host's certificate
        covers, if the device trusts the CA. A browser may reuse such an HTTP/2 connection
        for the service itself; each request in it is then decided by its own host."""
        client = context.client
        try:
            if isinstance(client.proxy_mode, RegularMode) or not self.gate.hints.sibling_of(sni):
                return False
            snap = self.gate.rules.snapshot
            ident = flowfacts.identify_client(client, snap, self.gate.neighbours)
            return ident.inspect is Inspect.TLS
        except Exception:  # noqa: BLE001 - asked inside mitmproxy for every connection
            self.gate.metrics.errors.labels("addon").inc()
            log.exception("intercept_sibling")
            return False

    def _provider_named(self, name: str | None) -> Provider | None:
        if name is None:
            return None
        return next((p for p in self.gate.catalog.providers if p.name == name), None)

    @staticmethod
    def _proxy_user(client: connection.Client) -> str | None:
        auth = ctx.master.addons.get("proxyauth")
        found = getattr(auth, "authenticated", {}).get(client) if auth else None
        return str(found[0]) if found else None


def _names_a_site(context: Context, data: bytes) -> bool:
    """The client's TLS hello names a site (an SNI that is a host name, not an address)."""
    try:
        hello = NextLayer._get_client_hello(context, data)
    except Exception:  # noqa: BLE001 - not TLS, or not all of it yet: it names nothing
        return False
    sni = hello.sni if hello is not None else None
    return bool(sni) and not ip_text(str(sni))
