from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from proxy.store import retention
from proxy.store.db import Db
from proxy.store.state import iso
from proxy.store.writer import DECISION_COLUMNS
from tests.proxy.store.helpers import NOW


async def test_prune_deletes_only_old_rows_in_batches(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(retention, "BATCH", 7)
    with Db(tmp_path) as db, db.transaction() as conn:
        for age_days in [100] * 20 + [89] * 5:
            values = {c: None for c in DECISION_COLUMNS}
            values.update(
                ts=iso(NOW - timedelta(days=age_days)),
                request_id="r",
                stage="default",
                action="allow",
                allowed=1,
                enforced=1,
            )
            conn.execute(
                f"INSERT INTO decisions ({', '.join(DECISION_COLUMNS)}) VALUES "
                f"({', '.join('?' * len(DECISION_COLUMNS))})",
                tuple(values[c] for c in DECISION_COLUMNS),
            )
    assert await retention.prune(tmp_path, 90, NOW) == 20
    with Db(tmp_path) as db:
        assert db.row("SELECT count(*) AS n FROM decisions") == {"n": 5}
