"""The gate's shared parts and what happens once a request is decided: metrics, log, usage.

``Gate`` is built once by ``hearthgate run`` and handed to the addon and the admin API.
``finish`` turns a decided flow into a decision-log row, usage counters and alert rows —
all queued to the background writer, never awaited.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mitmproxy import http

from governance.facts import Action, Decision, Identity, RequestFacts, Stage
from governance.prices import estimate_cost
from governance.quotas import usage_keys
from proxy.catalog.providers import Catalog, Usage, catalog_for
from proxy.flowfacts import FlowRecord
from proxy.identity import NeighbourTable
from proxy.metrics import Metrics
from proxy.notify import Event, Notifier
from proxy.runtime import Clock, RulesHolder, StateCache, utc_now
from proxy.store import overrides as overrides_store
from proxy.store.db import Db
from proxy.store.overrides import Redeemed
from proxy.store.state import INSERT_ALERT, iso
from proxy.store.writer import Write, Writer

if TYPE_CHECKING:
    from governance.snapshot import Snapshot

PROMPT_EXCERPT = 200


@dataclass
class Gate:
    rules: RulesHolder
    cache: StateCache
    writer: Writer
    metrics: Metrics
    neighbours: NeighbourTable = field(default_factory=NeighbourTable)
    clock: Clock = utc_now
    catalog: Catalog = field(init=False)
    notifier: Notifier = field(init=False)
    proxy_port: int = 0  # the bound proxy port, known once the proxy listens

    def __post_init__(self) -> None:
        self.catalog = catalog_for(self.rules.snapshot)
        self.rules.listeners.append(self._rules_changed)
        self.notifier = Notifier(lambda: self.rules.snapshot.rules.notifications, self.metrics)
        self._children: dict[tuple[str, str, str, str, str], Any] = {}

    def _rules_changed(self, snap: Snapshot) -> None:
        self.catalog = catalog_for(snap)

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

    def finish(self, record: FlowRecord, status: int | None, usage: Usage) -> None:
        """Queue the decision-log row, usage counters and alerts for a finished flow."""
        record.logged = True
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
        if decision.allowed and status is not None and status < 400:
            local_day = decided_at.astimezone(snap.zone).date()
            cost = estimate_cost(snap.prices, model, tokens_in or 0, tokens_out or 0)
            self.cache.add_usage(
                usage_keys(facts.identity), local_day, 1, tokens_in or 0, tokens_out or 0, cost
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
    events = record.usage_filter.events if record.usage_filter is not None else 0
    estimate = Usage(
        tokens_in=-(-parsed.prompt_chars // 4), tokens_out=events or None, model=usage.model
    )
    return estimate, "estimated"


__all__ = ["Gate", "Stage"]
