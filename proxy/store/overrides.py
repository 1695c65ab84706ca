"""Unlock windows and PIN overrides in the database.

An override is made by a parent for one blocked request (its ``request_id``) and is bound to
the device that made it. The PIN is stored as a slow salted hash; using it is a single
``UPDATE ... WHERE used_at IS NULL``, so two requests racing with the same PIN cannot both
win. A valid PIN opens an unlock window for the device. Wrong PINs are counted per device;
``max_attempts`` of them within ``lockout_minutes`` lock the device out for that long.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from governance import pins
from governance.errors import StateError
from governance.overrides import check_override_minutes, check_unlock_minutes
from governance.snapshot import OverrideSettings
from proxy.store.db import Db
from proxy.store.state import iso, parse_ts


@dataclass(frozen=True, slots=True)
class Redeemed:
    result: str  # ok | wrong_pin | locked_out | expired
    message: str
    until: datetime | None = None


def unlock(
    db: Db,
    actor: str,
    device: str,
    minutes: int,
    now: datetime,
    *,
    provider: str | None = None,
    source: str = "unlock",
) -> dict[str, Any]:
    try:
        check_unlock_minutes(minutes)
    except ValueError as exc:
        raise StateError(str(exc)) from None
    until = now + timedelta(minutes=minutes)
    with db.change(actor, f"unlock.{source}", device, now) as change:
        unlock_id = change.insert(
            "INSERT INTO unlocks (device, provider, until, source, created_at, created_by) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (device, provider, iso(until), source, iso(now), change.actor),
        )
        change.after = change.row("SELECT * FROM unlocks WHERE id = ?", (unlock_id,))
        return change.after or {}


def active_unlocks(db: Db, now: datetime) -> list[dict[str, Any]]:
    return db.rows(
        "SELECT id, device, provider, until, source, created_by FROM unlocks "
        "WHERE revoked_at IS NULL AND until > ? ORDER BY until",
        (iso(now),),
    )


def create(
    db: Db, actor: str, request_id: str, now: datetime, *, minutes: int = 15, pin: str | None = None
) -> tuple[dict[str, Any], str]:
    """An override for a blocked request; returns it and the PIN (shown once)."""
    try:
        check_override_minutes(minutes)
        pin = pins.check_pin_text(pin) if pin else pins.generate_pin()
    except ValueError as exc:
        raise StateError(str(exc)) from None
    blocked = db.row(
        "SELECT device, allowed FROM decisions WHERE request_id = ? ORDER BY id DESC LIMIT 1",
        (request_id,),
    )
    if blocked is None:
        raise StateError(
            f"no request {request_id!r} in the decision log (a request just "
            "blocked is logged within a second; check the id)"
        )
    if blocked["allowed"]:
        raise StateError(f"request {request_id!r} was not blocked")
    digest = pins.hash_pin(pin)
    with db.change(actor, "override.create", request_id, now) as change:
        change.execute(
            "UPDATE overrides SET expires_at = ? WHERE request_id = ? AND "
            "used_at IS NULL AND expires_at > ?",
            (iso(now), request_id, iso(now)),
        )
        override_id = change.insert(
            "INSERT INTO overrides (request_id, device, pin_hash, created_at, created_by, "
            "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                request_id,
                blocked["device"],
                digest,
                iso(now),
                change.actor,
                iso(now + timedelta(minutes=minutes)),
            ),
        )
        change.after = change.row(f"SELECT {_PUBLIC} FROM overrides WHERE id = ?", (override_id,))
        return change.after or {}, pin


_PUBLIC = "id, request_id, device, created_at, created_by, expires_at, used_at, used_by"


def listing(db: Db, now: datetime) -> list[dict[str, Any]]:
    return db.rows(
        f"SELECT {_PUBLIC} FROM overrides WHERE expires_at > ? OR used_at > ? ORDER BY id DESC",
        (iso(now - timedelta(days=1)),) * 2,
    )


def exists(db: Db, request_id: str, now: datetime) -> bool:
    return (
        db.row(
            "SELECT 1 FROM overrides WHERE request_id = ? AND used_at IS NULL AND expires_at > ?",
            (request_id, iso(now)),
        )
        is not None
    )


def lockout_until(
    db: Db, device: str, settings: OverrideSettings, now: datetime
) -> datetime | None:
    window = now - timedelta(minutes=settings.lockout_minutes)
    rows = db.rows(
        "SELECT ts FROM pin_failures WHERE device = ? AND ts > ? ORDER BY ts DESC",
        (device, iso(window)),
    )
    if len(rows) < settings.max_attempts:
        return None
    last = parse_ts(rows[0]["ts"])
    assert last is not None
    return last + timedelta(minutes=settings.lockout_minutes)


def redeem(
    db: Db, device: str, request_id: str | None, pin: str, settings: OverrideSettings, now: datetime
) -> Redeemed:
    """Check a PIN presented by ``device``; on success open its unlock window.

    With a database several gates share, the whole check runs in one transaction holding a
    lock named after the device, so wrong PINs sent at once to several gates are counted one
    after the other and never checked more than ``max_attempts`` times."""
    if not db.target.shared:
        return _redeem(db, device, request_id, pin, settings, now)
    with db.transaction() as conn:
        conn.lock(f"pin:{device}")
        return _redeem(db, device, request_id, pin, settings, now)


def _redeem(
    db: Db, device: str, request_id: str | None, pin: str, settings: OverrideSettings, now: datetime
) -> Redeemed:
    locked = lockout_until(db, device, settings, now)
    if locked is not None:
        return Redeemed("locked_out", f"too many wrong PINs; try again after {locked:%H:%M} UTC")
    for override in _candidates(db, device, request_id, now):
        if not pins.verify_pin(pin, override["pin_hash"]):
            continue
        usable = override["used_at"] is None and override["expires_at"] > iso(now)
        if usable and _use(db, override["id"], device, now):
            return _opened(db, override["created_by"], device, settings, now, "pin")
        return Redeemed("expired", "this PIN was already used or has expired")
    if settings.master_pin_hash and pins.verify_pin(pin, settings.master_pin_hash):
        return _opened(db, "master-pin", device, settings, now, "master_pin")
    with db.transaction() as conn:
        conn.execute("INSERT INTO pin_failures (device, ts) VALUES (?, ?)", (device, iso(now)))
    left = settings.max_attempts - len(
        db.rows(
            "SELECT 1 FROM pin_failures WHERE device = ? AND ts > ?",
            (device, iso(now - timedelta(minutes=settings.lockout_minutes))),
        )
    )
    return Redeemed("wrong_pin", f"wrong PIN; {max(left, 0)} attempt(s) left")


def _candidates(db: Db, device: str, request_id: str | None, now: datetime) -> list[dict[str, Any]]:
    recent = iso(now - timedelta(days=1))
    return db.rows(
        "SELECT * FROM overrides WHERE device = ? AND created_at > ? "
        "ORDER BY (request_id = ?) DESC, id DESC LIMIT 5",
        (device, recent, request_id or ""),
    )


def _use(db: Db, override_id: int, device: str, now: datetime) -> bool:
    with db.transaction() as conn:
        cur = conn.execute(
            "UPDATE overrides SET used_at = ?, used_by = ? WHERE id = ? AND "
            "used_at IS NULL AND expires_at > ?",
            (iso(now), device, override_id, iso(now)),
        )
        return bool(cur.rowcount == 1)


def _opened(
    db: Db, actor: str, device: str, settings: OverrideSettings, now: datetime, source: str
) -> Redeemed:
    row = unlock(db, actor, device, settings.unlock_minutes, now, source=source)
    with db.transaction() as conn:
        conn.execute("DELETE FROM pin_failures WHERE device = ?", (device,))
    until = parse_ts(row["until"])
    return Redeemed("ok", f"unlocked until {until:%H:%M} UTC" if until else "unlocked", until)
