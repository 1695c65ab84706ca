"""The batched writer: hooks ``submit`` rows, one background task writes them.

A bounded queue sits between the request path and the disk. ``submit`` never blocks: when
the queue is full the row is dropped and counted. On a write error (disk full, read-only
file, locked database) the batch is kept and retried with back-off, so rows are lost only
when the queue overflows meanwhile — and every loss is counted.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite

from hearthgate.store.schema import PRAGMAS, connect, db_path

log = logging.getLogger(__name__)

QUEUE_LIMIT = int(os.environ.get("HEARTHGATE_LOG_QUEUE", "100000"))
BATCH_LIMIT = 2_000


@dataclass(frozen=True, slots=True)
class Write:
    sql: str
    params: Sequence[Any]


DECISION_COLUMNS = (
    "ts",
    "request_id",
    "client_ip",
    "device",
    "person",
    "provider",
    "host",
    "method",
    "path",
    "endpoint",
    "model",
    "stage",
    "rule",
    "action",
    "allowed",
    "enforced",
    "reason",
    "duration_us",
    "status",
    "tokens_in",
    "tokens_out",
    "prompt_excerpt",
    "usage_source",
)
INSERT_DECISION = (
    f"INSERT INTO decisions ({', '.join(DECISION_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(DECISION_COLUMNS))})"
)


@dataclass
class WriterStats:
    written: int = 0  # decision rows
    dropped: int = 0
    errors: int = 0
    last_error: str | None = None
    last_ok: bool = True


@dataclass
class Writer:
    state_dir: Path
    limit: int = QUEUE_LIMIT
    stats: WriterStats = field(default_factory=WriterStats)

    def __post_init__(self) -> None:
        self._queue: asyncio.Queue[Write] = asyncio.Queue(self.limit)
        self._task: asyncio.Task[None] | None = None
        self._db: aiosqlite.Connection | None = None
        self._inode: int | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def submit(self, write: Write) -> bool:
        """Queue a write without waiting; False (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(write)
        except asyncio.QueueFull:
            self.stats.dropped += 1
            return False
        self._idle.clear()
        return True

    def submit_decision(self, row: Sequence[Any]) -> bool:
        return self.submit(Write(INSERT_DECISION, row))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="hearthgate-writer")

    async def flush(self, timeout: float = 10) -> None:
        """Wait until everything queued so far is written (for shutdown and tests)."""
        if self._task is None:
            return
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def stop(self) -> None:
        try:
            await self.flush(5)
        except TimeoutError:
            log.warning("decision log: %d rows not written at shutdown", self.depth)
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._db is not None:
            await self._db.close()

    async def _run(self) -> None:
        backoff = 0.2
        batch: list[Write] = []
        while True:
            if not batch:
                if self._queue.empty():
                    self._idle.set()
                batch = [await self._queue.get()]
                while len(batch) < BATCH_LIMIT and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            except Exception as exc:  # disk full, read-only, locked: keep the batch, retry
                self._record_failure(exc)
                await self._reset()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            self.stats.written += sum(1 for w in batch if w.sql == INSERT_DECISION)
            self.stats.last_ok = True
            backoff = 0.2
            batch = []

    async def _write(self, batch: list[Write]) -> None:
        db = await self._connection()
        await db.execute("BEGIN IMMEDIATE")
        try:
            for sql, group in _grouped(batch):
                await db.executemany(sql, group)
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise

    async def _connection(self) -> aiosqlite.Connection:
        if self._db is not None and self._inode != _inode(db_path(self.state_dir)):
            # the file was deleted or replaced under us: writing on would go nowhere
            log.error("decision log: %s disappeared; creating a new one", db_path(self.state_dir))
            await self._reset()
        if self._db is None:
            await asyncio.to_thread(lambda: connect(self.state_dir).close())  # schema
            db = await aiosqlite.connect(db_path(self.state_dir), isolation_level=None)
            for pragma in PRAGMAS:
                await db.execute(pragma)
            self._db = db
            self._inode = _inode(db_path(self.state_dir))
        return self._db

    async def _reset(self) -> None:
        if self._db is not None:
            try:
                await self._db.close()
            except Exception:  # noqa: BLE001 - the connection is being discarded anyway
                pass
            self._db = None

    def _record_failure(self, exc: Exception) -> None:
        self.stats.errors += 1
        message = f"{type(exc).__name__}: {exc}"
        if self.stats.last_ok or message != self.stats.last_error:
            log.error(
                "decision log: cannot write (%s); retrying, %d rows waiting", message, self.depth
            )
        self.stats.last_error = message
        self.stats.last_ok = False


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


def _grouped(batch: list[Write]) -> list[tuple[str, list[Sequence[Any]]]]:
    """Consecutive writes with the same SQL become one executemany, order kept."""
    groups: list[tuple[str, list[Sequence[Any]]]] = []
    for write in batch:
        if groups and groups[-1][0] == write.sql:
            groups[-1][1].append(write.params)
        else:
            groups.append((write.sql, [write.params]))
    return groups
