from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from proxy.store.db import Db
from proxy.store.writer import DECISION_COLUMNS

NOW = datetime(2026, 11, 20, 21, 30, tzinfo=UTC)


def blocked_request(
    db: Db, request_id: str, device: str = "alice-laptop", provider: str | None = None
) -> None:
    values: dict[str, object] = {c: None for c in DECISION_COLUMNS}
    values.update(
        ts="2026-11-20T21:30:00.000Z",
        request_id=request_id,
        device=device,
        stage="time_rule",
        action="block",
        allowed=0,
        enforced=1,
        provider=provider,
    )
    cols = ", ".join(DECISION_COLUMNS)
    marks = ", ".join("?" * len(DECISION_COLUMNS))
    with db.transaction() as conn:
        conn.execute(
            f"INSERT INTO decisions ({cols}) VALUES ({marks})",
            tuple(values[c] for c in DECISION_COLUMNS),
        )


def audit_actions(state: Path) -> list[tuple[str, str]]:
    with Db(state) as db:
        return [
            (r["actor"], r["action"])
            for r in db.rows("SELECT actor, action FROM audit ORDER BY id")
        ]
