"""Runtime state read once, for commands that evaluate outside the running proxy."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

from governance.state import RuntimeState
from proxy.store import state as store_state
from proxy.store.schema import connect
from proxy.store.sql.target import Target


async def load_runtime_state(where: Target | str | Path, now: datetime) -> RuntimeState:
    return await asyncio.to_thread(read_runtime_state, where, now)


def read_runtime_state(where: Target | str | Path, now: datetime) -> RuntimeState:
    db = connect(where)
    try:
        return RuntimeState(
            emergency=store_state.load_emergency(db),
            allowlist=store_state.load_allowlist(db, now),
            unlocks=MappingProxyType(store_state.load_unlocks(db, now)),
            usage=MappingProxyType(store_state.load_usage(db, now.date())),
            time_rules=store_state.load_time_rules(db),
        )
    finally:
        db.close()
