"""Pauses and bonuses in the database: audited, consent-gated, read back by the proxy."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from governance.errors import ConsentRequired, StateError
from proxy.store import changes, family, overrides
from proxy.store.db import Db
from proxy.store.schema import connect
from tests.governance.helpers import BASE, snapshot
from tests.proxy.store.helpers import NOW, audit_actions

SNAP = snapshot()


def test_pause_by_name_ends_open_unlocks_and_resume_ends_it(tmp_path: Path) -> None:
    with Db(tmp_path) as db:
        overrides.unlock(db, "dad", "alice-laptop", 30, NOW)
        row = changes.perform(db, SNAP, "Mom", "pause", {"target": "alice", "minutes": 60}, NOW)
        assert (row["kind"], row["target"], row["unlocks_ended"]) == ("person", "alice", 1)
        assert row["until"] == "2026-11-20T22:30:00.000Z" and row["created_by"] == "mom"
        assert overrides.active_unlocks(db, NOW) == []
        assert [p["target"] for p in family.active_pauses(db, NOW)] == ["alice"]
        changes.perform(db, SNAP, "dad", "pause", {"op": "resume", "target": "alice"}, NOW)
        assert family.active_pauses(db, NOW) == []
        with pytest.raises(StateError, match="not paused"):
            family.resume(db, SNAP, "dad", "alice", NOW)
    assert audit_actions(tmp_path)[-2:] == [("mom", "pause"), ("dad", "resume")]


@pytest.mark.parametrize(
    ("target", "kind"),
    [("alice", "person"), ("bob-tablet", "device"), ("kids", "group"), ("ip:10.0.0.9", "device")],
)
def test_targets_are_people_devices_groups_or_unnamed_devices(target: str, kind: str) -> None:
    assert family.resolve_target(SNAP, target) == (kind, target)


def test_unknown_and_ambiguous_targets_are_refused() -> None:
    with pytest.raises(StateError, match="not a person, device or group"):
        family.resolve_target(SNAP, "charlie")
    twice = snapshot(base=BASE.replace("guests: {}}", "guests: {}, alice: {}}"))
    with pytest.raises(StateError, match="person:alice or group:alice"):
        family.resolve_target(twice, "alice")
    assert family.resolve_target(twice, "group:alice") == ("group", "alice")


def test_pause_until_and_its_limits(tmp_path: Path) -> None:
    with Db(tmp_path) as db:
        until = (NOW + timedelta(hours=2)).isoformat()
        row = changes.perform(db, SNAP, "mom", "pause", {"target": "kids", "until": until}, NOW)
        assert row["until"] == "2026-11-20T23:30:00.000Z"
        for bad in ({"minutes": 0}, {"minutes": 1441}, {"until": NOW.isoformat()}):
            with pytest.raises(StateError, match="1 to 1440"):
                changes.perform(db, SNAP, "mom", "pause", {"target": "kids", **bad}, NOW)


def test_bonuses_add_up_per_person_and_day(tmp_path: Path) -> None:
    with Db(tmp_path) as db:
        changes.perform(db, SNAP, "mom", "bonus", {"person": "alice", "minutes": 30}, NOW)
        changes.perform(db, SNAP, "dad", "bonus", {"person": "alice", "requests": 20}, NOW)
        today = date(2026, 11, 20)
        assert family.bonuses_on(db, today) == {
            "alice": {"minutes": 30, "requests": 20, "tokens": 0}
        }
        with pytest.raises(StateError, match="no person"):
            family.bonus(db, SNAP, "mom", "alice-laptop", today, NOW, {"minutes": 5})
        with pytest.raises(StateError, match="how much"):
            family.bonus(db, SNAP, "mom", "alice", today, NOW, {})
        with pytest.raises(StateError, match="0 to 720"):
            family.bonus(db, SNAP, "mom", "alice", today, NOW, {"minutes": -1})

    conn = connect(tmp_path)
    try:
        bonuses, pauses = family.load_bonuses(conn, today), family.load_pauses(conn, NOW)
    finally:
        conn.close()
    assert bonuses["alice"].minutes == 30 and bonuses["alice"].requests == 20
    assert pauses == ()


def test_pause_and_bonus_wait_for_consent_resume_never_does(tmp_path: Path) -> None:
    snap = snapshot("consent: {approvers: 1, actions: [pause, bonus]}\n")
    with Db(tmp_path) as db:
        with pytest.raises(ConsentRequired):
            changes.perform(db, snap, "mom", "pause", {"target": "alice", "minutes": 60}, NOW)
        assert family.active_pauses(db, NOW) == []
        with pytest.raises(ConsentRequired) as info:
            changes.perform(db, snap, "mom", "bonus", {"person": "alice", "minutes": 30}, NOW)
        changes.approve(db, snap, "dad", info.value.request_id, NOW)
        assert family.bonuses_on(db, date(2026, 11, 20))["alice"]["minutes"] == 30
        pending = db.rows("SELECT id, description FROM consent WHERE status = 'pending'")
        assert pending[0]["description"] == "pause alice for 60 minutes"
        changes.approve(db, snap, "dad", pending[0]["id"], NOW + timedelta(minutes=5))
        (paused,) = family.active_pauses(db, NOW + timedelta(minutes=5))
        assert paused["until"] == "2026-11-20T22:35:00.000Z"  # 60 minutes from the approval
        changes.perform(db, snap, "mom", "pause", {"op": "resume", "target": "alice"}, NOW)
        assert family.active_pauses(db, NOW) == []
