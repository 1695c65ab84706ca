from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from governance import pins
from governance.errors import StateError
from governance.snapshot import OverrideSettings
from proxy.store import overrides
from proxy.store.db import Db
from tests.proxy.store.helpers import NOW, blocked_request

SETTINGS = OverrideSettings(
    master_pin_hash=None, unlock_minutes=15, max_attempts=5, lockout_minutes=15
)


def test_pin_hash_is_salted_slow_and_verifies() -> None:
    a, b = pins.hash_pin("4711"), pins.hash_pin("4711")
    assert a != b and a.startswith("scrypt$16384$8$1$")
    assert pins.verify_pin("4711", a) and not pins.verify_pin("4712", a)
    assert not pins.verify_pin("4711", "scrypt$garbage") and not pins.verify_pin("4711", "")


def test_override_needs_a_blocked_request_and_at_most_60_minutes(tmp_path: Path) -> None:
    with Db(tmp_path) as db:
        with pytest.raises(StateError, match="no request"):
            overrides.create(db, "mom", "nope", NOW)
        blocked_request(db, "req1")
        with pytest.raises(StateError, match="1 to 60"):
            overrides.create(db, "mom", "req1", NOW, minutes=61)
        row, pin = overrides.create(db, "mom", "req1", NOW, minutes=60)
        assert len(pin) == 6 and pin.isdigit() and row["device"] == "alice-laptop"
        assert "pin_hash" not in row and pin not in str(db.rows("SELECT * FROM audit"))


def test_valid_pin_opens_an_unlock_window_once(tmp_path: Path) -> None:
    with Db(tmp_path) as db:
        blocked_request(db, "req1")
        _, pin = overrides.create(db, "mom", "req1", NOW, pin="2468")
        ok = overrides.redeem(db, "alice-laptop", "req1", pin, SETTINGS, NOW)
        assert ok.result == "ok" and ok.until == NOW + timedelta(minutes=15)
        [unlock] = overrides.active_unlocks(db, NOW)
        assert (unlock["device"], unlock["source"]) == ("alice-laptop", "pin")
        again = overrides.redeem(db, "alice-laptop", "req1", pin, SETTINGS, NOW)
        assert again.result == "expired"
        assert overrides.active_unlocks(db, NOW + timedelta(minutes=15)) == []


def test_pin_is_bound_to_the_blocked_device(tmp_path: Path) -> None:
    with Db(tmp_path) as db:
        blocked_request(db, "req1")
        _, pin = overrides.create(db, "mom", "req1", NOW)
        assert overrides.redeem(db, "bob-tablet", "req1", pin, SETTINGS, NOW).result == "wrong_pin"


def test_single_use_under_concurrent_redemption(tmp_path: Path) -> None:
    with Db(tmp_path) as db:
        blocked_request(db, "req1")
        _, pin = overrides.create(db, "mom", "req1", NOW)
    results: list[str] = []
    barrier = threading.Barrier(3)

    def redeem() -> None:
        with Db(tmp_path) as db:
            barrier.wait()
            results.append(overrides.redeem(db, "alice-laptop", "req1", pin, SETTINGS, NOW).result)

    threads = [threading.Thread(target=redeem) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["expired", "expired", "ok"]


def test_lockout_after_max_attempts(tmp_path: Path) -> None:
    with Db(tmp_path) as db:
        blocked_request(db, "req1")
        _, pin = overrides.create(db, "mom", "req1", NOW)
        for i in range(5):
            wrong = overrides.redeem(db, "alice-laptop", "req1", "0000", SETTINGS, NOW)
            assert wrong.result == "wrong_pin" and f"{4 - i} attempt" in wrong.message
        locked = overrides.redeem(db, "alice-laptop", "req1", pin, SETTINGS, NOW)
        assert locked.result == "locked_out"
        later = NOW + timedelta(minutes=16)
        blocked_request(db, "req2")
        _, pin2 = overrides.create(db, "mom", "req2", later)
        assert overrides.redeem(db, "alice-laptop", "req2", pin2, SETTINGS, later).result == "ok"


def test_concurrent_wrong_pins_are_checked_at_most_max_attempts_times(tmp_path: Path) -> None:
    """20 guesses at once (a script firing in parallel): the lockout test and the count are
    one transaction, so exactly ``max_attempts`` guesses are checked; the rest are refused
    unchecked, and a right PIN sent with them cannot slip in once the count is full."""
    with Db(tmp_path) as db:
        blocked_request(db, "req1")
        overrides.create(db, "mom", "req1", NOW, pin="2468")
    results: list[str] = []
    barrier = threading.Barrier(20)

    def guess(n: int) -> None:
        with Db(tmp_path) as db:
            barrier.wait()
            outcome = overrides.redeem(db, "alice-laptop", "req1", f"{1000 + n}", SETTINGS, NOW)
            results.append(outcome.result)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("wrong_pin") == SETTINGS.max_attempts
    assert results.count("locked_out") == 20 - SETTINGS.max_attempts
    with Db(tmp_path) as db:
        late = overrides.redeem(db, "alice-laptop", "req1", "2468", SETTINGS, NOW)
        assert late.result == "locked_out"
        assert overrides.redeem(db, "bob-tablet", None, "1234", SETTINGS, NOW).result == "wrong_pin"


def test_a_used_pin_is_not_counted_as_a_wrong_guess(tmp_path: Path) -> None:
    with Db(tmp_path) as db:
        blocked_request(db, "req1")
        _, pin = overrides.create(db, "mom", "req1", NOW, pin="2468")
        assert overrides.redeem(db, "alice-laptop", "req1", pin, SETTINGS, NOW).result == "ok"
        for _ in range(SETTINGS.max_attempts + 1):
            again = overrides.redeem(db, "alice-laptop", "req1", pin, SETTINGS, NOW)
            assert again.result == "expired"
        assert db.rows("SELECT * FROM pin_failures") == []


def test_master_pin_works_for_any_device(tmp_path: Path) -> None:
    settings = OverrideSettings(pins.hash_pin("98765"), 15, 5, 15)
    with Db(tmp_path) as db:
        assert overrides.redeem(db, "bob-tablet", None, "98765", settings, NOW).result == "ok"
        assert overrides.redeem(db, "bob-tablet", None, "98765", settings, NOW).result == "ok"


def test_second_override_after_first_used_or_expired(tmp_path: Path) -> None:
    with Db(tmp_path) as db:
        blocked_request(db, "req1")
        _, first = overrides.create(db, "mom", "req1", NOW, pin="1111")
        assert overrides.redeem(db, "alice-laptop", "req1", first, SETTINGS, NOW).result == "ok"
        _, second = overrides.create(db, "mom", "req1", NOW, pin="2222")
        assert overrides.redeem(db, "alice-laptop", "req1", second, SETTINGS, NOW).result == "ok"
        _, third = overrides.create(db, "mom", "req1", NOW, pin="3333", minutes=5)
        late = NOW + timedelta(minutes=6)
        assert (
            overrides.redeem(db, "alice-laptop", "req1", third, SETTINGS, late).result == "expired"
        )
        _, fourth = overrides.create(db, "mom", "req1", late, pin="4444")
        assert overrides.redeem(db, "alice-laptop", "req1", fourth, SETTINGS, late).result == "ok"
