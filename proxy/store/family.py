"""Pauses and extra allowances ("bonus") in the database, and reading them back.

A pause stops a person, a device or a group now, until a set time, and ends early with
``resume``. Starting one ends the unlocks open at that moment for the devices it covers (in
the same audited change), so it takes effect at once. A bonus adds minutes, requests or
tokens to one person's limits for one local day; several bonuses add up.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from governance.errors import StateError
from governance.pause import check_pause_minutes
from governance.snapshot import Snapshot
from governance.state import Bonus, Pause
from proxy.store.db import Db
from proxy.store.sql.connection import Connection
from proxy.store.state import iso, parse_ts

KINDS = ("person", "device", "group")
MAX_BONUS = {"minutes": 720, "requests": 10_000, "tokens": 10_000_000}


def resolve_target(snap: Snapshot, text: str) -> tuple[str, str]:
    """("person" | "device" | "group", name) for a name from the rules; ``kind:name`` picks
    one when a name is used twice; ``ip:ADDRESS`` is an unnamed device."""
    name = text.strip()
    kind, sep, rest = name.partition(":")
    if sep and kind in KINDS:
        if rest in _names(snap, kind):
            return kind, rest
        raise StateError(f"there is no {kind} {rest!r} in the rules")
    if name.startswith("ip:"):
        return "device", name
    found = [k for k in KINDS if name in _names(snap, k)]
    if len(found) == 1:
        return found[0], name
    if found:
        options = " or ".join(f"{k}:{name}" for k in found)
        raise StateError(f"{name!r} is a {' and a '.join(found)}; write {options}")
    raise StateError(
        f"{name!r} is not a person, device or group in the rules "
        f"(people: {', '.join(sorted(snap.rules.people)) or 'none'}; "
        f"groups: {', '.join(sorted(snap.rules.groups)) or 'none'})"
    )


def _names(snap: Snapshot, kind: str) -> frozenset[str]:
    if kind == "person":
        return frozenset(snap.rules.people)
    if kind == "device":
        return frozenset(snap.devices)
    return frozenset(snap.rules.groups)


def covered_devices(snap: Snapshot, kind: str, target: str) -> list[str]:
    if kind == "device":
        return [target]
    return [
        d.name
        for d in snap.devices.values()
        if (d.person == target if kind == "person" else target in d.groups)
    ]


def pause(
    db: Db,
    snap: Snapshot,
    actor: str,
    target: str,
    until: datetime,
    now: datetime,
    reason: str | None = None,
) -> dict[str, Any]:
    kind, name = resolve_target(snap, target)
    minutes = int((until - now).total_seconds() // 60)
    try:
        check_pause_minutes(max(minutes, 1) if until > now else 0)
    except ValueError as exc:
        raise StateError(str(exc)) from None
    devices = covered_devices(snap, kind, name)
    with db.change(actor, "pause", f"{kind}:{name}", now) as change:
        pause_id = change.insert(
            "INSERT INTO pauses (kind, target, until, reason, created_at, created_by) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (kind, name, iso(until), reason, iso(now), change.actor),
        )
        marks = ",".join("?" * len(devices))
        ended = (
            change.execute(
                f"UPDATE unlocks SET revoked_at = ? WHERE revoked_at IS NULL AND until > ? "
                f"AND device IN ({marks})",
                (iso(now), iso(now), *devices),
            ).rowcount
            if devices
            else 0
        )
        row = change.row("SELECT * FROM pauses WHERE id = ?", (pause_id,)) or {}
        change.after = {**row, "unlocks_ended": ended}
        return change.after  # type: ignore[no-any-return]


def resume(db: Db, snap: Snapshot, actor: str, target: str, now: datetime) -> dict[str, Any]:
    kind, name = resolve_target(snap, target)
    with db.change(actor, "resume", f"{kind}:{name}", now) as change:
        live = "kind = ? AND target = ? AND ended_at IS NULL AND until > ?"
        change.before = [
            dict(r)
            for r in change.conn.execute(
                f"SELECT * FROM pauses WHERE {live}", (kind, name, iso(now))
            ).fetchall()
        ]
        if not change.before:
            raise StateError(f"{name} is not paused")
        change.execute(
            f"UPDATE pauses SET ended_at = ?, ended_by = ? WHERE {live}",
            (iso(now), change.actor, kind, name, iso(now)),
        )
        change.after = {"kind": kind, "target": name, "resumed": len(change.before)}
        return change.after  # type: ignore[no-any-return]


def active_pauses(db: Db, now: datetime) -> list[dict[str, Any]]:
    return db.rows(
        "SELECT id, kind, target, until, reason, created_at, created_by FROM pauses "
        "WHERE ended_at IS NULL AND until > ? ORDER BY until",
        (iso(now),),
    )


def bonus(
    db: Db,
    snap: Snapshot,
    actor: str,
    person: str,
    day: date,
    now: datetime,
    amounts: dict[str, int],
) -> dict[str, Any]:
    if person not in snap.rules.people:
        known = ", ".join(sorted(snap.rules.people)) or "none"
        raise StateError(f"there is no person {person!r} in the rules (people: {known})")
    given = {k: int(amounts.get(k) or 0) for k in MAX_BONUS}
    for what, value in given.items():
        if not 0 <= value <= MAX_BONUS[what]:
            raise StateError(f"extra {what} must be 0 to {MAX_BONUS[what]}, not {value}")
    if not any(given.values()):
        raise StateError("say how much extra: --minutes, --requests or --tokens")
    with db.change(actor, "bonus", f"person:{person}", now) as change:
        bonus_id = change.insert(
            "INSERT INTO bonuses (person, day, minutes, requests, tokens, created_at, "
            "created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (person, day.isoformat(), *given.values(), iso(now), change.actor),
        )
        change.after = change.row("SELECT * FROM bonuses WHERE id = ?", (bonus_id,))
        return change.after or {}


def bonuses_on(db: Db, day: date) -> dict[str, dict[str, int]]:
    rows = db.rows(
        "SELECT person, sum(minutes) AS minutes, sum(requests) AS requests, "
        "sum(tokens) AS tokens FROM bonuses WHERE day = ? GROUP BY person",
        (day.isoformat(),),
    )
    return {r["person"]: {k: int(r[k]) for k in MAX_BONUS} for r in rows}


def load_pauses(db: Connection, now: datetime) -> tuple[Pause, ...]:
    rows = db.execute(
        "SELECT kind, target, until, created_by FROM pauses "
        "WHERE ended_at IS NULL AND until > ? ORDER BY id",
        (iso(now),),
    ).fetchall()
    return tuple(Pause(r[0], r[1], parse_ts(r[2]) or now, r[3]) for r in rows)


def load_bonuses(db: Connection, day: date) -> dict[str, Bonus]:
    rows = db.execute(
        "SELECT person, sum(minutes), sum(requests), sum(tokens) FROM bonuses "
        "WHERE day = ? GROUP BY person",
        (day.isoformat(),),
    ).fetchall()
    return {r[0]: Bonus(day, int(r[1]), int(r[2]), int(r[3])) for r in rows}
