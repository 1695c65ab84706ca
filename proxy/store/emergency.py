"""Emergency overrides in the database: at most one active, enforced by a unique index
(a partial one, on both backends: two gates racing to switch one on cannot both win)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from governance import emergency as rules
from governance.errors import StateError
from proxy.store.db import Db
from proxy.store.sql.connection import Connection, integrity_errors
from proxy.store.state import iso, parse_ts

_COLUMNS = "id, activated_at, until, reason, activated_by, deactivated_at, deactivated_by"


def status(db: Db, now: datetime) -> dict[str, Any] | None:
    row = db.row(f"SELECT {_COLUMNS} FROM emergency WHERE active = 1 AND until > ?", (iso(now),))
    if row:
        until = parse_ts(row["until"])
        assert until is not None
        row["remaining_minutes"] = max(0, int((until - now).total_seconds() // 60))
    return row


def history(db: Db, limit: int = 50) -> list[dict[str, Any]]:
    return db.rows(f"SELECT {_COLUMNS}, active FROM emergency ORDER BY id DESC LIMIT ?", (limit,))


def activate(db: Db, actor: str, minutes: int, reason: str, now: datetime) -> dict[str, Any]:
    try:
        rules.check_activation(minutes, reason)
    except ValueError as exc:
        raise StateError(str(exc)) from None
    with db.change(actor, "emergency.on", "emergency", now) as change:
        _close_expired(change.conn, now)
        until = now + timedelta(minutes=minutes)
        try:
            with change.conn.savepoint():  # PostgreSQL: the failed INSERT alone rolls back
                emergency_id = change.insert(
                    "INSERT INTO emergency (activated_at, until, reason, activated_by) "
                    "VALUES (?, ?, ?, ?)",
                    (iso(now), iso(until), reason.strip(), change.actor),
                )
        except integrity_errors():
            raise StateError(
                "an emergency override is already active; extend it or switch it off first"
            ) from None
        change.after = change.row(f"SELECT {_COLUMNS} FROM emergency WHERE id = ?", (emergency_id,))
        return change.after or {}


def extend(db: Db, actor: str, additional_minutes: int, now: datetime) -> dict[str, Any]:
    with db.change(actor, "emergency.extend", "emergency", now) as change:
        current = change.row(
            f"SELECT {_COLUMNS} FROM emergency WHERE active = 1 AND until > ?", (iso(now),)
        )
        if current is None:
            raise StateError("no emergency override is active")
        started, until = parse_ts(current["activated_at"]), parse_ts(current["until"])
        assert started is not None and until is not None
        try:
            new_until = rules.extended_until(started, until, additional_minutes)
        except ValueError as exc:
            raise StateError(str(exc)) from None
        change.execute(
            "UPDATE emergency SET until = ? WHERE id = ?", (iso(new_until), current["id"])
        )
        after = {**current, "until": iso(new_until)}
        change.before, change.after = current, after
        return after


def deactivate(db: Db, actor: str, now: datetime) -> dict[str, Any]:
    with db.change(actor, "emergency.off", "emergency", now) as change:
        current = change.row(f"SELECT {_COLUMNS} FROM emergency WHERE active = 1")
        if current is None:
            raise StateError("no emergency override is active")
        change.execute(
            "UPDATE emergency SET active = 0, deactivated_at = ?, deactivated_by = ? WHERE id = ?",
            (iso(now), change.actor, current["id"]),
        )
        change.before = current
        after = {**current, "deactivated_at": iso(now), "deactivated_by": change.actor}
        change.after = after
        return after


def _close_expired(conn: Connection, now: datetime) -> None:
    conn.execute(
        "UPDATE emergency SET active = 0, deactivated_at = until, "
        "deactivated_by = 'expired' WHERE active = 1 AND until <= ?",
        (iso(now),),
    )
