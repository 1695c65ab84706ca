"""The mitmproxy addon: flow -> facts -> pipeline -> forward or answer. Never raises.

mitmproxy logs an exception from a hook and lets the flow carry on — it fails open. Every
hook here catches its own errors and answers with ``settings.fail`` (closed by default).
Decided flows carry a ``FlowRecord`` in ``flow.metadata``; the decision-log row is queued
when the response ends (so it carries status and tokens) or when the flow fails.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import replace

from mitmproxy import connection, http

from governance import pipeline
from governance.facts import Action, Endpoint, Identity
from governance.snapshot import Snapshot
from proxy import flowfacts, responses
from proxy.catalog.providers import Usage, parse_usage
from proxy.catalog.relay import Relay, make_relay
from proxy.catalog.requests import BODY_CAP, OVER_CAP
from proxy.catalog.stream_usage import BodyUsage
from proxy.catalog.usage_filter import INCLUDE_USAGE_HOSTS, InjectedUsageFilter, add_include_usage
from proxy.decoding import chunk_decoder
from proxy.flowfacts import FlowRecord
from proxy.framing import BUFFER_CAP, DISCARDED, BufferCap, client_status, install_buffer_cap
from proxy.gate import Gate
from proxy.sni_gate import SniGate

log = logging.getLogger(__name__)
RECORD = "hearthgate"
_LOOPBACK = re.compile(r"^(127\.|::1$|::ffff:127\.)")
_HEARTHGATE_HEADERS = ("x-hearthgate-pin", "x-hearthgate-request-id")


class GateAddon(SniGate):
    """Hooks in the order mitmproxy calls them for one request."""

    def __init__(self, gate: Gate) -> None:
        super().__init__()
        self.gate = gate
        install_buffer_cap()
        self._identities: dict[str, tuple[str, Identity]] = {}

    # --- connections -------------------------------------------------------------------

    def client_connected(self, client: connection.Client) -> None:
        peer = client.peername
        ip = str(peer[0]) if peer else ""
        if ip and ip not in self.gate.neighbours.macs and not _LOOPBACK.match(ip):
            self.gate.neighbours.poke(ip)

    def client_disconnected(self, client: connection.Client) -> None:
        self._identities.pop(client.id, None)
        self._forget_connection(client)

    # --- requests ----------------------------------------------------------------------

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        """A body announced larger than the cap is decided unread on its headers, and
        streamed if allowed (dropped as it arrives, then answered, if not). A body of unknown
        length (chunked) is buffered up to the cap and read; past it, it is decided unread."""
        try:
            if RECORD in flow.metadata:
                return
            length = flowfacts.announced_length(flow)
            if length is not None and length <= BODY_CAP:
                return  # read whole in `request`
            if length is None:
                if flowfacts.llm_target(flow, self.gate.catalog.match) is not None:
                    flow.metadata[BUFFER_CAP] = BufferCap(BODY_CAP, self._over_cap)
                return
            record = self._decide(flow, with_body=False, unreadable=OVER_CAP)
            if record is None:
                return
            if record.decision.allowed:
                self._strip_own_headers(flow)
                flow.request.stream = True
            else:  # answered once sent; what passes the cap is dropped, never held
                flow.metadata[BUFFER_CAP] = BufferCap(BODY_CAP, lambda _flow: False)
        except Exception as exc:  # noqa: BLE001 - a hook must never let an error open the gate
            self._fail(flow, exc)

    def _over_cap(self, flow: http.HTTPFlow) -> bool:
        """A buffered body outgrew the cap: decided unread. True streams it on upstream;
        False drops it and answers at its end (called from inside mitmproxy's HTTP layer)."""
        try:
            record = flow.metadata.get(RECORD) or self._decide(
                flow, with_body=False, unreadable=OVER_CAP
            )
            if record is None or record.decision.allowed:
                self._strip_own_headers(flow)
                return True
            return False
        except Exception as exc:  # noqa: BLE001 - fail by settings.fail, inside the layer too
            self._fail(flow, exc)
            flow.response = None  # answered at the end of the body, by `request`
            record = flow.metadata.get(RECORD)
            return record is not None and record.decision.allowed

    async def request(self, flow: http.HTTPFlow) -> None:
        try:
            record = flow.metadata.get(RECORD)
            if record is None:
                if flow.request.path.split("?", 1)[0] == responses.OVERRIDE_PATH:
                    await self._pin_form(flow)
                    return
                record = self._decide(flow, with_body=True)
            if record is None:
                return  # not an LLM service: pass through untouched
            self._strip_own_headers(flow)
            if not record.decision.allowed and record.facts.pin and DISCARDED not in flow.metadata:
                record = await self._retry_with_pin(flow, record)
            if record.decision.allowed:
                await self.gate.reserve(record)
            if not record.decision.allowed:
                self._answer_block(flow, record)
            else:
                self._ask_for_usage(flow, record)
        except Exception as exc:  # noqa: BLE001 - a hook must never let an error open the gate
            self._fail(flow, exc)

    @staticmethod
    def _ask_for_usage(flow: http.HTTPFlow, record: FlowRecord) -> None:
        """An OpenAI chat completions stream that does not ask for usage is made to (see
        usage_filter). Only there: OpenAI documents ``stream_options`` for that endpoint;
        its Responses API and OpenAI-compatible services get the request exactly as sent,
        and are counted from what their streams report, or estimated."""
        parsed = record.parsed
        if (
            record.facts.host not in INCLUDE_USAGE_HOSTS
            or parsed is None
            or parsed.endpoint is not Endpoint.CHAT
            or not parsed.stream
            or parsed.stream_usage_requested
            or flow.request.stream
        ):
            return
        try:
            body = flow.request.json()
        except ValueError:
            return
        injected = add_include_usage(body)
        if injected is not None:
            flow.request.content = injected
            flow.request.headers["accept-encoding"] = "identity"  # the filter reads plain SSE
            record.usage_filter = InjectedUsageFilter()

    async def _retry_with_pin(self, flow: http.HTTPFlow, record: FlowRecord) -> FlowRecord:
        """A blocked request carrying X-Hearthgate-Pin: a valid PIN unlocks, then re-decide."""
        facts = record.facts
        pin = facts.pin or ""
        outcome = await self.gate.redeem_pin(facts.device, facts.pin_request_id, pin)
        if outcome.result != "ok":
            record.decision = replace(
                record.decision, reason=f"{record.decision.reason}; PIN: {outcome.message}"
            )
            return record
        flow.metadata.pop(RECORD, None)
        return self._decide(flow, with_body=True) or record

    async def _pin_form(self, flow: http.HTTPFlow) -> None:
        """The block page's form: check the PIN, answer with a page, never go upstream."""
        if flowfacts.llm_target(flow, self.gate.catalog.match) is None:
            return
        form = flow.request.urlencoded_form if flow.request.method == "POST" else None
        pin = (form.get("pin") if form else None) or ""
        request_id = (form.get("request_id") if form else None) or None
        ident = self._identity(flow, self.gate.rules.snapshot)
        host = flow.request.pretty_host
        if not pin:
            ok = False
            body = responses.html_pin_again("Type the PIN a parent gave you.", request_id, host)
        else:
            outcome = await self.gate.redeem_pin(ident.device, request_id, pin)
            ok = outcome.result == "ok"
            if ok:
                text = (
                    f"{ident.device} is unlocked until {self.gate.local_clock(outcome.until)}. "
                    "Go back and try again."
                )
                body = responses.html_notice("Unlocked", text, ok)
            elif outcome.result == "locked_out":
                text = "Not unlocked: too many wrong PINs. Ask a parent, or try again later."
                body = responses.html_notice("Not unlocked", text, ok)
            else:  # a wrong or used PIN: the form again, with the attempts left
                text = f"Not unlocked: {outcome.message}."
                body = responses.html_pin_again(text, request_id, host)
        flow.response = http.Response.make(
            200 if ok else 403,
            body,
            {"content-type": "text/html; charset=utf-8", "cache-control": "no-store"},
        )

    def _decide(
        self, flow: http.HTTPFlow, *, with_body: bool, unreadable: str | None = None
    ) -> FlowRecord | None:
        gate = self.gate
        snap = gate.rules.snapshot
        target = flowfacts.llm_target(flow, gate.catalog.match)
        if target is None:
            return None
        provider, host = target
        ident = self._identity(flow, snap)
        facts, parsed = flowfacts.build_facts(
            flow,
            ident,
            provider,
            host,
            flowfacts.new_request_id(),
            with_body=with_body,
            unreadable=unreadable,
        )
        now = gate.clock()
        started = time.perf_counter_ns()
        try:
            decision = pipeline.decide(facts, snap, gate.cache.state, now)
        except Exception as exc:  # noqa: BLE001 - a bug in a stage must not open the gate
            gate.metrics.errors.labels("pipeline").inc()
            log.exception("pipeline error for %s", facts.request_id)
            decision = pipeline.error_decision(snap, exc)
        duration_us = (time.perf_counter_ns() - started) // 1000
        gate.metrics.duration.observe(duration_us / 1e6)
        record = FlowRecord(facts, decision, provider.api, time.time(), duration_us, parsed)
        flow.metadata[RECORD] = record
        if not gate.counts_after_reserving(decision):
            gate.count_decision(facts, decision)
        gate.reserve_locally(record)  # in the same step as the decision: no await between
        gate.begin(record)
        return record

    def _identity(self, flow: http.HTTPFlow, snap: Snapshot) -> Identity:
        key = flow.client_conn.id
        cached = self._identities.get(key)
        version = self.gate.rules.snapshot.version
        auth = flow.metadata.get("proxyauth")
        if cached is not None and cached[0] == version and not auth:
            return cached[1]
        ident = flowfacts.identify(flow, self.gate.rules.snapshot, self.gate.neighbours)
        self._identities[key] = (version, ident)
        return ident

    @staticmethod
    def _strip_own_headers(flow: http.HTTPFlow) -> None:
        for name in _HEARTHGATE_HEADERS:
            flow.request.headers.pop(name, None)

    def _answer_block(self, flow: http.HTTPFlow, record: FlowRecord) -> None:
        facts, decision = record.facts, record.decision
        if flow.request.method == "GET" and facts.path == "/favicon.ico":
            # the icon a browser fetches with every page: one page view is one row
            record.logged = True
            flow.response = http.Response.make(404, b"", {"cache-control": "no-store"})
            return
        status = decision.status
        if responses.wants_html(flow.request.method, flow.request.headers.get("accept")):
            body, headers = responses.html_block(decision, facts.request_id, facts.host)
        else:
            family = _error_family(record)
            body, headers = responses.json_block(family, decision, facts.request_id)
            status = responses.block_status(family, status)
        flow.response = http.Response.make(status, body, headers)

    # --- responses ---------------------------------------------------------------------

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """Every answer of an LLM service streams chunk by chunk, whatever its framing (SSE,
        NDJSON, a JSON array, any chunked body), its usage read on the way."""
        try:
            record = flow.metadata.get(RECORD)
            if record is None or flow.response is None or record.logged:
                return
            if record.api == "web":
                flow.response.stream = True  # consumer apps report no usage to read
            else:
                flow.response.stream = self._relay(flow.response, record)
        except Exception as exc:  # noqa: BLE001
            self.gate.metrics.errors.labels("response").inc()
            log.warning("responseheaders: %s", exc)

    def _relay(self, response: http.Response, record: FlowRecord) -> Relay:
        """Pass each chunk on unchanged; feed a decoded copy to the usage reader."""
        usage = BodyUsage(record.api, response.headers.get("content-type"))
        record.stream_usage = usage
        errors = self.gate.metrics.errors.labels("response")
        encoding = response.headers.get("content-encoding")
        plain = (encoding or "identity").strip().lower() in ("", "identity")
        return make_relay(usage, chunk_decoder(encoding), plain, record.usage_filter, errors.inc)

    def response(self, flow: http.HTTPFlow) -> None:
        record = flow.metadata.get(RECORD)
        if record is None or record.logged:
            return
        try:
            usage = self._usage(flow, record)
        except Exception as exc:  # noqa: BLE001
            self.gate.metrics.errors.labels("response").inc()
            log.warning("usage not read for %s: %s", record.facts.request_id, exc)
            usage = Usage()
        status = flow.response.status_code if flow.response else None
        self.gate.finish(record, status, usage)

    def error(self, flow: http.HTTPFlow) -> None:
        record = flow.metadata.get(RECORD)
        if record is None or record.logged:
            return
        usage = record.stream_usage.usage if record.stream_usage else Usage()
        self.gate.finish(record, client_status(flow), usage)  # what the client received

    def _usage(self, flow: http.HTTPFlow, record: FlowRecord) -> Usage:
        if record.stream_usage is not None:
            return record.stream_usage.usage
        if flow.response is None or not record.decision.allowed or flow.response.stream:
            return Usage()
        body = flow.response.get_content(strict=False) or b""
        return parse_usage(record.api, flow.response.headers.get("content-type"), body)

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        record = flow.metadata.get(RECORD)
        if isinstance(record, FlowRecord):
            self.gate.end_minutes(record)

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        """Keep only the newest message: mitmproxy would otherwise hold every message of a
        long realtime (voice) session in memory for the connection's lifetime."""
        if flow.websocket is not None and len(flow.websocket.messages) > 1:
            del flow.websocket.messages[:-1]

    # --- errors ------------------------------------------------------------------------

    def _fail(self, flow: http.HTTPFlow, exc: BaseException) -> None:
        """An internal error decides by ``settings.fail``; logged, counted, never re-raised."""
        gate = self.gate
        gate.metrics.errors.labels("addon").inc()
        log.exception("hearthgate addon error")
        try:
            snap = gate.rules.snapshot
            decision = pipeline.error_decision(snap, exc)
            record = flow.metadata.get(RECORD)
            if isinstance(record, FlowRecord):
                record.decision = decision
            else:
                flow.metadata[RECORD] = gate.error_record(flow, decision)
            if decision.action is Action.BLOCK:
                body, headers = responses.json_block(None, decision, "error")
                flow.response = http.Response.make(503, body, headers)
        except Exception:  # noqa: BLE001 - last resort: refuse the request outright
            log.exception("hearthgate: could not answer the failed request; killing it")
            if flow.killable:
                flow.kill()


def _error_family(record: FlowRecord) -> str:
    """The API family whose error shape a block takes: a native API's own (Bedrock's runtime,
    Replicate), else the request body's (a service's OpenAI-compatible endpoints answer
    like OpenAI), else the provider's."""
    native = responses.NATIVE_ERRORS.get(record.facts.provider or "")
    if native is not None and record.facts.path.startswith(native[0]):
        if record.facts.endpoint is Endpoint.OTHER:  # not one of its OpenAI-compatible paths
            return native[1]
    shape = record.parsed.shape if record.parsed is not None else None
    if record.api == "web" or shape is None or shape not in responses.ERROR_FAMILIES:
        return record.api
    return shape
