"""The batched writer against a real SQLite file: written, dropped, retried."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from proxy.store.schema import connect
from proxy.store.writer import DECISION_COLUMNS, Write, Writer, queue_limit


def row(i: int) -> tuple[object, ...]:
    values: dict[str, object] = {c: None for c in DECISION_COLUMNS}
    values.update(
        ts="2026-11-22T04:00:00.000Z",
        request_id=f"r{i}",
        stage="default",
        action="allow",
        allowed=1,
        enforced=1,
    )
    return tuple(values[c] for c in DECISION_COLUMNS)


def count(state: Path) -> int:
    with sqlite3.connect(state / "hearthgate.db") as conn:
        return int(conn.execute("SELECT count(*) FROM decisions").fetchone()[0])


async def test_rows_are_written_in_batches(tmp_path: Path) -> None:
    connect(tmp_path).close()
    writer = Writer(tmp_path)
    writer.start()
    for i in range(5000):
        assert writer.submit_decision(row(i))
    await writer.flush()
    assert count(tmp_path) == 5000 and writer.stats.written == 5000
    await writer.stop()


async def test_a_trickle_of_rows_shares_transactions(tmp_path: Path) -> None:
    """One row every 5 ms (a busy household) is written in a few batches, not row by row."""
    connect(tmp_path).close()
    writer = Writer(tmp_path)
    batches: list[int] = []
    write = writer._write

    def counting(batch: list) -> int:  # type: ignore[type-arg]
        batches.append(len(batch))
        return write(batch)

    writer._write = counting  # type: ignore[method-assign]
    writer.start()
    for i in range(40):
        writer.submit_decision(row(i))
        await asyncio.sleep(0.005)
    await writer.flush()
    assert count(tmp_path) == 40
    assert len(batches) <= 15, batches  # row by row would be 40
    await writer.stop()


async def test_full_queue_drops_and_counts(tmp_path: Path) -> None:
    connect(tmp_path).close()
    writer = Writer(tmp_path, limit=10)
    accepted = sum(writer.submit_decision(row(i)) for i in range(25))
    assert accepted == 10 and writer.stats.dropped == 15
    writer.start()
    await writer.flush()
    assert count(tmp_path) == 10
    await writer.stop()


async def test_rows_in_a_batch_being_retried_count_against_the_limit(tmp_path: Path) -> None:
    connect(tmp_path).close()
    blocker = sqlite3.connect(tmp_path / "hearthgate.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # the writer's batch waits on this lock
    writer = Writer(tmp_path, limit=10)
    writer.start()
    for i in range(5):
        assert writer.submit_decision(row(i))
    await asyncio.sleep(0.3)  # the five are taken as one batch, now stuck
    accepted = sum(writer.submit_decision(row(100 + i)) for i in range(20))
    assert accepted == 5 and writer.stats.dropped == 15 and writer.depth == 10
    blocker.execute("COMMIT")
    blocker.close()
    await writer.flush(20)
    assert count(tmp_path) == 10 and writer.depth == 0
    await writer.stop()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
async def test_read_only_database_is_retried_until_writable(tmp_path: Path) -> None:
    connect(tmp_path).close()
    db = tmp_path / "hearthgate.db"
    db.chmod(0o444)
    writer = Writer(tmp_path)
    writer.start()
    writer.submit_decision(row(1))
    await asyncio.sleep(0.5)
    assert writer.stats.errors >= 1 and not writer.stats.last_ok
    db.chmod(0o644)
    await writer.flush(15)
    assert count(tmp_path) == 1 and writer.stats.last_ok
    await writer.stop()


async def test_locked_database_is_retried(tmp_path: Path) -> None:
    connect(tmp_path).close()
    blocker = sqlite3.connect(tmp_path / "hearthgate.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    writer = Writer(tmp_path)
    writer.start()
    writer.submit_decision(row(1))
    await asyncio.sleep(0.3)
    assert count_safe(tmp_path) == 0  # WAL readers still read; the write waits
    blocker.execute("COMMIT")
    blocker.close()
    await writer.flush(20)
    assert count(tmp_path) == 1
    await writer.stop()


def count_safe(state: Path) -> int | None:
    try:
        conn = sqlite3.connect(state / "hearthgate.db", timeout=0.01)
        return int(conn.execute("SELECT count(*) FROM decisions").fetchone()[0])
    except sqlite3.OperationalError:
        return None


@pytest.mark.parametrize(
    ("value", "limit"), [(None, 100_000), ("", 100_000), ("40", 40), (" 40 ", 40), ("1_000", 1000)]
)
def test_queue_limit_from_the_environment(value: str | None, limit: int) -> None:
    environ = {} if value is None else {"HEARTHGATE_LOG_QUEUE": value}
    assert queue_limit(environ) == limit


@pytest.mark.parametrize("value", ["0", "-5", "lots", "1.5", "1_", "_5"])
def test_a_queue_limit_that_would_drop_everything_or_mean_nothing_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="HEARTHGATE_LOG_QUEUE must be a whole number"):
        queue_limit({"HEARTHGATE_LOG_QUEUE": value})


async def test_a_writer_with_no_room_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Writer(tmp_path, limit=0)


@pytest.mark.parametrize("released", [True, False])
async def test_stop_counts_what_it_could_not_write(tmp_path: Path, released: bool) -> None:
    """Stopping while a write waits on a lock: the connection is closed only after that
    write ends; rows it committed count as written, rows it could not as dropped."""
    connect(tmp_path).close()
    blocker = sqlite3.connect(tmp_path / "hearthgate.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    writer = Writer(tmp_path, linger=0)
    writer.start()
    for i in range(10):
        writer.submit_decision(row(i))
    await asyncio.sleep(0.1)  # the batch is in the worker thread, waiting for the lock
    for i in range(10, 13):
        writer.submit_decision(row(i))  # still queued when stop gives up
    if released:
        asyncio.get_running_loop().call_later(0.5, blocker.execute, "COMMIT")
    await writer.stop(timeout=0.2)
    if not released:
        blocker.execute("COMMIT")
    blocker.close()
    written = 10 if released else 0
    assert (writer.stats.written, writer.stats.dropped) == (written, 13 - written)
    assert count(tmp_path) == written


async def test_stop_during_the_linger_writes_the_row_in_hand(tmp_path: Path) -> None:
    writer = Writer(tmp_path, linger=0)
    writer.start()
    writer.submit_decision(row(1))
    await writer.flush(5)
    writer.linger = 5  # the next row waits for company, in hand, when stop comes
    writer.submit_decision(row(2))
    await asyncio.sleep(0.05)
    await writer.stop(timeout=2)  # a flush ends the linger: the row is written at once
    assert (writer.stats.written, writer.stats.dropped) == (2, 0)
    assert count(tmp_path) == 2


class LateThread(Writer):
    """A worker thread that starts its write only after stop() has closed the log, as a
    busy machine may schedule it."""

    def _write(self, batch: list[Write]) -> None:
        time.sleep(0.3)
        super()._write(batch)


async def test_a_write_that_starts_after_stop_does_not_reopen_the_database(
    tmp_path: Path,
) -> None:
    writer = LateThread(tmp_path, linger=0)
    writer.start()
    writer.submit_decision(row(1))
    await asyncio.sleep(0.05)  # the batch is in the worker thread, not yet writing
    await writer.stop(timeout=0.01)
    await asyncio.sleep(0.5)  # the thread has woken up and given up
    assert (writer.stats.written, writer.stats.dropped) == (0, 1)
    assert writer._conn is None
    assert not (tmp_path / "hearthgate.db").exists() or count(tmp_path) == 0


async def test_a_lone_row_waits_as_long_as_the_linger_function_says(tmp_path: Path) -> None:
    asked = []

    def until_the_beat() -> float:
        asked.append(1)
        return 0.4

    connect(tmp_path).close()  # the table, before the first write makes it
    writer = Writer(tmp_path, linger=until_the_beat)
    writer.start()
    writer.submit_decision(row(1))
    await asyncio.sleep(0.2)
    assert count(tmp_path) == 0 and asked == [1]  # still waiting for company
    writer.submit_decision(row(2))  # company: written with the first, in one batch
    await writer.flush(5)
    assert count(tmp_path) == 2
    assert asked == [1, 1]  # the linger, then the wait for the write's answer (cut by flush)
    await writer.stop()


async def _until(check: Callable[[], bool], timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def test_on_the_beat_the_answer_waits_for_the_next_beat_and_rows_meanwhile_go_at_once(
    tmp_path: Path,
) -> None:
    """The loop does not wake for the thread's answer: it reads it at the next beat, and the
    rows that came in that second are written then, without a linger of their own."""
    asked = []

    def beat() -> float:
        asked.append(1)
        return 0.5

    connect(tmp_path).close()
    writer = Writer(tmp_path, linger=beat)
    writer.start()
    writer.submit_decision(row(1))
    await _until(lambda: count(tmp_path) == 1)
    assert len(asked) == 2  # the linger, then the wait for the answer
    writer.submit_decision(row(2))  # within that wait
    await _until(lambda: count(tmp_path) == 2)
    assert len(asked) == 3  # no linger for row 2: only the wait for its answer
    await writer.stop()


async def test_enough_rows_end_the_linger_at_once(tmp_path: Path) -> None:
    from proxy.store.writer import LINGER_BELOW

    writer = Writer(tmp_path, linger=lambda: 60.0)
    writer.start()
    writer.submit_decision(row(0))
    await asyncio.sleep(0.05)  # the writer lingers with the first row in hand
    for i in range(1, LINGER_BELOW + 1):
        writer.submit_decision(row(i))
    await writer.flush(5)  # long before the 60 s linger would end
    assert count(tmp_path) == LINGER_BELOW + 1
    await writer.stop()


def test_batches_of_any_size_use_a_few_statement_texts(tmp_path: Path) -> None:
    # each distinct SQL text is a compiled statement sqlite3 keeps: batch sizes must not
    # each make their own
    from proxy.store.sql.connection import SQLITE_ROWS_PER_INSERT

    conn = connect(tmp_path)
    sizes: set[int] = set()

    def traced(sql: str) -> None:
        if sql.startswith("INSERT INTO decisions"):
            sizes.add(sql.partition(" VALUES ")[2].count("),") + 1)

    conn.raw.set_trace_callback(traced)
    total = 0
    for size in range(1, 700, 7):
        with conn.transaction():
            conn.copy_rows("decisions", DECISION_COLUMNS, [row(total + i) for i in range(size)])
        total += size
    conn.raw.set_trace_callback(None)
    assert conn.raw.execute("SELECT count(*) FROM decisions").fetchone()[0] == total
    assert sizes == {1 << k for k in range(SQLITE_ROWS_PER_INSERT.bit_length())}
    conn.close()
