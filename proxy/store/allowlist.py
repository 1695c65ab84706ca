"""Runtime allowlist entries: normalised before storing, optional expiry, re-addable."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any

from governance.addresses import normalize_mac
from governance.errors import StateError
from proxy.store.db import Db
from proxy.store.state import iso

ENTRY_TYPES = ("device", "mac", "user", "cidr")
_COLUMNS = "id, identifier, entry_type, name, reason, created_at, created_by, expires_at"


def normalize(
    identifier: str, entry_type: str | None, devices: frozenset[str] = frozenset()
) -> tuple[str, str]:
    """(canonical identifier, entry type); the type is guessed when not given."""
    text = identifier.strip()
    if not text:
        raise StateError("an allowlist entry needs an identifier")
    if entry_type is None:
        entry_type = _guess(text, devices)
    if entry_type not in ENTRY_TYPES:
        raise StateError(f"entry_type must be one of {', '.join(ENTRY_TYPES)}, not {entry_type!r}")
    try:
        if entry_type == "mac":
            return normalize_mac(text), "mac"
        if entry_type == "cidr":
            return str(ipaddress.ip_network(text.strip("[]"), strict=False)), "cidr"
    except ValueError as exc:
        raise StateError(str(exc)) from None
    if entry_type == "user":
        return text.lower(), "user"
    return text, "device"


def _guess(text: str, devices: frozenset[str]) -> str:
    if text in devices:
        return "device"
    try:
        normalize_mac(text)
        return "mac"
    except ValueError:
        pass
    try:
        ipaddress.ip_network(text.strip("[]"), strict=False)
        return "cidr"
    except ValueError:
        pass
    raise StateError(
        f"{text!r} is not a device in the rules, a MAC, an IP or a network; "
        "say which with entry_type (device, mac, user, cidr)"
    )


def add(
    db: Db,
    actor: str,
    identifier: str,
    entry_type: str | None,
    now: datetime,
    *,
    name: str | None = None,
    reason: str | None = None,
    expires_at: datetime | None = None,
    devices: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    ident, kind = normalize(identifier, entry_type, devices)
    if expires_at is not None and expires_at <= now:
        raise StateError("the expiry time is already in the past")
    with db.change(actor, "allowlist.add", f"{kind}:{ident}", now) as change:
        current = _live(change, kind, ident, now)
        if current:  # adding again updates reason and expiry
            change.execute(
                "UPDATE allowlist SET name = ?, reason = ?, expires_at = ? WHERE id = ?",
                (name, reason, _iso(expires_at), current["id"]),
            )
            change.before = current
            entry_id = current["id"]
        else:
            change.execute(
                "UPDATE allowlist SET removed_at = ?, removed_by = 'expired' WHERE "
                "entry_type = ? AND identifier = ? AND removed_at IS NULL",
                (iso(now), kind, ident),
            )
            entry_id = change.insert(
                "INSERT INTO allowlist (identifier, entry_type, name, reason, created_at, "
                "created_by, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (ident, kind, name, reason, iso(now), change.actor, _iso(expires_at)),
            )
        change.after = change.row(f"SELECT {_COLUMNS} FROM allowlist WHERE id = ?", (entry_id,))
        return change.after or {}


def remove(
    db: Db, actor: str, identifier: str, now: datetime, devices: frozenset[str] = frozenset()
) -> dict[str, Any]:
    candidates = _candidates(identifier, devices)
    with db.change(actor, "allowlist.remove", identifier, now) as change:
        for kind, ident in candidates:
            current = _live(change, kind, ident, now)
            if current:
                change.execute(
                    "UPDATE allowlist SET removed_at = ?, removed_by = ? WHERE id = ?",
                    (iso(now), change.actor, current["id"]),
                )
                change.target, change.before = f"{kind}:{ident}", current
                return current
        raise StateError(f"{identifier!r} is not on the runtime allowlist")


def entries(db: Db, now: datetime) -> list[dict[str, Any]]:
    return db.rows(
        f"SELECT {_COLUMNS} FROM allowlist WHERE removed_at IS NULL AND "
        "(expires_at IS NULL OR expires_at > ?) ORDER BY id",
        (iso(now),),
    )


def find(
    db: Db, identifier: str, now: datetime, devices: frozenset[str] = frozenset()
) -> dict[str, Any] | None:
    for kind, ident in _candidates(identifier, devices):
        row = db.row(
            f"SELECT {_COLUMNS} FROM allowlist WHERE entry_type = ? AND identifier = ?"
            " AND removed_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
            (kind, ident, iso(now)),
        )
        if row:
            return row
    return None


def _candidates(identifier: str, devices: frozenset[str]) -> list[tuple[str, str]]:
    found = []
    for kind in ENTRY_TYPES:
        try:
            ident, k = normalize(identifier, kind, devices)
        except StateError:
            continue
        found.append((k, ident))
    return found


def _live(change: Any, kind: str, ident: str, now: datetime) -> dict[str, Any] | None:
    row: dict[str, Any] | None = change.row(
        f"SELECT {_COLUMNS} FROM allowlist WHERE entry_type = ? AND identifier = ? "
        "AND removed_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
        (kind, ident, iso(now)),
    )
    return row


def _iso(value: datetime | None) -> str | None:
    return iso(value) if value else None
