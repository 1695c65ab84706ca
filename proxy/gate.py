"""The gate's shared parts and what happens once a request is decided: metrics, log, usage.

``Gate`` is built once by ``hearthgate run`` and handed to the addon and the admin API.
``finish`` turns a decided flow into a decision-log row, usage counters and alert rows —
all queued to the background writer, never awaited.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mitmproxy import http

from governance import pipeline, quotas
from governance.facts import Action, Decision, Identity, RequestFacts, Stage
from governance.policy_match import TOPIC_FINDING
from governance.prices import estimate_cost
from governance.quotas import usage_keys
from proxy.catalog.learned import ServiceHints
from proxy.catalog.providers import Catalog, Usage, catalog_for
from proxy.flowfacts import FlowRecord
from proxy.identity import NeighbourTable
from proxy.metrics import Metrics
from proxy.notify import Event, Notifier
from proxy.runtime import Clock, RulesHolder, SharedCounter, StateCache, utc_now
from proxy.store import overrides as overrides_store
from proxy.store.db import Db
from proxy.store.overrides import Redeemed
from proxy.store.state import INSERT_ALERT, iso
from proxy.store.writer import Write, Writer

if TYPE_CHECKING:
    from governance.snapshot import Snapshot

PROMPT_EXCERPT = 200
NOT_COUNTED = quotas.UNCOUNTED_STAGES  # SPEC 4: not against quotas


@dataclass
class Gate:
    rules: RulesHolder
    cache: StateCache
    writer: Writer
    metrics: Metrics
    neighbours: NeighbourTable = field(default_factory=NeighbourTable)
    hints: ServiceHints = field(default_factory=ServiceHints)  # learned addresses, siblings
    clock: Clock = utc_now
    catalog: Catalog = field(init=False)
    notifier: Notifier = field(init=False)
    proxy_port: int = 0  # the bound proxy port, known once the proxy listens
    dns_stats: Callable[[], dict[str, Any]] | None = None  # set when DNS mode is on
    counter: SharedCounter | None = None  # quota reservations, with a shared database
    instance: str = "hearthgate"  # this gate's name among several (metrics, /healthz)

    def __post_init__(self) -> None:
        self.catalog = catalog_for(self.rules.snapshot)
        self.rules.listeners.append(self._rules_changed)
        self.notifier = Notifier(lambda: self.rules.snapshot.rules.notifications, self.metrics)
        self._children: dict[tuple[str, str, str, str, str], Any] = {}
        self._has_quotas = _has_quotas(self.rules.snapshot)
        self._open: dict[int, FlowRecord] = {}  # allowed flows still running: minutes of use

    def _rules_changed(self, snap: Snapshot) -> None:
        self.catalog = catalog_for(snap)
        self._has_quotas = _has_quotas(snap)

    def counts_after_reserving(self, decision: Decision) -> bool:
        """An allowed decision that a shared quota may still turn into a 429 is counted in
        the metrics once ``reserve`` has settled it, not before."""
        return self.counter is not None and decision.allowed

    async def reserve(self, record: FlowRecord) -> None:
        """With a shared database, settle an allowed request's quota before it goes upstream
        (see ``_reserve``), then count the decision that stands in the metrics."""
        if self.counter is None:
            return
        try:
            await self._reserve(record)
        finally:
            self.count_decision(record.facts, record.decision)

    async def _reserve(self, record: FlowRecord) -> None:
        """With a shared database, count an allowed request there before it goes upstream.

        The counter's new value (every gate's requests, this one included) is checked
        against the quotas again; a request past a limit gives its count back and is
        answered with the quota's decision instead. While the database cannot be reached
        ``settings.fail`` decides: closed blocks, open lets it through counted in memory.
        """
        decision = record.decision
        if (
            self.counter is None  # (for mypy: reserve checked it)
            or not counted(decision)
            or not self._has_quotas
            or not any(p.quota is not None for p in self.rules.snapshot.policies_for(record.facts))
        ):
            return
        snap, facts, now = self.rules.snapshot, record.facts, self.clock()
        day = now.astimezone(snap.zone).date()
        keys = usage_keys(facts.identity)
        try:
            counts = await asyncio.to_thread(self.counter.reserve, keys, day.isoformat())
        except Exception as exc:  # noqa: BLE001 - the database is away: settings.fail says
            self.metrics.errors.labels("quota").inc()
            if not snap.fail_open:
                record.decision = pipeline.error_decision(snap, exc)
            return
        record.reserved = True
        again = pipeline.decide(facts, snap, self.cache.counted_elsewhere(counts, day), now)
        if again.allowed:
            return
        record.reserved = False
        record.decision = again
        self.cache.given_back(keys, day)
        try:
            await asyncio.to_thread(self.counter.release, keys, day.isoformat())
        except Exception:  # noqa: BLE001 - counted one too many; the request stays refused
            self.metrics.errors.labels("quota").inc()

    def device_label(self, ident: Identity) -> str:
        return ident.device if ident.known and not ident.device.startswith("user:") else "unknown"

    def count_decision(self, facts: RequestFacts, decision: Decision) -> None:
        key = (
            decision.action.value,
            decision.stage.value,
            facts.provider or "none",
            self.device_label(facts.identity),
            facts.category or "none",
        )
        child = self._children.get(key)
        if child is None:  # labels() takes a lock and validates; do it once per combination
            child = self._children[key] = self.metrics.decisions.labels(*key)
        child.inc()

    def begin(self, record: FlowRecord) -> None:
        """An allowed request starts: its minute counts as a minute of use at once, and
        every minute it keeps running (a stream, a voice session) counts too."""
        if not counted(record.decision):
            return
        if len(self._open) < 100_000:
            self._open[id(record)] = record
        self._count_minutes(record, self.clock())

    def tick_minutes(self) -> None:
        """Count the minutes of the requests still running (called every few seconds)."""
        now = self.clock()
        for record in list(self._open.values()):
            self._count_minutes(record, now)

    async def run_minutes(self, interval: float = 15.0) -> None:
        while True:
            await asyncio.sleep(interval)
            self.tick_minutes()

    def _count_minutes(self, record: FlowRecord, now: datetime) -> None:
        first, last = int(record.decided_at // 60), int(now.timestamp() // 60)
        local_day = datetime.fromtimestamp(record.decided_at, UTC).astimezone(
            self.rules.snapshot.zone
        )
        self.cache.add_minutes(
            usage_keys(record.facts.identity), first, max(first, last), local_day.date()
        )

    def end_minutes(self, record: FlowRecord) -> None:
        if self._open.pop(id(record), None) is not None:
            self._count_minutes(record, self.clock())

    def finish(self, record: FlowRecord, status: int | None, usage: Usage) -> None:
        """Queue the decision-log row, usage counters and alerts for a finished flow."""
        record.logged = True
        if status != 101:  # an upgraded connection (realtime voice) runs on: websocket_end
            self.end_minutes(record)
        facts, decision = record.facts, record.decision
        snap = self.rules.snapshot
        usage, source = with_estimate(record, usage, status)
        tokens_in, tokens_out = usage.tokens_in, usage.tokens_out
        model = facts.model or usage.model
        if decision.allowed and (tokens_in or tokens_out):
            label = self.device_label(facts.identity)
            provider = facts.provider or "none"
            self.metrics.tokens.labels(provider, label, "in").inc(tokens_in or 0)
            self.metrics.tokens.labels(provider, label, "out").inc(tokens_out or 0)
        decided_at = datetime.fromtimestamp(record.decided_at, UTC)
        if record.reserved_locally is not None:
            self._reconcile(record, model, status, tokens_in or 0, tokens_out or 0)
        elif counted(decision) and status is not None and status < 400:
            local_day = decided_at.astimezone(snap.zone).date()
            cost = estimate_cost(snap.prices, model, tokens_in or 0, tokens_out or 0)
            requests = 0 if record.reserved else 1  # a reservation is counted already
            self.cache.add_usage(
                usage_keys(facts.identity),
                local_day,
                requests,
                tokens_in or 0,
                tokens_out or 0,
                cost,
            )
        excerpt = (
            facts.prompt[:PROMPT_EXCERPT]
            if snap.rules.settings.log_prompts and facts.prompt
            else None
        )
        ident = facts.identity
        self.writer.submit_decision(
            (
                iso(decided_at),
                facts.request_id,
                ident.client_ip,
                ident.device,
                ident.person,
                facts.provider,
                facts.host,
                facts.method,
                facts.path,
                facts.endpoint.value,
                model,
                decision.stage.value,
                decision.rule,
                decision.action.value,
                int(decision.allowed),
                int(decision.enforced),
                decision.reason,
                record.duration_us,
                status,
                tokens_in,
                tokens_out,
                excerpt,
                source,
            )
        )
        self._queue_alerts(facts, decision, decided_at)

    def reserve_locally(self, record: FlowRecord) -> None:
        """Count an allowed request against its quotas the moment it is decided.

        Called in the same synchronous step as the decision, so concurrent requests see each
        other's reservations and never pass a request limit together. Emergency and
        allowlist requests are not counted. With a shared database ``reserve`` counts it
        there instead (every gate's requests), before it goes upstream.
        """
        if self.counter is not None or record.reserved_locally is not None:
            return
        if not counted(record.decision):
            return
        snap = self.rules.snapshot
        day = datetime.fromtimestamp(record.decided_at, UTC).astimezone(snap.zone).date()
        keys = usage_keys(record.facts.identity)
        self.cache.add_usage(keys, day, 1, 0, 0)
        record.reserved_locally = (keys, day)

    def _reconcile(
        self, record: FlowRecord, model: str | None, status: int | None, t_in: int, t_out: int
    ) -> None:
        """Add a finished request's tokens and cost to the counters it reserved; a request
        the service refused (no status, or 400 and above) gives its reservation back."""
        if record.reserved_locally is None:
            return
        keys, day = record.reserved_locally
        record.reserved_locally = None
        if status is None or status >= 400:
            self.cache.add_usage(keys, day, -1, 0, 0)
            return
        cost = estimate_cost(self.rules.snapshot.prices, model, t_in, t_out)
        if t_in or t_out or cost:
            self.cache.add_usage(keys, day, 0, t_in, t_out, cost)

    def _queue_alerts(self, facts: RequestFacts, decision: Decision, at: datetime) -> None:
        notes = [n for n in decision.notes if n.action is Action.ALERT]
        if decision.action is Action.ALERT:
            notes.insert(0, decision.as_note())
        if decision.action is Action.BLOCK and not decision.enforced:
            notes.insert(0, decision.as_note())  # observe mode: every "would block" alerts
        for note in notes:
            self.writer.submit(
                Write(
                    INSERT_ALERT,
                    (
                        iso(at),
                        facts.request_id,
                        facts.device,
                        facts.identity.person,
                        note.stage.value,
                        note.rule,
                        note.action.value,
                        note.reason,
                    ),
                )
            )
            self._notify(facts, at, note.stage.value, note.rule, "alert", note.reason)
        if decision.action is Action.BLOCK and decision.enforced:
            self._notify(facts, at, decision.stage.value, decision.rule, "block", decision.reason)

    def _notify(
        self,
        facts: RequestFacts,
        at: datetime,
        stage: str,
        rule: str | None,
        action: str,
        reason: str,
    ) -> None:
        snap = self.rules.snapshot
        topic = topic_of(snap, rule, reason)
        self.notifier.submit(
            Event(
                iso(at),
                facts.request_id,
                facts.device,
                facts.identity.person,
                facts.provider,
                facts.host,
                stage,
                rule,
                action,
                reason,
                topic=topic,
                local_time=at.astimezone(snap.zone).strftime("%a %d %b %H:%M"),
            )
        )

    async def redeem_pin(self, device: str, request_id: str | None, pin: str) -> Redeemed:
        """Check a PIN off the event loop (scrypt is slow on purpose); refresh state at once."""
        snap = self.rules.snapshot
        now = self.clock()

        def work() -> Redeemed:
            with Db(self.cache.target) as db:
                return overrides_store.redeem(db, device, request_id, pin, snap.overrides, now)

        outcome = await asyncio.to_thread(work)
        self.metrics.override_attempts.labels(outcome.result).inc()
        if outcome.result == "ok":
            await self.cache.refresh(force=True)
        return outcome

    def local_clock(self, when: datetime | None) -> str:
        if when is None:
            return "-"
        return when.astimezone(self.rules.snapshot.zone).strftime("%H:%M")

    def error_record(self, flow: http.HTTPFlow, decision: Decision) -> FlowRecord:
        """A record for a flow that failed before its facts were gathered."""

        peer = flow.client_conn.peername
        ip = str(peer[0]) if peer else "unknown"
        facts = RequestFacts(
            request_id="error",
            identity=Identity(ip, f"ip:{ip}"),
            host=flow.request.pretty_host,
            method=flow.request.method,
            path=flow.request.path.split("?", 1)[0],
        )
        return FlowRecord(facts, decision, "openai", time.time(), 0)


def topic_of(snap: Snapshot, rule: str | None, reason: str) -> str | None:
    """The prompt topic (``self_harm``) a policy's verdict was about, if any."""
    if TOPIC_FINDING not in reason:
        return None
    policy = next((p for p in snap.policies if p.name == rule), None)
    return next((t for t in policy.topics if t in reason), None) if policy else None


def _has_quotas(snap: Snapshot) -> bool:
    return any(p.quota is not None for p in snap.policies)


def counted(decision: Decision) -> bool:
    """Whether a request counts against quotas: allowed, and not let through by the
    emergency override or the allowlist (those bypass every limit)."""
    return quotas.counts(decision)


def with_estimate(record: FlowRecord, usage: Usage, status: int | None) -> tuple[Usage, str | None]:
    """The usage and where it came from: ``reported`` by the provider, ``added`` (reported
    after the gate asked for it), ``estimated`` (no report: ~4 characters per prompt token,
    one token per streamed event), or None when nothing can be said."""
    if usage.tokens_in is not None or usage.tokens_out is not None:
        return usage, "added" if record.usage_filter is not None else "reported"
    parsed = record.parsed
    if (
        not record.decision.allowed
        or status is None
        or status >= 400
        or parsed is None
        or not parsed.inspected
    ):
        return usage, None
    reader = record.stream_usage
    events = reader.events if reader is not None and parsed.stream else 0
    estimate = Usage(
        tokens_in=-(-parsed.prompt_chars // 4), tokens_out=events or None, model=usage.model
    )
    return estimate, "estimated"


__all__ = ["Gate", "Stage"]
