"""Admin API tokens: random, shown once, stored as a slow salted hash (scrypt).

A token reads ``hg_<id>_<secret>``; the id finds the row, the secret is checked against its
hash in constant time. Revoked tokens stop working at once for the process that revoked them
and within a second for a running gate (the state version changes).
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from governance import pins
from governance.errors import StateError
from proxy.store.db import Db, normalize_actor
from proxy.store.state import iso

ROLES = ("parent", "viewer")


@dataclass(frozen=True, slots=True)
class Admin:
    id: int
    name: str
    role: str

    @property
    def can_write(self) -> bool:
        return self.role == "parent"


def add(
    db: Db,
    actor: str,
    name: str,
    role: str,
    now: datetime,
    minted: tuple[str, str, str] | None = None,
) -> tuple[dict[str, Any], str]:
    """A new token for ``name``: the row and the token, shown once. ``minted`` is a
    ``pins.new_token()`` made beforehand (the CLI hashes it while it loads)."""
    if role not in ROLES:
        raise StateError(f"role must be parent or viewer, not {role!r}")
    who = normalize_actor(name)
    token_id, token, digest = minted or pins.new_token()
    with db.change(actor, "admin.add", who, now) as change:
        if change.row("SELECT 1 FROM admins WHERE name = ? AND revoked_at IS NULL", (who,)):
            raise StateError(f"{who} already has a token; revoke it first")
        change.execute(
            "INSERT INTO admins (name, role, token_hash, token_prefix, created_at, "
            "created_by) VALUES (?, ?, ?, ?, ?, ?)",
            (who, role, digest, token_id, iso(now), change.actor),
        )
        change.after = {"name": who, "role": role, "token_id": token_id}
        return change.after, token


def listing(db: Db) -> list[dict[str, Any]]:
    return db.rows(
        "SELECT name, role, token_prefix AS token_id, created_at, created_by, "
        "revoked_at FROM admins ORDER BY id"
    )


def revoke(db: Db, actor: str, name: str, now: datetime) -> dict[str, Any]:
    who = normalize_actor(name)
    with db.change(actor, "admin.revoke", who, now) as change:
        row = change.row(
            "SELECT id, name, role FROM admins WHERE name = ? AND revoked_at IS NULL", (who,)
        )
        if row is None:
            raise StateError(f"{who} has no active token")
        change.execute("UPDATE admins SET revoked_at = ? WHERE id = ?", (iso(now), row["id"]))
        change.before = row
        return row


def authenticate(db: Db, token: str) -> Admin | None:
    """The admin a token belongs to, or None; one slow hash check per call."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != "hg" or not parts[2]:
        return None
    row = db.row(
        "SELECT id, name, role, token_hash FROM admins WHERE token_prefix = ? AND "
        "revoked_at IS NULL",
        (parts[1],),
    )
    if row is None:
        pins.verify_pin(parts[2], _dummy())  # same cost whether or not the id exists
        return None
    if not pins.verify_pin(parts[2], row["token_hash"]):
        return None
    return Admin(row["id"], row["name"], row["role"])


@functools.cache
def _dummy() -> str:
    """A hash to verify unknown tokens against; made when first needed, not on import (every
    CLI command that imports this module would pay one scrypt for nothing)."""
    return pins.hash_pin("not-a-token-" + secrets.token_hex(8))


def warm() -> None:
    """Make the dummy hash now (a server does, so its first unknown token costs the same)."""
    _dummy()
