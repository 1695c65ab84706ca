from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from governance.errors import ConsentRequired, StateError
from proxy.store import changes, consent, overrides
from proxy.store.db import Db
from tests.governance.helpers import snapshot
from tests.proxy.store.helpers import NOW

SNAP = snapshot("consent: {approvers: 2, actions: [unlock, emergency]}\n")
UNLOCK = {"device": "alice-laptop", "minutes": 30}


def request_unlock(db: Db, who: str = "mom") -> int:
    with pytest.raises(ConsentRequired) as info:
        changes.perform(db, SNAP, who, "unlock", UNLOCK, NOW)
    return info.value.request_id


def test_gated_change_waits_for_distinct_other_parents(tmp_path: Path) -> None:
    with Db(tmp_path) as db:
        cid = request_unlock(db)
        assert overrides.active_unlocks(db, NOW) == []
        with pytest.raises(StateError, match="cannot approve"):
            changes.approve(db, SNAP, "Mom ", cid, NOW)  # the requester, spelled differently
        changes.approve(db, SNAP, "dad", cid, NOW)
        with pytest.raises(StateError, match="already approved"):
            changes.approve(db, SNAP, " DAD", cid, NOW)
        assert overrides.active_unlocks(db, NOW) == []
        result = changes.approve(db, SNAP, "grandma", cid, NOW)
        assert result["status"] == "applied"
        assert len(overrides.active_unlocks(db, NOW)) == 1
        with pytest.raises(StateError, match="applied, not pending"):
            changes.approve(db, SNAP, "aunt", cid, NOW)
        assert len(overrides.active_unlocks(db, NOW)) == 1  # applied exactly once


def test_reject_and_expiry(tmp_path: Path) -> None:
    with Db(tmp_path) as db:
        cid = request_unlock(db)
        consent.reject(db, "dad", cid, "not tonight", NOW)
        with pytest.raises(StateError, match="rejected"):
            changes.approve(db, SNAP, "grandma", cid, NOW)
        old = request_unlock(db)
        later = NOW + timedelta(hours=25)
        assert consent.pending(db, later) == []
        with pytest.raises(StateError, match="expired"):
            changes.approve(db, SNAP, "dad", old, later)
        assert db.row("SELECT status FROM consent WHERE id = ?", (old,)) == {"status": "expired"}


def test_failed_application_rolls_back_the_approval(tmp_path: Path) -> None:
    with Db(tmp_path) as db:
        changes.apply(db, SNAP, "mom", "emergency", {"duration_minutes": 30, "reason": "a"}, NOW)
        with pytest.raises(ConsentRequired) as info:
            changes.perform(
                db, SNAP, "mom", "emergency", {"duration_minutes": 30, "reason": "b"}, NOW
            )
        cid = info.value.request_id
        changes.approve(db, SNAP, "dad", cid, NOW)
        with pytest.raises(StateError, match="already active"):
            changes.approve(db, SNAP, "grandma", cid, NOW)
        assert consent.pending(db, NOW)[0]["approvals"] == ["dad"]


def test_ungated_changes_apply_at_once_and_off_never_waits(tmp_path: Path) -> None:
    with Db(tmp_path) as db:
        changes.perform(db, SNAP, "mom", "allowlist", {"identifier": "10.0.0.1"}, NOW)
        changes.apply(db, SNAP, "mom", "emergency", {"duration_minutes": 5, "reason": "x"}, NOW)
        changes.perform(db, SNAP, "dad", "emergency", {"op": "off"}, NOW)
        actions = [r["action"] for r in db.rows("SELECT action FROM audit")]
    assert actions == ["allowlist.add", "emergency.on", "emergency.off"]
