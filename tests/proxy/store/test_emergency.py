from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from governance.errors import StateError
from proxy.store import emergency
from proxy.store.db import Db
from tests.proxy.store.helpers import NOW, audit_actions


@pytest.mark.parametrize(("minutes", "reason"), [(0, "x"), (1441, "x"), (-5, "x"), (30, "  ")])
def test_bad_activation_is_refused(tmp_path: Path, minutes: int, reason: str) -> None:
    with Db(tmp_path) as db, pytest.raises(StateError):
        emergency.activate(db, "mom", minutes, reason, NOW)


def test_only_one_active_even_when_racing(tmp_path: Path) -> None:
    Db(tmp_path).close()
    results: list[str] = []
    barrier = threading.Barrier(4)

    def activate() -> None:
        with Db(tmp_path) as db:
            barrier.wait()
            try:
                emergency.activate(db, "mom", 30, "race", NOW)
                results.append("ok")
            except StateError:
                results.append("refused")

    threads = [threading.Thread(target=activate) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok", "refused", "refused", "refused"]
    with Db(tmp_path) as db:
        assert len(db.rows("SELECT * FROM emergency WHERE active = 1")) == 1


def test_unique_index_is_the_guard(tmp_path: Path) -> None:
    with Db(tmp_path) as db:
        db.conn.execute(
            "INSERT INTO emergency (activated_at, until, reason, activated_by) "
            "VALUES ('a', 'b', 'r', 'x')"
        )
        with pytest.raises(Exception, match="UNIQUE"):
            db.conn.execute(
                "INSERT INTO emergency (activated_at, until, reason, activated_by) "
                "VALUES ('a', 'b', 'r', 'y')"
            )


def test_extend_positive_and_capped_at_1440_from_start(tmp_path: Path) -> None:
    with Db(tmp_path) as db:
        emergency.activate(db, "mom", 60, "trip", NOW)
        for bad in (0, -10):
            with pytest.raises(StateError, match="positive"):
                emergency.extend(db, "mom", bad, NOW)
        with pytest.raises(StateError, match="1440"):
            emergency.extend(db, "mom", 1381, NOW)
        row = emergency.extend(db, "mom", 1380, NOW + timedelta(minutes=5))
        assert row["until"] == "2026-11-21T21:30:00.000Z"


def test_expired_emergency_frees_the_slot(tmp_path: Path) -> None:
    with Db(tmp_path) as db:
        emergency.activate(db, "mom", 10, "short", NOW)
        later = NOW + timedelta(minutes=11)
        assert emergency.status(db, later) is None
        emergency.activate(db, "dad", 10, "again", later)
        assert emergency.status(db, later)["activated_by"] == "dad"  # type: ignore[index]


def test_off_records_who_and_history_is_newest_first(tmp_path: Path) -> None:
    with Db(tmp_path) as db:
        emergency.activate(db, "Mom", 10, "first", NOW)
        emergency.deactivate(db, "Dad ", NOW + timedelta(minutes=1))
        emergency.activate(db, "mom", 10, "second", NOW + timedelta(minutes=2))
        with pytest.raises(StateError):
            emergency.activate(db, "mom", 10, "third", NOW + timedelta(minutes=3))
        history = emergency.history(db)
    assert [h["reason"] for h in history] == ["second", "first"]
    assert history[1]["deactivated_by"] == "dad"
    assert audit_actions(tmp_path) == [
        ("mom", "emergency.on"),
        ("dad", "emergency.off"),
        ("mom", "emergency.on"),
    ]
