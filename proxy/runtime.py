"""The gate's live parts, shared by the addon and the admin API: rules, state, log, metrics.

``RulesHolder`` watches the rules file and swaps in a new snapshot when it changes (keeping
the last good one when it is broken). ``StateCache`` holds runtime state in memory, refreshed
from the database (SQLite, or PostgreSQL shared by several gates) in the background: each
kind of state has its TTL (emergency 10 s, allowlist 60 s, time rules 300 s), and a change of
``meta.state_version`` — written by the CLI or the API of any gate with every change —
refreshes everything within a second. While the database cannot be read the state in memory
stays in force and ``database_ok`` says so.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from cachetools import TTLCache

from governance.quotas import added, rolled
from governance.snapshot import Snapshot
from governance.state import EMPTY_STATE, RuntimeState, UsageCount
from proxy.metrics import Metrics
from proxy.rules.offload import load_for_gate, models_of
from proxy.rules.problems import RulesFileError
from proxy.store import family
from proxy.store import state as store_state
from proxy.store.schema import connect
from proxy.store.sql.connection import SQLITE_BUSY_TIMEOUT_MS, Connection
from proxy.store.sql.target import Target, target_of
from proxy.store.writer import Write, Writer

if TYPE_CHECKING:
    from governance.schema import Rules

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def grid_delay(step: float = 1.0, at_least: float = 0.0) -> float:
    """Seconds from now to the next multiple of ``step`` on the event loop's clock that is at
    least ``at_least`` away. Background jobs that sleep this long wake together: an idle gate
    wakes once a second for all of them, not once for each (every wake-up costs a sleeping
    process a few hundred microseconds of CPU on a small box, whatever little it then does)."""
    now = asyncio.get_running_loop().time()
    return (math.floor((now + at_least) / step) + 1) * step - now


class RulesHolder:
    """The current rules snapshot and the file it came from.

    With ``state_dir`` the rules are compiled out of process and read from its cache
    (``rules/offload.py``): the gate itself never loads pydantic for them."""

    def __init__(
        self,
        path: Path,
        metrics: Metrics,
        clock: Clock = utc_now,
        state_dir: Path | None = None,
    ) -> None:
        self.path = path
        self.metrics = metrics
        self.clock = clock
        self.state_dir = state_dir
        # the file as it was before it is read: an edit made while it loads is reloaded
        self._signature = self._stat()
        # RulesFileError at start-up: refuse
        self.snapshot, self._raw = load_for_gate(path, state_dir)
        self._models: tuple[Snapshot, Rules] | None = None
        self.loaded_at = clock()
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        self.listeners: list[Callable[[Snapshot], None]] = []
        metrics.reloads.labels("ok").inc()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def models(self) -> Rules:
        """The current rules as the rules file's models, for the pages and the API that
        show them (validated again on first use when the snapshot came from the cache)."""
        if self._models is None or self._models[0] is not self.snapshot:
            snap = self.snapshot
            self._models = (snap, models_of(snap, self._raw, str(self.path)))
        return self._models[1]

    async def watch(self, interval: float = 1.0) -> None:
        while True:
            await asyncio.sleep(grid_delay(interval))
            await self.check()

    async def check(self) -> bool:
        """Reload if the file changed; True when a new snapshot was swapped in."""
        signature = self._stat()
        if signature == self._signature:
            return False
        self._signature = signature
        try:
            snapshot, raw = await asyncio.to_thread(load_for_gate, self.path, self.state_dir)
        except RulesFileError as exc:
            self.metrics.reloads.labels("error").inc()
            self.last_error, self.last_error_at = str(exc), self.clock()
            log.error("rules not reloaded, the previous rules stay in force:\n%s", exc)
            return False
        self.snapshot, self._raw, self.loaded_at = snapshot, raw, self.clock()
        self.last_error = None
        self.metrics.reloads.labels("ok").inc()
        log.info("rules reloaded from %s (version %s)", self.path, snapshot.version)
        for listener in self.listeners:
            listener(snapshot)
        return True


class StateCache:
    """Runtime state in memory; the request path reads ``.state`` and never awaits."""

    TTLS = {
        "emergency": 10.0,
        "allowlist": 60.0,
        "unlocks": 10.0,
        "time_rules": 300.0,
        "pauses": 10.0,
        "bonuses": 60.0,
    }

    def __init__(
        self,
        database: Target | str | Path,
        writer: Writer,
        zone_of: Callable[[], Any],
        metrics: Metrics,
        clock: Clock = utc_now,
    ) -> None:
        self.target = target_of(database)
        self.writer, self.metrics, self.clock = writer, metrics, clock
        self._zone_of = zone_of
        self.state: RuntimeState = EMPTY_STATE
        self.usage: dict[str, UsageCount] = {}
        # (counter, local day) -> [requests, tokens in, tokens out, cost] not yet in the database
        self._unsaved: dict[tuple[str, str], list[float]] = {}
        # counter -> (local day, the minutes since the epoch already counted that day)
        self._minutes_seen: dict[str, tuple[date, set[int]]] = {}
        self._unsaved_minutes: dict[tuple[str, str], list[int]] = {}  # -> [minutes, last]
        self._caches = {
            k: TTLCache[str, Any](maxsize=1, ttl=v, timer=time.monotonic)
            for k, v in self.TTLS.items()
        }
        self._version: str | None = None
        self.listeners: list[Callable[[], None]] = []  # told when another process changed state
        self._db: Connection | None = None  # worker threads, and _unchanged_here; one at a time
        self._inode: int | None = None
        self._lock = asyncio.Lock()
        self.database_ok = True
        self.database_error: str | None = None

    @property
    def state_dir(self) -> Path | None:
        """The SQLite file's directory (None with PostgreSQL)."""
        return self.target.path.parent if self.target.path is not None else None

    async def start(self) -> None:
        self.usage = await self._call(lambda db: store_state.load_usage(db, self._today()))
        today = self._today()
        for key, count in self.usage.items():
            if count.last_minute:  # that minute was counted before a restart
                self._minutes_seen[key] = (today, {count.last_minute})
        await self.refresh(force=True)

    async def stop(self) -> None:
        self.save_usage()
        if self._db is not None:
            await asyncio.to_thread(self._db.close)
            self._db = None

    async def run(self, interval: float = 1.0) -> None:
        while True:
            await asyncio.sleep(grid_delay(interval))
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 - keep serving from memory
                self.metrics.errors.labels("state").inc()
                log.warning("runtime state not refreshed: %s", exc)
            self.save_usage()

    async def _call(self, work: Callable[[Connection], Any]) -> Any:
        """Run ``work(connection)`` in a worker thread; a failure marks the database down."""
        try:
            result = await asyncio.to_thread(self._with_connection, work)
        except Exception as exc:
            if self.database_ok:
                log.error("database %s cannot be read: %s", self.target.display, exc)
            self.database_ok, self.database_error = False, f"{type(exc).__name__}: {exc}"
            raise
        if not self.database_ok:
            log.info("database %s can be read again", self.target.display)
        self.database_ok, self.database_error = True, None
        return result

    def _with_connection(self, work: Callable[[Connection], Any]) -> Any:
        path = self.target.path
        inode = _inode(path) if path is not None else None
        if self._db is not None and (inode != self._inode or self._db.closed):
            # a deleted or replaced file (read the new one, created by the writer), or a
            # server that went away
            self._db.close()
            self._db = None
        if self._db is None:
            self._db = connect(self.target)  # creates / migrates the database
            self._inode = _inode(path) if path is not None else None
        try:
            return work(self._db)
        except Exception:
            self._db.close()
            self._db = None
            raise

    async def refresh(self, force: bool = False) -> None:
        """Reload whatever expired, or everything when another process changed the state."""
        async with self._lock:
            now = self.clock()
            expired = {name for name in self.TTLS if force or name not in self._caches[name]}
            if not expired and self._unchanged_here():
                return
            today = self._today() if self.target.shared else None
            version, loaded, usage = await self._call(
                lambda db: self._read(db, expired, now, today)
            )
            changed = version != self._version
            self._version = version
            for name, value in loaded.items():
                self._caches[name][name] = value
            if usage is not None:
                self._merge_shared_usage(usage)
            if changed:
                for listener in self.listeners:
                    listener()
            self.state = RuntimeState(
                emergency=self._cached("emergency", None),
                allowlist=self._cached("allowlist", ()),
                unlocks=MappingProxyType(self._cached("unlocks", {})),
                usage=MappingProxyType(self.usage),
                time_rules=self._cached("time_rules", ()),
                pauses=self._cached("pauses", ()),
                bonuses=MappingProxyType(self._cached("bonuses", {})),
            )

    def _unchanged_here(self) -> bool:
        """True when a local SQLite file's state version is the one in memory, read on the
        event loop: one indexed row of a WAL database, which no writer blocks (about 10 µs,
        where a worker thread's round trip costs over 100 µs of CPU every second). Any doubt
        (another backend, no connection yet, a replaced file, a lock) says False, and the
        worker thread reads as before."""
        path, db = self.target.path, self._db
        if path is None or db is None or db.closed:  # no path: PostgreSQL
            return False
        if _inode(path) != self._inode:
            return False
        try:
            db.execute("PRAGMA busy_timeout=0")  # never wait on the loop
            try:
                return store_state.state_version(db) == self._version
            finally:
                db.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        except Exception:  # noqa: BLE001 - the worker thread's read says what is wrong
            return False

    def _read(
        self, db: Connection, expired: set[str], now: datetime, today: date | None
    ) -> tuple[str, dict[str, Any], dict[str, UsageCount] | None]:
        """In a worker thread: the state version and every kind of state that is due."""
        version = store_state.state_version(db)
        if version != self._version:
            expired = set(self.TTLS)
        loaders: dict[str, Callable[[], Any]] = {
            "emergency": lambda: store_state.load_emergency(db),
            "allowlist": lambda: store_state.load_allowlist(db, now),
            "unlocks": lambda: store_state.load_unlocks(db, now),
            "time_rules": lambda: store_state.load_time_rules(db),
            "pauses": lambda: family.load_pauses(db, now),
            "bonuses": lambda: family.load_bonuses(db, self._today()),
        }
        loaded = {name: load() for name, load in loaders.items() if name in expired}
        # other gates count too: with a shared database the counters are read every time
        usage = store_state.load_usage(db, today) if today is not None else None
        return version, loaded, usage

    def _merge_shared_usage(self, stored: dict[str, UsageCount]) -> None:
        """The database's counters (every gate's), plus what this gate has not saved yet."""
        merged = dict(stored)
        for (key, day), (requests, tokens_in, tokens_out, cost) in self._unsaved.items():
            tokens = int(tokens_in + tokens_out)
            day_of = date.fromisoformat(day)
            merged[key] = added(merged.get(key), day_of, int(requests), tokens, cost)
        for (key, day), (minutes, last) in self._unsaved_minutes.items():
            count = rolled(merged.get(key), date.fromisoformat(day))
            merged[key] = replace(
                count,
                minutes=count.minutes + minutes,
                week_minutes=count.week_minutes + minutes,
                last_minute=max(count.last_minute, last),
            )
        self.usage = merged

    def counted_elsewhere(self, counts: dict[str, int], day: date) -> RuntimeState:
        """Take the database's request counters (this request included) into memory; the
        state as it stood just before this request, for checking it against the limits."""
        before: dict[str, UsageCount] = dict(self.usage)
        for key, total in counts.items():
            count = rolled(self.usage.get(key), day)
            week_others = count.week_requests - count.requests
            self.usage[key] = replace(count, requests=total, week_requests=week_others + total)
            before[key] = replace(count, requests=total - 1, week_requests=week_others + total - 1)
        self.state = replace(self.state, usage=MappingProxyType(self.usage))
        return replace(self.state, usage=MappingProxyType(before))

    def given_back(self, keys: tuple[str, ...], day: date) -> None:
        for key in keys:
            count = rolled(self.usage.get(key), day)
            self.usage[key] = replace(
                count,
                requests=max(0, count.requests - 1),
                week_requests=max(0, count.week_requests - 1),
            )

    def _cached(self, name: str, default: Any) -> Any:
        return self._caches[name].get(name, default)

    def _today(self) -> date:
        return self.clock().astimezone(self._zone_of()).date()

    def add_usage(
        self,
        keys: tuple[str, ...],
        local_day: date,
        requests: int,
        tokens_in: int,
        tokens_out: int,
        cost: float = 0.0,
    ) -> None:
        """Count use in memory at once (negative to take a reservation back); SQLite gets it
        within a second."""
        tokens = tokens_in + tokens_out
        for key in keys:
            self.usage[key] = added(self.usage.get(key), local_day, requests, tokens, cost)
            pending = self._unsaved.setdefault((key, local_day.isoformat()), [0, 0, 0, 0.0])
            pending[0] += requests
            pending[1] += tokens_in
            pending[2] += tokens_out
            pending[3] += cost

    def add_minutes(self, keys: tuple[str, ...], first: int, last: int, local_day: date) -> None:
        """Count the minutes ``first``..``last`` (minutes since the epoch) as minutes of use,
        each at most once per counter, however many requests or streams share it."""
        first = max(first, last - 1440)  # a day holds no more
        for key in keys:
            seen = self._minutes_seen.get(key)
            if seen is None or seen[0] != local_day:
                seen = self._minutes_seen[key] = (local_day, set())
            new = [m for m in range(first, last + 1) if m not in seen[1]]
            if not new:
                continue
            seen[1].update(new)
            count = rolled(self.usage.get(key), local_day)
            self.usage[key] = replace(
                count,
                minutes=count.minutes + len(new),
                week_minutes=count.week_minutes + len(new),
                last_minute=max(count.last_minute, last),
            )
            pending = self._unsaved_minutes.setdefault((key, local_day.isoformat()), [0, 0])
            pending[0] += len(new)
            pending[1] = max(pending[1], last)

    def save_usage(self) -> None:
        """Queue the counters changed since the last call: one upsert per counter (called
        every second, and at shutdown), instead of two writes per request."""
        unsaved, self._unsaved = self._unsaved, {}
        for (key, day), (requests, tokens_in, tokens_out, cost) in unsaved.items():
            self.writer.submit(
                Write(store_state.UPSERT_USAGE, (key, day, requests, tokens_in, tokens_out, cost))
            )
        minutes, self._unsaved_minutes = self._unsaved_minutes, {}
        for (key, day), (count, last) in minutes.items():
            self.writer.submit(Write(store_state.UPSERT_MINUTES, (key, day, count, last)))


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


class SharedCounter:
    """Quota reservations in a database several gates share (PostgreSQL).

    Each gate's memory alone would let every gate spend the whole quota, so with a shared
    database an allowed request that a quota may count is first counted there: one atomic
    statement returns the counter's new value, which is checked against the limits. One
    connection, one statement at a time, in a worker thread.
    """

    def __init__(self, database: Target | str | Path) -> None:
        self.target = target_of(database)
        self._conn: Connection | None = None
        self._lock = threading.Lock()

    def reserve(self, keys: tuple[str, ...], day: str) -> dict[str, int]:
        counts: dict[str, int] = self._run(lambda db: store_state.reserve_requests(db, keys, day))
        return counts

    def release(self, keys: tuple[str, ...], day: str) -> None:
        self._run(lambda db: store_state.release_requests(db, keys, day))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _run(self, work: Callable[[Connection], Any]) -> Any:
        with self._lock:
            if self._conn is not None and self._conn.closed:
                self._conn = None
            if self._conn is None:
                self._conn = connect(self.target)
            try:
                return work(self._conn)
            except Exception:
                self._conn.close()
                self._conn = None
                raise
