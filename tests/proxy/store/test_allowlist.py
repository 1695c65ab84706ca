from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from governance.errors import StateError
from proxy.store import allowlist
from proxy.store.db import Db
from tests.proxy.store.helpers import NOW


@pytest.mark.parametrize(
    ("raw", "stored", "kind"),
    [
        ("AA-BB-CC-DD-EE-01", "aa:bb:cc:dd:ee:01", "mac"),
        ("aabb.ccdd.ee01", "aa:bb:cc:dd:ee:01", "mac"),
        ("192.168.1.77", "192.168.1.77/32", "cidr"),
        ("192.168.10.0/24", "192.168.10.0/24", "cidr"),
        ("2001:DB8:0::1", "2001:db8::1/128", "cidr"),
        ("alice-laptop", "alice-laptop", "device"),
    ],
)
def test_identifiers_are_normalised_before_storing(
    tmp_path: Path, raw: str, stored: str, kind: str
) -> None:
    with Db(tmp_path) as db:
        row = allowlist.add(db, "mom", raw, None, NOW, devices=frozenset({"alice-laptop"}))
        assert (row["identifier"], row["entry_type"]) == (stored, kind)
        # lookup normalises too: another spelling finds the same entry
        other = {"mac": "AABB.CCDD.EE01", "cidr": stored.upper()}.get(kind, raw)
        assert allowlist.find(db, other, NOW, frozenset({"alice-laptop"})) is not None


def test_expired_entry_stops_matching_and_readding_works(tmp_path: Path) -> None:
    with Db(tmp_path) as db:
        allowlist.add(db, "mom", "10.0.0.5", None, NOW, expires_at=NOW + timedelta(hours=1))
        assert allowlist.find(db, "10.0.0.5", NOW + timedelta(minutes=59)) is not None
        assert allowlist.find(db, "10.0.0.5", NOW + timedelta(hours=1)) is None
        allowlist.add(db, "mom", "10.0.0.5", None, NOW + timedelta(hours=2))
        allowlist.remove(db, "dad", "10.0.0.5", NOW + timedelta(hours=3))
        assert allowlist.entries(db, NOW + timedelta(hours=3)) == []
        allowlist.add(db, "mom", "10.0.0.5", None, NOW + timedelta(hours=4), reason="again")
        assert [e["reason"] for e in allowlist.entries(db, NOW + timedelta(hours=4))] == ["again"]


def test_unknown_identifier_and_past_expiry_are_refused(tmp_path: Path) -> None:
    with Db(tmp_path) as db:
        with pytest.raises(StateError, match="not a device"):
            allowlist.add(db, "mom", "grandmas-ipad", None, NOW)
        with pytest.raises(StateError, match="past"):
            allowlist.add(db, "mom", "10.0.0.1", None, NOW, expires_at=NOW)
        with pytest.raises(StateError, match="not on the runtime allowlist"):
            allowlist.remove(db, "mom", "10.0.0.9", NOW)
