"""Consent: sensitive changes wait for other parents' approval, then apply exactly once.

A request is stored ``pending`` with its payload. Each approval is one row keyed by
(request, approver), so nobody counts twice; the requester cannot approve their own request;
names are compared after normalisation. When enough approvals are in, the status moves from
``pending`` to ``applied`` in the same transaction as the change itself (``UPDATE ... WHERE
status = 'pending'``), so a change is applied once and never again. Pending requests expire.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from governance.errors import StateError
from proxy.store.db import Db, normalize_actor
from proxy.store.state import iso

CHANGE_TYPES = ("emergency", "allowlist", "unlock", "time_rule", "pause", "bonus")
Apply = Callable[[str, str, dict[str, Any], datetime], dict[str, Any]]


def request(
    db: Db,
    actor: str,
    change_type: str,
    description: str,
    payload: dict[str, Any],
    now: datetime,
    expire_hours: int = 24,
) -> dict[str, Any]:
    if change_type not in CHANGE_TYPES:
        raise StateError(f"change_type must be one of {', '.join(CHANGE_TYPES)}")
    with db.change(actor, "consent.request", change_type, now) as change:
        consent_id = change.insert(
            "INSERT INTO consent (change_type, description, payload, requested_by, "
            "requested_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                change_type,
                description or change_type,
                json.dumps(payload, default=str),
                change.actor,
                iso(now),
                iso(now + timedelta(hours=expire_hours)),
            ),
        )
        change.target = f"consent:{consent_id}"
        after = _get(change.conn, consent_id)
        change.after = after
        return after


def approve(
    db: Db, actor: str, consent_id: int, needed: int, now: datetime, apply: Apply
) -> dict[str, Any]:
    """Record an approval; apply the change when it is the last one needed."""
    approver = normalize_actor(actor)
    _expire_overdue(db, now)
    with db.change(approver, "consent.approve", f"consent:{consent_id}", now) as change:
        item = _pending(change.conn, consent_id, now)
        if item["requested_by"] == approver:
            raise StateError("the parent who asked for a change cannot approve it")
        inserted = change.execute(
            "INSERT INTO consent_approvals (consent_id, approver, ts) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (consent_id, approver, iso(now)),
        ).rowcount
        if not inserted:
            raise StateError(f"{approver} has already approved request {consent_id}")
        count = change.conn.execute(
            "SELECT count(*) FROM consent_approvals WHERE consent_id = ?", (consent_id,)
        ).fetchone()[0]
        change.before = item
        if count >= needed:
            won = change.execute(
                "UPDATE consent SET status = 'applied', decided_at = ?, "
                "decided_by = ?, applied_at = ? WHERE id = ? AND "
                "status = 'pending'",
                (iso(now), approver, iso(now), consent_id),
            ).rowcount
            if won == 1:
                result = apply(
                    item["requested_by"], item["change_type"], json.loads(item["payload"]), now
                )
                applied = {**_get(change.conn, consent_id), "result": result}
                change.after = applied
                return applied
        after = _get(change.conn, consent_id)
        change.after = after
        return after


def reject(db: Db, actor: str, consent_id: int, reason: str, now: datetime) -> dict[str, Any]:
    _expire_overdue(db, now)
    with db.change(actor, "consent.reject", f"consent:{consent_id}", now) as change:
        change.before = _pending(change.conn, consent_id, now)
        change.execute(
            "UPDATE consent SET status = 'rejected', decided_at = ?, decided_by = ?,"
            " reject_reason = ? WHERE id = ?",
            (iso(now), change.actor, reason or None, consent_id),
        )
        after = _get(change.conn, consent_id)
        change.after = after
        return after


def pending(db: Db, now: datetime) -> list[dict[str, Any]]:
    rows = db.rows(
        "SELECT * FROM consent WHERE status = 'pending' AND expires_at > ? ORDER BY id", (iso(now),)
    )
    for row in rows:
        row["payload"] = json.loads(row["payload"])
        row["approvals"] = [
            r["approver"]
            for r in db.rows(
                "SELECT approver FROM consent_approvals WHERE consent_id = ? ORDER BY ts",
                (row["id"],),
            )
        ]
    return rows


def _pending(conn: Any, consent_id: int, now: datetime) -> dict[str, Any]:
    item = _get(conn, consent_id)
    if not item:
        raise StateError(f"there is no consent request {consent_id}")
    if item["status"] == "pending" and item["expires_at"] <= iso(now):
        item["status"] = "expired"  # _expire_overdue has recorded it unless it just turned
    if item["status"] != "pending":
        raise StateError(f"consent request {consent_id} is {item['status']}, not pending")
    return item


def _expire_overdue(db: Db, now: datetime) -> None:
    """Pending requests past their time become ``expired``, in a transaction of their own
    (a refused approval that follows rolls back, this must not)."""
    with db.transaction() as conn:
        conn.execute(
            "UPDATE consent SET status = 'expired' WHERE status = 'pending' AND expires_at <= ?",
            (iso(now),),
        )


def _get(conn: Any, consent_id: int | None) -> dict[str, Any]:
    row = conn.execute("SELECT * FROM consent WHERE id = ?", (consent_id,)).fetchone()
    return dict(row) if row else {}
