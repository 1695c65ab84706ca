"""Administrative changes, one entry point for the CLI and the admin API.

``perform`` applies a change at once, or — when its kind is listed in ``consent.actions`` —
stores it as a consent request and raises ``ConsentRequired``. ``approve`` applies it, in the
approval's own transaction, once enough other parents have approved.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from governance.errors import ConsentRequired, StateError
from governance.snapshot import Snapshot
from proxy.store import allowlist, consent, emergency, family, overrides, time_rules
from proxy.store.db import Db
from proxy.store.state import parse_ts

# (kind, operation) pairs that consent can gate; switching things off never waits
GATED = {
    ("emergency", "on"),
    ("emergency", "extend"),
    ("allowlist", "add"),
    ("unlock", "unlock"),
    ("time_rule", "add"),
    ("pause", "pause"),
    ("bonus", "bonus"),
}


def perform(
    db: Db,
    snap: Snapshot,
    actor: str,
    kind: str,
    payload: dict[str, Any],
    now: datetime,
    description: str | None = None,
) -> dict[str, Any]:
    op = str(payload.get("op") or _default_op(kind))
    if kind in snap.rules.consent.actions and (kind, op) in GATED:
        item = consent.request(
            db,
            actor,
            kind,
            description or describe(kind, payload),
            {**payload, "op": op},
            now,
            snap.rules.consent.expire_hours,
        )
        need = snap.rules.consent.approvers
        raise ConsentRequired(
            item["id"],
            f"this change needs approval by {need} other parent(s): consent request {item['id']}",
        )
    return apply(db, snap, actor, kind, {**payload, "op": op}, now)


def approve(db: Db, snap: Snapshot, actor: str, consent_id: int, now: datetime) -> dict[str, Any]:
    def run(requester: str, kind: str, payload: dict[str, Any], at: datetime) -> dict[str, Any]:
        return apply(db, snap, requester, kind, payload, at)

    return consent.approve(db, actor, consent_id, snap.rules.consent.approvers, now, run)


def apply(
    db: Db, snap: Snapshot, actor: str, kind: str, payload: dict[str, Any], now: datetime
) -> dict[str, Any]:
    op = payload.get("op") or _default_op(kind)
    devices = frozenset(snap.devices)
    if kind == "emergency":
        if op == "on":
            return emergency.activate(
                db, actor, int(payload["duration_minutes"]), str(payload.get("reason", "")), now
            )
        if op == "extend":
            return emergency.extend(db, actor, int(payload["additional_minutes"]), now)
        if op == "off":
            return emergency.deactivate(db, actor, now)
    if kind == "allowlist":
        if op == "add":
            return allowlist.add(
                db,
                actor,
                str(payload["identifier"]),
                payload.get("entry_type"),
                now,
                name=payload.get("name"),
                reason=payload.get("reason"),
                expires_at=parse_ts(payload.get("expires_at")),
                devices=devices,
            )
        if op == "remove":
            return allowlist.remove(db, actor, str(payload["identifier"]), now, devices)
    if kind == "unlock":
        device = str(payload["device"])
        check_device(snap, device)
        return overrides.unlock(
            db, actor, device, int(payload["minutes"]), now, provider=payload.get("provider")
        )
    if kind == "time_rule":
        if op == "add":
            definition = {k: v for k, v in payload.items() if k != "op"}
            return time_rules.add(
                db, actor, definition, now, frozenset(r.name for r in snap.rules.time_rules)
            )
        if op == "remove":
            return time_rules.remove(db, actor, str(payload["name"]), now)
    if kind == "pause":
        return _pause(db, snap, actor, op, payload, now)
    if kind == "bonus":
        day = now.astimezone(snap.zone).date()
        person = str(payload.get("person", ""))
        return family.bonus(db, snap, actor, person, day, now, payload)
    raise StateError(f"unknown change {kind}/{op}")


def _pause(
    db: Db, snap: Snapshot, actor: str, op: str, payload: dict[str, Any], now: datetime
) -> dict[str, Any]:
    target = str(payload.get("target", ""))
    if op == "resume":
        return family.resume(db, snap, actor, target, now)
    if op != "pause":
        raise StateError(f"unknown change pause/{op}")
    if payload.get("until"):
        until = parse_ts(str(payload["until"]))
        assert until is not None
        if until.tzinfo is None:
            until = until.replace(tzinfo=snap.zone)
    else:
        until = now + timedelta(minutes=int(payload.get("minutes") or 0))
    return family.pause(db, snap, actor, target, until, now, payload.get("reason"))


def check_device(snap: Snapshot, device: str) -> None:
    if device not in snap.devices and not device.startswith(("ip:", "user:")):
        known = ", ".join(sorted(snap.devices)) or "none"
        raise StateError(
            f"unknown device {device!r} (devices in the rules: {known}; "
            "unnamed devices are written ip:ADDRESS)"
        )


def describe(kind: str, payload: dict[str, Any]) -> str:
    if kind == "emergency":
        return (
            f"emergency override for {payload.get('duration_minutes')} minutes: "
            f"{payload.get('reason', '')}"
        )
    if kind == "allowlist":
        return f"allow {payload.get('identifier')}: {payload.get('reason') or 'no reason'}"
    if kind == "unlock":
        return f"unlock {payload.get('device')} for {payload.get('minutes')} minutes"
    if kind == "pause":
        span = (
            f"until {payload['until']}"
            if payload.get("until")
            else (f"for {payload.get('minutes')} minutes")
        )
        return f"pause {payload.get('target')} {span}"
    if kind == "bonus":
        extra = ", ".join(
            f"{payload[k]} {k}" for k in ("minutes", "requests", "tokens") if payload.get(k)
        )
        return f"extra today for {payload.get('person')}: {extra or 'nothing'}"
    return f"add time rule {payload.get('name')}"


def _default_op(kind: str) -> str:
    defaults = {"emergency": "on", "allowlist": "add", "unlock": "unlock", "time_rule": "add"}
    return {**defaults, "pause": "pause", "bonus": "bonus"}[kind]
