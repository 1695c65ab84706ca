"""Runtime state in the database (SQLite or PostgreSQL), read into ``RuntimeState`` pieces.

Every change to runtime state bumps ``meta.state_version`` in the same transaction, so a
running proxy notices a change made by another process (the CLI) with one cheap query.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from governance.facts import DAY_NAMES, Action
from governance.snapshot import CompiledTimeRule, Selector
from governance.state import ActiveEmergency, RuntimeAllow, Unlock, UsageCount
from proxy.store.sql.connection import Connection


def iso(ts: datetime) -> str:
    """UTC ISO-8601 with milliseconds, the one timestamp format in the database."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_ts(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def state_version(db: Connection) -> str:
    row = db.execute("SELECT value FROM meta WHERE key = 'state_version'").fetchone()
    return str(row[0]) if row else "0"


def load_emergency(db: Connection) -> ActiveEmergency | None:
    row = db.execute(
        "SELECT id, activated_at, until, reason, activated_by FROM emergency WHERE active = 1"
    ).fetchone()
    if row is None:
        return None
    return ActiveEmergency(row[0], _ts(row[1]), _ts(row[2]), row[3], row[4])


def load_allowlist(db: Connection, now: datetime) -> tuple[RuntimeAllow, ...]:
    rows = db.execute(
        "SELECT entry_type, identifier, reason, expires_at FROM allowlist "
        "WHERE removed_at IS NULL AND (expires_at IS NULL OR expires_at > ?) ORDER BY id",
        (iso(now),),
    ).fetchall()
    return tuple(RuntimeAllow.make(r[0], r[1], r[2], parse_ts(r[3])) for r in rows)


def load_unlocks(db: Connection, now: datetime) -> dict[str, tuple[Unlock, ...]]:
    rows = db.execute(
        "SELECT device, until, created_by, provider, source FROM unlocks "
        "WHERE revoked_at IS NULL AND until > ? ORDER BY until DESC",
        (iso(now),),
    ).fetchall()
    unlocks: dict[str, list[Unlock]] = {}
    for device, until, by, provider, source in rows:
        unlocks.setdefault(device, []).append(Unlock(device, _ts(until), by, provider, source))
    return {k: tuple(v) for k, v in unlocks.items()}


def load_time_rules(db: Connection) -> tuple[CompiledTimeRule, ...]:
    rows = db.execute("SELECT definition FROM time_rules ORDER BY name").fetchall()
    return tuple(compile_runtime_rule(json.loads(r[0])) for r in rows)


def compile_runtime_rule(definition: dict[str, Any]) -> CompiledTimeRule:
    from governance.schema import TimeRule  # pydantic: only when a runtime rule is read

    rule = TimeRule.model_validate(definition)
    sel = rule.applies_to
    return CompiledTimeRule(
        name=rule.name,
        start=rule.start_time(),
        end=rule.end_time(),
        days=frozenset(DAY_NAMES.index(d) for d in rule.days),
        action=Action(rule.action),
        applies_to=Selector(frozenset(sel.groups), frozenset(sel.people), frozenset(sel.devices))
        if sel
        else Selector(),
        priority=rule.priority,
        message=rule.message,
    )


def load_usage(db: Connection, today: date) -> dict[str, UsageCount]:
    """Today's counters with this ISO week's totals, per key."""
    monday = today - timedelta(days=today.weekday())
    rows = db.execute(
        "SELECT key, day, requests, tokens_in + tokens_out, cost, minutes, last_minute "
        "FROM usage WHERE day >= ? AND day <= ?",
        (monday.isoformat(), today.isoformat()),
    ).fetchall()
    week: dict[str, list[float]] = {}
    day: dict[str, tuple[int, int, float, int, int]] = {}
    for key, d, requests, tokens, cost, minutes, last in rows:
        totals = week.setdefault(key, [0, 0, 0.0, 0])
        totals[0] += requests
        totals[1] += tokens
        totals[2] += cost
        totals[3] += minutes
        if d == today.isoformat():
            day[key] = (requests, tokens, cost, minutes, last)
    counts = {}
    for key, t in week.items():
        requests, tokens, cost, minutes, last = day.get(key, (0, 0, 0.0, 0, 0))
        counts[key] = UsageCount(
            today,
            requests,
            tokens,
            cost,
            week_requests=int(t[0]),
            week_tokens=int(t[1]),
            week_cost=t[2],
            minutes=minutes,
            week_minutes=int(t[3]),
            last_minute=int(last),
        )
    return counts


def reserve_requests(db: Connection, keys: tuple[str, ...], day: str) -> dict[str, int]:
    """Count one request on every counter in ``keys`` at once; each counter's new value.

    One statement, so atomic on its own: two gates reserving at the same moment get two
    different numbers, and the one past the limit gives its reservation back."""
    values = ", ".join(["(?, ?, 1)"] * len(keys))
    rows = db.execute(
        f"INSERT INTO usage (key, day, requests) VALUES {values} ON CONFLICT (key, day) "
        "DO UPDATE SET requests = usage.requests + 1 RETURNING key, requests",
        tuple(v for key in keys for v in (key, day)),
    ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def release_requests(db: Connection, keys: tuple[str, ...], day: str) -> None:
    """Give back a reservation the quota refused after all."""
    marks = ", ".join("?" * len(keys))
    db.execute(
        f"UPDATE usage SET requests = requests - 1 WHERE day = ? AND key IN ({marks})",
        (day, *keys),
    )


UPSERT_USAGE = (
    "INSERT INTO usage (key, day, requests, tokens_in, tokens_out, cost) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key, day) DO UPDATE SET "
    "requests = usage.requests + excluded.requests, "
    "tokens_in = usage.tokens_in + excluded.tokens_in, "
    "tokens_out = usage.tokens_out + excluded.tokens_out, cost = usage.cost + excluded.cost"
)
UPSERT_MINUTES = (
    "INSERT INTO usage (key, day, minutes, last_minute) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (key, day) DO UPDATE SET minutes = usage.minutes + excluded.minutes, "
    "last_minute = CASE WHEN usage.last_minute > excluded.last_minute "
    "THEN usage.last_minute ELSE excluded.last_minute END"
)
INSERT_ALERT = (
    "INSERT INTO alerts (ts, request_id, device, person, stage, rule, action, reason) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def _ts(text: str) -> datetime:
    value = parse_ts(text)
    assert value is not None
    return value
