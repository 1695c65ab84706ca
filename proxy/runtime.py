"""The gate's live parts, shared by the addon and the admin API: rules, state, log, metrics.

``RulesHolder`` watches the rules file and swaps in a new snapshot when it changes (keeping
the last good one when it is broken). ``StateCache`` holds runtime state in memory, refreshed
from SQLite in the background: each kind of state has its TTL (emergency 10 s, allowlist
60 s, time rules 300 s), and a change of ``meta.state_version`` — written by the CLI or the
API with every change — refreshes everything within a second.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import aiosqlite
from cachetools import TTLCache

from governance.quotas import rolled
from governance.snapshot import Snapshot
from governance.state import EMPTY_STATE, RuntimeState, UsageCount
from proxy.metrics import Metrics
from proxy.rules.loader import RulesFileError, load_rules_file
from proxy.store import family
from proxy.store import state as store_state
from proxy.store.schema import PRAGMAS, connect, db_path
from proxy.store.writer import Write, Writer

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class RulesHolder:
    """The current rules snapshot and the file it came from."""

    def __init__(self, path: Path, metrics: Metrics, clock: Clock = utc_now) -> None:
        self.path = path
        self.metrics = metrics
        self.clock = clock
        self.snapshot: Snapshot = load_rules_file(path)  # RulesFileError at start-up: refuse
        self.loaded_at = clock()
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        self._signature = self._stat()
        self.listeners: list[Callable[[Snapshot], None]] = []
        metrics.reloads.labels("ok").inc()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    async def watch(self, interval: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.check()

    async def check(self) -> bool:
        """Reload if the file changed; True when a new snapshot was swapped in."""
        signature = self._stat()
        if signature == self._signature:
            return False
        self._signature = signature
        try:
            snapshot = await asyncio.to_thread(load_rules_file, self.path)
        except RulesFileError as exc:
            self.metrics.reloads.labels("error").inc()
            self.last_error, self.last_error_at = str(exc), self.clock()
            log.error("rules not reloaded, the previous rules stay in force:\n%s", exc)
            return False
        self.snapshot, self.loaded_at = snapshot, self.clock()
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
        state_dir: Path,
        writer: Writer,
        zone_of: Callable[[], Any],
        metrics: Metrics,
        clock: Clock = utc_now,
    ) -> None:
        self.state_dir, self.writer, self.metrics, self.clock = state_dir, writer, metrics, clock
        self._zone_of = zone_of
        self.state: RuntimeState = EMPTY_STATE
        self.usage: dict[str, UsageCount] = {}
        # (counter, local day) -> [requests, tokens in, tokens out, cost] not yet in SQLite
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
        self._db: aiosqlite.Connection | None = None
        self._inode: int | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        await self._reconnect_if_replaced()  # creates / migrates the database
        assert self._db is not None
        self.usage = await store_state.load_usage(self._db, self._today())
        today = self._today()
        for key, last in (await store_state.load_last_minutes(self._db, today)).items():
            self._minutes_seen[key] = (today, {last})  # that minute was counted before a restart
            if key in self.usage:
                self.usage[key] = replace(self.usage[key], last_minute=last)
        await self.refresh(force=True)

    async def stop(self) -> None:
        self.save_usage()
        if self._db is not None:
            await self._db.close()

    async def run(self, interval: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval)
            self.save_usage()
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 - keep serving from memory
                self.metrics.errors.labels("state").inc()
                log.warning("runtime state not refreshed: %s", exc)

    async def _reconnect_if_replaced(self) -> None:
        """A deleted or replaced database file: read the new one (created by the writer)."""
        try:
            inode = db_path(self.state_dir).stat().st_ino
        except OSError:
            inode = None
        if inode == self._inode and self._db is not None:
            return
        if self._db is not None:
            await self._db.close()
        await asyncio.to_thread(lambda: connect(self.state_dir).close())
        self._db = await aiosqlite.connect(db_path(self.state_dir), isolation_level=None)
        for pragma in PRAGMAS:
            await self._db.execute(pragma)
        self._inode = db_path(self.state_dir).stat().st_ino

    async def refresh(self, force: bool = False) -> None:
        """Reload whatever expired, or everything when another process changed the state."""
        await self._reconnect_if_replaced()
        assert self._db is not None
        async with self._lock:
            version = await store_state.state_version(self._db)
            changed = version != self._version
            force = force or changed
            self._version = version
            if changed:
                for listener in self.listeners:
                    listener()
            now = self.clock()
            loaders: dict[str, Callable[[], Awaitable[Any]]] = {
                "emergency": lambda: store_state.load_emergency(self._db),  # type: ignore[arg-type]
                "allowlist": lambda: store_state.load_allowlist(self._db, now),  # type: ignore[arg-type]
                "unlocks": lambda: store_state.load_unlocks(self._db, now),  # type: ignore[arg-type]
                "time_rules": lambda: store_state.load_time_rules(self._db),  # type: ignore[arg-type]
                "pauses": lambda: family.load_pauses(self._db, now),  # type: ignore[arg-type]
                "bonuses": lambda: family.load_bonuses(self._db, self._today()),  # type: ignore[arg-type]
            }
            for name, load in loaders.items():
                if force or name not in self._caches[name]:
                    self._caches[name][name] = await load()
            self.state = RuntimeState(
                emergency=self._cached("emergency", None),
                allowlist=self._cached("allowlist", ()),
                unlocks=MappingProxyType(self._cached("unlocks", {})),
                usage=MappingProxyType(self.usage),
                time_rules=self._cached("time_rules", ()),
                pauses=self._cached("pauses", ()),
                bonuses=MappingProxyType(self._cached("bonuses", {})),
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
        """Count one request's use in memory at once; SQLite gets it within a second."""
        tokens = tokens_in + tokens_out
        for key in keys:
            count = rolled(self.usage.get(key), local_day)
            self.usage[key] = replace(
                count,
                requests=count.requests + requests,
                tokens=count.tokens + tokens,
                cost=count.cost + cost,
                week_requests=count.week_requests + requests,
                week_tokens=count.week_tokens + tokens,
                week_cost=count.week_cost + cost,
            )
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
