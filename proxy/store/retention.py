"""Daily pruning of the decision log (``settings.retention_days``), in small batches.

Each batch is its own short transaction with a pause between, so the decision-log writer
and the proxy never wait on a long delete.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import aiosqlite

from proxy.store.schema import PRAGMAS, db_path
from proxy.store.state import iso

log = logging.getLogger(__name__)
BATCH = 5000
TABLES = ("decisions", "alerts")


async def prune(state_dir: Path, retention_days: int, now: datetime) -> int:
    """Delete rows older than ``retention_days``; the number deleted."""
    cutoff = iso(now - timedelta(days=retention_days))
    total = 0
    async with aiosqlite.connect(db_path(state_dir), isolation_level=None) as db:
        for pragma in PRAGMAS:
            await db.execute(pragma)
        for table in TABLES:
            while True:
                cur = await db.execute(
                    f"DELETE FROM {table} WHERE id IN (SELECT id FROM "
                    f"{table} WHERE ts < ? LIMIT {BATCH})",
                    (cutoff,),
                )
                total += cur.rowcount
                if cur.rowcount < BATCH:
                    break
                await asyncio.sleep(0.05)
        await db.execute("DELETE FROM pin_failures WHERE ts < ?", (iso(now - timedelta(days=1)),))
    return total


async def run_daily(
    state_dir: Path,
    retention_days: Callable[[], int],
    clock: Callable[[], datetime],
    first_delay: float = 60.0,
) -> None:
    await asyncio.sleep(first_delay)
    while True:
        try:
            deleted = await prune(state_dir, retention_days(), clock())
            if deleted:
                log.info(
                    "decision log: pruned %d rows older than %d days", deleted, retention_days()
                )
        except Exception as exc:  # noqa: BLE001 - try again tomorrow; the proxy goes on
            log.warning("decision log pruning failed: %s", exc)
        await asyncio.sleep(24 * 3600)
