"""Daily pruning of the decision log (``settings.retention_days``), in small batches.

Each batch is its own short transaction with a pause between, so the decision-log writer
and the proxy never wait on a long delete. With several gates on one database the day's
pruning is claimed in the database first (``meta.pruned_day``, moved forward by one
``UPDATE ... WHERE value < today``), so one gate prunes and the others skip the day.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from proxy.store.schema import connect
from proxy.store.sql.connection import Connection
from proxy.store.sql.target import Target
from proxy.store.state import iso

log = logging.getLogger(__name__)
BATCH = 5000
TABLES = ("decisions", "alerts")
CHECK_EVERY = 3600.0  # seconds between attempts to claim the day's pruning


async def prune(where: Target | str | Path, retention_days: int, now: datetime) -> int:
    """Delete rows older than ``retention_days``; the number deleted."""
    return await asyncio.to_thread(_prune, where, retention_days, now)


def _prune(where: Target | str | Path, retention_days: int, now: datetime) -> int:
    cutoff = iso(now - timedelta(days=retention_days))
    total = 0
    conn = connect(where)
    try:
        for table in TABLES:
            while True:
                with conn.transaction():
                    deleted = conn.execute(
                        f"DELETE FROM {table} WHERE id IN (SELECT id FROM "
                        f"{table} WHERE ts < ? LIMIT {BATCH})",
                        (cutoff,),
                    ).rowcount
                total += deleted
                if deleted < BATCH:
                    break
                time.sleep(0.05)
        with conn.transaction():
            conn.execute("DELETE FROM pin_failures WHERE ts < ?", (iso(now - timedelta(days=1)),))
    finally:
        conn.close()
    return total


def claim_day(conn: Connection, day: str) -> bool:
    """True for the one caller (of every gate) that claims ``day``'s pruning."""
    return claim(conn, "pruned_day", day)


def claim(conn: Connection, job: str, period: str) -> bool:
    """True for the one caller, of every gate sharing the database, that claims ``job`` for
    ``period`` (a string that sorts forward in time: a day, an ISO week). For whatever must
    happen once across gates: the day's pruning, a weekly report."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, '') ON CONFLICT (key) DO NOTHING", (job,)
        )
        won = conn.execute(
            "UPDATE meta SET value = ? WHERE key = ? AND value < ?", (period, job, period)
        ).rowcount
    return bool(won == 1)


async def prune_once_today(
    where: Target | str | Path, retention_days: int, now: datetime, day: str
) -> int | None:
    """Prune if no gate has pruned ``day`` yet; None when another gate has it."""

    def claim() -> bool:
        conn = connect(where)
        try:
            return claim_day(conn, day)
        finally:
            conn.close()

    if not await asyncio.to_thread(claim):
        return None
    return await prune(where, retention_days, now)


async def run_daily(
    where: Target | str | Path,
    retention_days: Callable[[], int],
    clock: Callable[[], datetime],
    first_delay: float = 60.0,
    local_day: Callable[[datetime], str] = lambda now: now.date().isoformat(),
) -> None:
    await asyncio.sleep(first_delay)
    while True:
        try:
            now = clock()
            deleted = await prune_once_today(where, retention_days(), now, local_day(now))
            if deleted:
                log.info(
                    "decision log: pruned %d rows older than %d days", deleted, retention_days()
                )
        except Exception as exc:  # noqa: BLE001 - try again later; the proxy goes on
            log.warning("decision log pruning failed: %s", exc)
        await asyncio.sleep(CHECK_EVERY)
