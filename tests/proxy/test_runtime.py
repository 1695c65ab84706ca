"""StateCache's once-a-second refresh: nothing to do costs no worker thread; any change by
another process (the CLI, another gate's API) is still seen at the next refresh."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from proxy.metrics import Metrics
from proxy.runtime import StateCache
from proxy.store import emergency
from proxy.store.db import Db
from proxy.store.writer import Writer

NOW = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)


@pytest.fixture
async def cache(tmp_path: Path) -> AsyncIterator[StateCache]:
    writer = Writer(tmp_path)
    state = StateCache(tmp_path, writer, lambda: ZoneInfo("UTC"), Metrics(), lambda: NOW)
    await state.start()
    yield state
    await state.stop()


@pytest.fixture
def threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the calls sent to a worker thread."""
    calls: list[str] = []
    real = asyncio.to_thread

    async def counted(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(func, "__name__", repr(func)))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", counted)
    return calls


async def test_an_unchanged_state_is_checked_without_a_worker_thread(
    cache: StateCache, threads: list[str]
) -> None:
    before = cache.state
    for _ in range(5):
        await cache.refresh()
    assert threads == []
    assert cache.state is before  # nothing rebuilt either


async def test_a_change_made_elsewhere_is_read_at_the_next_refresh(
    cache: StateCache, threads: list[str], tmp_path: Path
) -> None:
    assert cache.state.emergency is None
    with Db(tmp_path) as db:  # what `hearthgate emergency on` does, in another connection
        emergency.activate(db, "mom", 30, "school trip", NOW)
    await cache.refresh()
    assert threads == ["_with_connection"]
    assert cache.state.emergency is not None and cache.state.emergency.reason == "school trip"


async def test_state_that_is_due_is_read_in_a_worker_thread(
    cache: StateCache, threads: list[str]
) -> None:
    cache._caches["emergency"].clear()  # its 10 s are up
    await cache.refresh()
    assert threads == ["_with_connection"]


async def test_a_replaced_database_file_is_read_in_a_worker_thread(
    cache: StateCache, threads: list[str], tmp_path: Path
) -> None:
    database = cache.target.path
    assert database is not None
    database.rename(tmp_path / "old.db")
    Db(tmp_path).close()  # a new, empty database where the old one was
    await cache.refresh()
    assert threads == ["_with_connection"]


async def test_a_locked_database_never_holds_the_event_loop(
    cache: StateCache, threads: list[str], tmp_path: Path
) -> None:
    """A reader that cannot get its lock at once leaves the read to the worker thread, which
    may wait; the loop itself never waits on SQLite's busy timeout."""
    assert cache._db is not None
    cache._db.execute("PRAGMA busy_timeout=0")
    real_execute = cache._db.execute
    refusals = []

    def busy(sql: str, params: Any = ()) -> Any:
        if sql.startswith("SELECT value FROM meta"):
            refusals.append(sql)
            raise sqlite3.OperationalError("database is locked")
        return real_execute(sql, params)

    cache._db.execute = busy  # type: ignore[method-assign]
    try:
        assert not cache._unchanged_here()
    finally:
        cache._db.execute = real_execute  # type: ignore[method-assign]
    assert refusals
    assert real_execute("PRAGMA busy_timeout").fetchone()[0] == 5000  # put back


# --- the rules holder, compiling out of process ------------------------------------------


async def test_rules_held_from_the_cache_reload_keep_the_last_good_and_show_as_models(
    tmp_path: Path,
) -> None:
    from proxy.rules.cache import Record
    from proxy.runtime import RulesHolder

    rules, state = tmp_path / "rules.yaml", tmp_path / "state"
    state.mkdir()
    rules.write_text("version: 1\nsettings: {timezone: Europe/Berlin}\n")
    holder = RulesHolder(rules, Metrics(), state_dir=state)
    assert isinstance(holder.snapshot.rules, Record)  # the child compiled it into the cache
    first = holder.models()
    assert first.settings.timezone == "Europe/Berlin" and holder.models() is first

    rules.write_text("version: 1\nsettings: {timezone: Asia/Tokyo}\n")
    assert await holder.check()
    assert str(holder.snapshot.zone) == "Asia/Tokyo"
    assert holder.models().settings.timezone == "Asia/Tokyo"

    rules.write_text("version: 1\nsettings: {timezone: Mars/Olympus}\n")
    assert not await holder.check()
    assert str(holder.snapshot.zone) == "Asia/Tokyo"  # the last good rules stay in force
    assert holder.last_error is not None and "Mars/Olympus" in holder.last_error
    assert holder.models().settings.timezone == "Asia/Tokyo"
