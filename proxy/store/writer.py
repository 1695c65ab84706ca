"""The batched writer: hooks ``submit`` rows, one background task writes them.

A bounded queue sits between the request path and the disk. ``submit`` never blocks: when
``limit`` rows already wait in memory the row is dropped and counted. A batch is written in
one worker-thread call and one transaction — writes grouped by statement, decision rows as
multi-row INSERTs — so the busy event loop pays one round trip per batch, not one per row.
A lone row waits for company: ``linger`` seconds (50 ms by default), or, in the running
gate, until its one-second beat, when the usage counters are queued too; 500 rows waiting
end the wait at once. A steady trickle of requests then costs one transaction (and one
wake-up of the event loop) a second rather than one per request (a SIGKILL loses at most
that second). On
a write error (disk full, read-only file, locked database) the batch is kept and retried
with back-off; rows are lost only when the limit is reached meanwhile, and every loss is
counted. A database file deleted or replaced under the writer is noticed and recreated.

The same writer serves PostgreSQL (several gates, one log): decision rows go in with
``COPY``, other writes as ``executemany``, one transaction per batch as with SQLite. While
the server cannot be reached the batch waits and is retried, and the rows behind it wait in
the queue up to the limit; ``stats.last_ok`` says which, for ``/healthz`` and the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proxy.store.schema import connect
from proxy.store.sql.connection import Connection
from proxy.store.sql.target import Target, target_of

log = logging.getLogger(__name__)

QUEUE_LIMIT = 100_000  # rows waiting in memory; HEARTHGATE_LOG_QUEUE changes it
BATCH_LIMIT = 5_000
LINGER_SECONDS = 0.05  # a row waits at most this long for company before it is written
LINGER_BELOW = 500  # rows already waiting: enough company, write at once


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
_INTO = f"INSERT INTO decisions ({', '.join(DECISION_COLUMNS)}) VALUES "
_ROW = f"({', '.join('?' * len(DECISION_COLUMNS))})"
INSERT_DECISION = _INTO + _ROW


@dataclass
class WriterStats:
    written: int = 0  # decision rows
    dropped: int = 0
    errors: int = 0
    last_error: str | None = None
    last_ok: bool = True


def queue_limit(environ: Any = os.environ) -> int:
    """The memory bound from ``HEARTHGATE_LOG_QUEUE``: a whole number of rows, at least 1."""
    text = environ.get("HEARTHGATE_LOG_QUEUE", "").strip()
    if not text:
        return QUEUE_LIMIT
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if limit < 1:
        raise ValueError(
            f"HEARTHGATE_LOG_QUEUE must be a whole number of rows, at least 1 "
            f"(default {QUEUE_LIMIT}); got {text!r}"
        )
    return limit


@dataclass
class Writer:
    database: Target | str | Path  # a target, a database URL, or a state directory
    limit: int = field(default_factory=queue_limit)
    linger: float | Callable[[], float] = LINGER_SECONDS
    stats: WriterStats = field(default_factory=WriterStats)

    def __post_init__(self) -> None:
        if self.limit < 1:  # asyncio.Queue(0) would be unbounded; below 1 nothing fits
            raise ValueError(f"the decision log's queue limit must be at least 1, not {self.limit}")
        self.target = target_of(self.database)
        self._queue: asyncio.Queue[Write] = asyncio.Queue(self.limit)
        self._task: asyncio.Task[None] | None = None
        self._conn: Connection | None = None  # used only inside the worker thread
        self._inode: int | None = None
        self._held = 0  # rows taken from the queue and not yet written
        self._batch: list[Write] = []  # the batch being written or retried
        self._committed: list[Write] | None = None  # the last batch committed (worker thread)
        self._lock = threading.RLock()  # one thread at a time on the connection
        self._stopped = False  # set under the lock by stop(): nothing may open it again
        self._idle = asyncio.Event()
        self._idle.set()
        self._enough = asyncio.Event()  # LINGER_BELOW rows wait: a linger ends at once
        self._pool: ThreadPoolExecutor | None = None  # the one thread that writes
        self._flushing = 0  # flush() calls waiting

    @property
    def depth(self) -> int:
        """Rows waiting in memory: queued, or in the batch being written (a batch already
        committed, whose answer the loop reads at the next beat, waits no more)."""
        return self._queue.qsize() + self._in_hand()

    def _in_hand(self) -> int:
        return 0 if self._committed is self._batch else self._held

    def submit(self, write: Write) -> bool:
        """Queue a write without waiting; False (and counted) when ``limit`` rows already
        wait in memory (queued, or in a batch that is being written or retried)."""
        if self._queue.qsize() + self._in_hand() >= self.limit:
            self.stats.dropped += 1
            return False
        self._queue.put_nowait(write)
        self._idle.clear()
        if self._queue.qsize() >= LINGER_BELOW:
            self._enough.set()  # enough company: write now, not at the end of a linger
        return True

    def submit_decision(self, row: Sequence[Any]) -> bool:
        return self.submit(Write(INSERT_DECISION, row))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="hearthgate-writer")

    async def flush(self, timeout: float = 10) -> None:
        """Wait until everything queued so far is written (for shutdown and tests)."""
        if self._task is None:
            return
        self._flushing += 1  # no linger meanwhile: write now
        self._enough.set()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        finally:
            self._flushing -= 1

    async def stop(self, timeout: float = 5) -> None:
        """Write what is queued (waiting at most ``timeout``), then close. Rows still not
        written are counted as dropped."""
        try:
            await self.flush(timeout)
        except TimeoutError:
            pass
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.to_thread(self._close, final=True)  # after a write still in progress
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        lost = self._queue.qsize() + self._in_hand()
        if lost:
            self.stats.dropped += lost
            log.warning("decision log: %d rows not written at shutdown", lost)

    async def _linger(self) -> None:
        """Wait ``linger`` seconds (a number, or a function that says how long: the gate's
        one-second beat), or until ``LINGER_BELOW`` rows wait, whichever comes first."""
        delay = self.linger() if callable(self.linger) else self.linger
        self._enough.clear()
        if self._flushing or self._queue.qsize() >= LINGER_BELOW:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._enough.wait(), delay)

    async def _run(self) -> None:
        backoff = 0.2
        batch: list[Write] = []
        lingered = False  # the last write's answer was awaited until now: no second wait
        while True:
            if not batch:
                if self._queue.empty():
                    self._idle.set()
                    lingered = False
                batch = [await self._queue.get()]
                self._held = 1
                self._batch = batch
                if self.linger and not lingered and self._queue.qsize() < LINGER_BELOW:
                    # a quiet moment: let a few more rows arrive so one transaction
                    # carries them all instead of one thread hand-off and commit per request
                    await self._linger()
                while len(batch) < BATCH_LIMIT and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                self._held = len(batch)
            try:
                lingered = await self._write_in_thread(batch)
            except Exception as exc:  # disk full, read-only, locked: keep the batch, retry
                self._record_failure(exc)
                await asyncio.to_thread(self._close)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            self.stats.last_ok = True
            backoff = 0.2
            batch = []
            self._held = 0

    async def _write_in_thread(self, batch: list[Write]) -> bool:
        """Write *batch* in the writer's thread; True when the answer was read on the beat.

        In the running gate (``linger`` is the beat) the loop does not wait for the thread's
        answer: it goes back to sleep and reads the answer at the next beat, when it wakes
        anyway — the thread's finishing then wakes nobody (a sleeping box pays a few hundred
        microseconds of CPU for each wake-up). The rows that came meanwhile are written at
        once. ``flush`` and 500 waiting rows cut the wait short, as they cut a linger."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="hearthgate-writer")
        done = self._pool.submit(self._write, batch)
        if not callable(self.linger):
            await asyncio.wrap_future(done)
            return False
        await self._linger()
        if not done.done():  # a slow disk: wait for it
            await asyncio.wrap_future(done)
        done.result()  # raises what the write raised
        return True

    # --- in the worker thread ---------------------------------------------------------

    def _write(self, batch: list[Write]) -> None:
        """One transaction for the whole batch; counted as written when it commits (even if
        the writer is being stopped meanwhile)."""
        groups: dict[str, list[Sequence[Any]]] = {}
        for write in batch:  # statements are independent: grouping keeps each table's order
            groups.setdefault(write.sql, []).append(write.params)
        with self._lock:
            if self._stopped:  # stop() closed the log while this batch waited for a thread
                raise RuntimeError("the decision log is stopped")
            conn = self._connection()
            with conn.transaction():
                for sql, rows in groups.items():
                    if sql == INSERT_DECISION:
                        conn.copy_rows("decisions", DECISION_COLUMNS, rows)
                    else:
                        conn.executemany(sql, rows)
            self._committed = batch
            self.stats.written += len(groups.get(INSERT_DECISION, ()))
            self.stats.last_ok = True  # health says so at once, not when the loop reads it

    def _connection(self) -> Connection:
        path = self.target.path
        if self._conn is not None and path is not None and self._inode != _inode(path):
            # the file was deleted or replaced under us: writing on would go nowhere
            log.error("decision log: %s disappeared; creating a new one", path)
            self._close()
        if self._conn is not None and self._conn.closed:  # the server went away
            self._close()
        if self._conn is None:
            self._conn = connect(self.target)  # creates or migrates the schema
            self._inode = _inode(path) if path is not None else None
        return self._conn

    def _close(self, final: bool = False) -> None:
        with self._lock:
            self._stopped = self._stopped or final
            if self._conn is not None:
                self._conn.close()
                self._conn = None

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
