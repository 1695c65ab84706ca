"""Runtime state read once, for commands that evaluate outside the running proxy."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from pathlib import Path
from types import MappingProxyType

from governance.state import RuntimeState
from proxy.store import family
from proxy.store import state as store_state
from proxy.store.schema import connect
from proxy.store.sql.target import Target


async def load_runtime_state(
    where: Target | str | Path, now: datetime, zone: tzinfo = UTC
) -> RuntimeState:
    import asyncio  # loaded already in the proxy; a command calls read_runtime_state

    return await asyncio.to_thread(read_runtime_state, where, now, zone)


def read_runtime_state(
    where: Target | str | Path, now: datetime, zone: tzinfo = UTC
) -> RuntimeState:
    """The state in force at ``now``; "today" is ``now``'s date in ``zone`` (the rules')."""
    today = now.astimezone(zone).date()
    db = connect(where)
    try:
        return RuntimeState(
            emergency=store_state.load_emergency(db),
            allowlist=store_state.load_allowlist(db, now),
            unlocks=MappingProxyType(store_state.load_unlocks(db, now)),
            usage=MappingProxyType(store_state.load_usage(db, today)),
            time_rules=store_state.load_time_rules(db),
            pauses=family.load_pauses(db, now),
            bonuses=MappingProxyType(family.load_bonuses(db, today)),
        )
    finally:
        db.close()
