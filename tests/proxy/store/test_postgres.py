"""The store on a real PostgreSQL server: the SQLite tests again, and what only several
gates (several connections, several processes) can do to it."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest

from governance.errors import StateError
from proxy.store import emergency, overrides, retention, schema
from proxy.store.db import Db
from proxy.store.sql import connection
from proxy.store.sql.target import parse_url
from proxy.store.state import UPSERT_USAGE
from proxy.store.writer import Write, Writer
from tests.proxy.store import (
    test_allowlist,
    test_consent,
    test_emergency,
    test_overrides,
    test_queries,
    test_retention,
)
from tests.proxy.store.helpers import NOW, blocked_request
from tests.proxy.store.test_overrides import SETTINGS

pytestmark = pytest.mark.postgres

# --- the SQLite store tests, run again with a PostgreSQL URL where they had a directory ----

_MODULES: tuple[ModuleType, ...] = (
    test_allowlist,
    test_consent,
    test_emergency,
    test_overrides,
    test_queries,
    test_retention,
)
_ALLOWED = {"tmp_path", "monkeypatch"}
# asserts SQLite's own words; test_one_active_emergency_when_eight_connections_race is the
# PostgreSQL twin
_SQLITE_WORDING = {"test_unique_index_is_the_guard"}


def _portable(fn: Callable[..., Any]) -> bool:
    """Tests that go through the store only (not sqlite3 or the file itself)."""
    source = inspect.getsource(fn)
    params = set(inspect.signature(fn).parameters)
    marks = getattr(fn, "pytestmark", [])
    return (
        params <= _ALLOWED
        and "tmp_path" in params
        and "sqlite3" not in source
        and (".db" not in source)
        and not marks
    )


CASES = [
    pytest.param(fn, id=f"{module.__name__.rsplit('.', 1)[-1]}::{name}")
    for module in _MODULES
    for name, fn in sorted(vars(module).items())
    if name.startswith("test_") and callable(fn) and _portable(fn) and name not in _SQLITE_WORDING
]


@pytest.mark.parametrize("case", CASES)
def test_the_sqlite_store_test_passes_on_postgres(
    case: Callable[..., Any], pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kwargs: dict[str, Any] = {"tmp_path": pg_url}
    if "monkeypatch" in inspect.signature(case).parameters:
        kwargs["monkeypatch"] = monkeypatch
    result = case(**kwargs)
    if inspect.iscoroutine(result):
        asyncio.run(result)


def test_the_portable_cases_are_most_of_them() -> None:
    assert len(CASES) >= 20


# --- several connections at once, as several gates are --------------------------------


def _race(count: int, work: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test counts
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_one_active_emergency_when_eight_connections_race(pg_url: str) -> None:
    def activate(i: int) -> Any:
        with Db(pg_url) as db:
            return emergency.activate(db, f"parent{i}", 30, f"race {i}", NOW)

    results = _race(8, activate)
    won = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, StateError)]
    assert len(won) == 1 and len(refused) == 7, results
    with Db(pg_url) as db:
        assert db.row("SELECT count(*) AS n FROM emergency WHERE active = 1") == {"n": 1}


def test_a_pin_is_used_once_when_six_connections_present_it_at_once(pg_url: str) -> None:
    with Db(pg_url) as db:
        blocked_request(db, "req1")
        _, pin = overrides.create(db, "mom", "req1", NOW, pin="2468")

    def redeem(_i: int) -> str:
        with Db(pg_url) as db:
            return overrides.redeem(db, "alice-laptop", "req1", pin, SETTINGS, NOW).result

    results = _race(6, redeem)
    assert sorted(results) == ["expired"] * 5 + ["ok"], results


def test_wrong_pins_from_several_connections_share_one_lockout(pg_url: str) -> None:
    with Db(pg_url) as db:
        blocked_request(db, "req1")
        overrides.create(db, "mom", "req1", NOW, pin="2468")
    for i in range(SETTINGS.max_attempts):  # alternate "gates": a new connection each time
        with Db(pg_url) as db:
            assert overrides.redeem(
                db, "alice-laptop", "req1", f"00{i}0", SETTINGS, NOW
            ).result == ("wrong_pin")
    with Db(pg_url) as db:
        out = overrides.redeem(db, "alice-laptop", "req1", "2468", SETTINGS, NOW)
    assert out.result == "locked_out"


def test_migrations_run_once_when_gates_start_together(pg_url: str) -> None:
    target = parse_url(pg_url)

    def start(_i: int) -> tuple[int, int]:
        conn = connection.connect(target)
        try:
            return schema.migrate(conn)
        finally:
            conn.close()

    results = _race(5, start)
    assert (
        sorted(results)
        == [(0, len(schema.MIGRATIONS))] + [(len(schema.MIGRATIONS), len(schema.MIGRATIONS))] * 4
    ), results
    with Db(pg_url) as db:
        assert db.rows("SELECT version FROM hearthgate_schema") == [
            {"version": i + 1} for i in range(len(schema.MIGRATIONS))
        ]


def test_the_days_pruning_is_claimed_by_one_gate(pg_url: str) -> None:
    with Db(pg_url):
        pass
    claims = _race(4, lambda _i: _claim(pg_url, "2026-11-20"))
    assert sorted(claims) == [False, False, False, True]
    assert _claim(pg_url, "2026-11-20") is False and _claim(pg_url, "2026-11-21") is True


def _claim(url: str, day: str) -> bool:
    conn = schema.connect(url)
    try:
        return retention.claim_day(conn, day)
    finally:
        conn.close()


async def test_a_burst_goes_to_postgres_with_copy_and_none_is_lost(pg_url: str) -> None:
    writer = Writer(pg_url, limit=50_000)
    writer.start()
    row = (
        "2026-11-20T21:30:00.000Z",
        "r",
        "10.0.0.1",
        "d",
        None,
        "openai",
        "api.openai.com",
        "POST",
        "/v1/chat/completions",
        "chat",
        "gpt-4o-mini",
        "default",
        None,
        "allow",
        1,
        1,
        "ok",
        12,
        200,
        5,
        7,
        None,
        "reported",
    )
    for _ in range(20_000):
        assert writer.submit_decision(row)
    writer.submit(Write(UPSERT_USAGE, ("person:alice", "2026-11-20", 1, 5, 7, 0.5)))
    writer.submit(Write(UPSERT_USAGE, ("person:alice", "2026-11-20", 1, 1, 1, 0.25)))
    await writer.flush(30)
    await writer.stop()
    assert (writer.stats.written, writer.stats.dropped) == (20_000, 0)
    with Db(pg_url) as db:
        assert db.row("SELECT count(*) AS n FROM decisions") == {"n": 20_000}
        assert db.row("SELECT requests, tokens_in, cost FROM usage") == {
            "requests": 2,
            "tokens_in": 6,
            "cost": 0.75,
        }


def test_statistics_and_decimal_free_numbers(pg_url: str) -> None:
    from proxy.store import queries

    with Db(pg_url) as db:
        blocked_request(db, "a")
        blocked_request(db, "b", device="bob-tablet")
        stats = queries.statistics(db, NOW - timedelta(days=1))
    assert stats["total"] == 2 and stats["blocked"] == 2 and type(stats["allowed"]) is int
    assert stats["by_device"]["bob-tablet"] == {"total": 1, "allowed": 0, "blocked": 1}


def test_wrong_pins_sent_at_once_to_several_gates_are_checked_max_attempts_times(
    pg_url: str,
) -> None:
    with Db(pg_url) as db:
        blocked_request(db, "req1")
        overrides.create(db, "mom", "req1", NOW, pin="2468")

    def guess(i: int) -> str:
        with Db(pg_url) as db:
            return overrides.redeem(db, "alice-laptop", "req1", f"1{i:03d}", SETTINGS, NOW).result

    results = _race(8, guess)
    assert sorted(results) == ["locked_out"] * 3 + ["wrong_pin"] * 5, results
    with Db(pg_url) as db:
        assert db.row("SELECT count(*) AS n FROM pin_failures") == {"n": SETTINGS.max_attempts}
