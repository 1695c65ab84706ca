"""Hypothetical requests: what would happen for this device, at this time, to this host?

Shared by ``hearthgate rules explain``, the admin API's ``evaluate`` endpoints and the
dashboard's "what would happen" form.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from datetime import datetime, timedelta
from types import MappingProxyType

from governance import pipeline
from governance.errors import StateError
from governance.facts import Decision, Endpoint, Identity, RequestFacts
from governance.snapshot import Snapshot
from governance.state import RuntimeState
from proxy.catalog.services import catalog_for
from proxy.identity import resolve


def hypothetical(
    snap: Snapshot,
    device: str,
    host: str = "api.openai.com",
    model: str | None = None,
    prompt: str | None = None,
    endpoint: str = "chat",
    user: str | None = None,
) -> RequestFacts:
    provider = catalog_for(snap).match(host)
    return RequestFacts(
        request_id="explain",
        identity=_identity(snap, device, user),
        host=host,
        provider=provider.name if provider else None,
        method="POST",
        path="/",
        endpoint=Endpoint(endpoint),
        model=model,
        prompt=prompt,
        prompt_chars=len(prompt or ""),
        body_inspected=prompt is not None or model is not None,
        category=provider.category if provider else None,
    )


def as_of(state: RuntimeState, at: datetime, now: datetime) -> RuntimeState:
    """The runtime state to judge a request at ``at`` with: for a time already past, what
    was switched on later (today's unlocks and pauses, an emergency begun after ``at``) did
    not exist yet, and today's counters are not that day's; the future keeps what lasts."""
    if at >= now - timedelta(minutes=1):
        return state
    emergency = state.emergency
    if emergency is not None and emergency.activated_at > at:
        emergency = None
    return replace(
        state, emergency=emergency, unlocks=MappingProxyType({}), pauses=(), bonuses={}, usage={}
    )


def explain(
    snap: Snapshot, state: RuntimeState, facts: RequestFacts, at: datetime
) -> list[tuple[str, Decision | None]]:
    return pipeline.explain(facts, snap, state, at)


def evaluate(snap: Snapshot, state: RuntimeState, facts: RequestFacts, at: datetime) -> Decision:
    return pipeline.decide(facts, snap, state, at)


def _identity(snap: Snapshot, device: str, user: str | None) -> Identity:
    info = snap.devices.get(device)
    if info is not None:
        return Identity(
            client_ip="-",
            device=device,
            person=info.person,
            groups=info.groups,
            user=user,
            known=True,
            inspect=info.inspect,
        )
    try:
        ipaddress.ip_address(device.removeprefix("ip:"))
        return resolve(snap, device.removeprefix("ip:"), user=user)
    except ValueError:
        known = ", ".join(sorted(snap.devices)) or "none"
        raise StateError(
            f"{device!r} is neither a device in the rules nor an IP address "
            f"(devices in the rules: {known})"
        ) from None
