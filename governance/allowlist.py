"""Stages 2 and 3: the allowlist — devices, networks, MACs (stage 2) and proxy users (stage 3).

Entries come from the rules file and from runtime additions; runtime entries may expire and
stop matching the moment they do. Identifiers are normalised before they are stored, and the
identity they are compared with is normalised when it is resolved.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache

from governance.facts import Action, Decision, Identity, RequestFacts, Stage
from governance.snapshot import Snapshot, StaticAllow
from governance.state import RuntimeAllow, RuntimeState

Entry = StaticAllow | RuntimeAllow


def evaluate_device(
    facts: RequestFacts, snap: Snapshot, state: RuntimeState, now: datetime
) -> Decision | None:
    entry = _first(facts.identity, snap, state, now, users=False)
    return _decision(entry) if entry else None


def evaluate_user(
    facts: RequestFacts, snap: Snapshot, state: RuntimeState, now: datetime
) -> Decision | None:
    if facts.identity.user is None:
        return None
    entry = _first(facts.identity, snap, state, now, users=True)
    return _decision(entry) if entry else None


def _first(
    ident: Identity, snap: Snapshot, state: RuntimeState, now: datetime, *, users: bool
) -> Entry | None:
    """Rules-file entries first (looked up once per identity and snapshot), then runtime."""
    key = (users, ident.device, ident.mac, ident.client_ip, ident.user)
    cache = snap.allow_cache
    if key in cache:
        entry: Entry | None = cache[key]
    else:
        if len(cache) > 16384:
            cache.clear()
        found = find(ident, snap.allowlist, users=users)
        assert found is None or isinstance(found, StaticAllow)
        entry = cache[key] = found
    if entry is None and state.allowlist:
        entry = find(ident, _live((), state.allowlist, now), users=users)
    return entry


def find(ident: Identity, entries: Iterable[Entry], *, users: bool) -> Entry | None:
    """The first entry that names this identity (user entries only when ``users``)."""
    entries = tuple(entries)
    # parse the client address only when a network entry needs it
    address = _address(ident.client_ip) if any(e.kind == "network" for e in entries) else None
    for entry in entries:
        if (entry.kind == "user") != users:
            continue
        if _matches(entry, ident, address):
            return entry
    return None


def _matches(entry: Entry, ident: Identity, address: ipaddress._BaseAddress | None) -> bool:
    if entry.kind == "device":
        return entry.value == ident.device
    if entry.kind == "mac":
        return entry.value == ident.mac
    if entry.kind == "user":
        return ident.user is not None and entry.value.lower() == ident.user.lower()
    return address is not None and entry.network is not None and address in entry.network


def _live(
    static: tuple[StaticAllow, ...], runtime: tuple[RuntimeAllow, ...], now: datetime
) -> Iterable[Entry]:
    yield from static
    for entry in runtime:
        if entry.expires_at is None or entry.expires_at > now:
            yield entry


@lru_cache(maxsize=4096)  # a household has few addresses; parsing one costs microseconds
def _address(ip: str) -> ipaddress._BaseAddress | None:
    try:
        return ipaddress.ip_address(ip)
    except ValueError:
        return None


def _decision(entry: Entry) -> Decision:
    what = {"device": "device", "network": "address", "mac": "MAC address", "user": "user"}[
        entry.kind
    ]
    reason = f"{what} {entry.value} is on the allowlist"
    if entry.reason:
        reason += f" ({entry.reason})"
    return Decision(
        stage=Stage.ALLOWLIST, action=Action.ALLOW, rule=f"allowlist:{entry.value}", reason=reason
    )
