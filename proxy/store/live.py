"""Runtime state read once, for commands that evaluate outside the running proxy."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from pathlib import Path
from types import MappingProxyType

import aiosqlite

from governance.state import RuntimeState
from proxy.store import family
from proxy.store import state as store_state
from proxy.store.schema import connect, db_path


async def load_runtime_state(
    state_dir: str | Path, now: datetime, zone: tzinfo = UTC
) -> RuntimeState:
    """The state in force at ``now``; "today" is ``now``'s date in ``zone`` (the rules')."""
    connect(state_dir).close()
    today = now.astimezone(zone).date()
    async with aiosqlite.connect(db_path(state_dir)) as db:
        return RuntimeState(
            emergency=await store_state.load_emergency(db),
            allowlist=await store_state.load_allowlist(db, now),
            unlocks=MappingProxyType(await store_state.load_unlocks(db, now)),
            usage=MappingProxyType(await store_state.load_usage(db, today)),
            time_rules=await store_state.load_time_rules(db),
            pauses=await family.load_pauses(db, now),
            bonuses=MappingProxyType(await family.load_bonuses(db, today)),
        )
