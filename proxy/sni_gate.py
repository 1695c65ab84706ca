"""Host-level decisions for devices that do not trust the CA (``inspect: sni``).

Such a device's connection to an LLM service is decided once, by host name, and is never
decrypted. Allowed: the TLS connection is tunnelled untouched. Blocked: in regular mode the
CONNECT is refused with 403; otherwise the TLS handshake is refused without presenting any
certificate (a certificate-less server context), so the device never sees a forged one.
"""

from __future__ import annotations

import logging
import time

from mitmproxy import connection, ctx, http, tls
from OpenSSL import SSL

from governance import pipeline
from governance.facts import Identity, Inspect
from proxy import flowfacts
from proxy.catalog.providers import Usage
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
        (self._tunnel if decision.allowed else self._refuse).add(client.id)
        return decision.allowed

    @staticmethod
    def _proxy_user(client: connection.Client) -> str | None:
        auth = ctx.master.addons.get("proxyauth")
        found = getattr(auth, "authenticated", {}).get(client) if auth else None
        return str(found[0]) if found else None
