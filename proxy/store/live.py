"""Runtime state read once, for commands that evaluate outside the running proxy."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from types import MappingProxyType

import aiosqlite

from governance.state import RuntimeState
from proxy.store import state as store_state
from proxy.store.schema import connect, db_path


async def load_runtime_state(state_dir: str | Path, now: datetime) -> RuntimeState:
    connect(state_dir).close()
    async with aiosqlite.connect(db_path(state_dir)) as db:
        return RuntimeState(
            emergency=await store_state.load_emergency(db),
            allowlist=await store_state.load_allowlist(db, now),
            unlocks=MappingProxyType(await store_state.load_unlocks(db, now)),
            usage=MappingProxyType(await store_state.load_usage(db, now.date())),
            time_rules=await store_state.load_time_rules(db),
        )
