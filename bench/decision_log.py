"""Section 4: the decision log — sustained rows/s of the batched writer, and a burst.

The real ``store.writer.Writer`` runs in an asyncio loop against a fresh state directory
(schema created by ``store.schema.connect``), exactly as ``hearthgate run`` starts it.

* sustained: ``rows`` decision rows are submitted as a producer would under heavy load —
  ``burst`` rows at a time, yielding to the loop in between, never letting the queue fill —
  and the clock stops when ``flush()`` returns (everything committed);
* trickle: rows submitted one at a time, yielding to the loop after each — as a proxy does,
  one row per finished request — so the writer commits many tiny batches;
* busy loop: a model of the proxy at full load, without mitmproxy. The loop's thread spends
  ``BUSY_MS_PER_REQUEST`` of pure-Python work per "request" (in slices separated by a
  GIL-releasing syscall, as socket I/O would), then submits what ``Gate.finish`` submits for
  an allowed request — two usage upserts (device, person) and one decision row — and yields.
  The writer then runs while the loop's thread holds the GIL most of the time;
* burst: ``burst`` rows submitted at once without yielding, then ``flush()``: rows dropped
  (``stats.dropped``) and the table's row count tell whether anything was lost.

``run_postgres`` does the same against PostgreSQL (SPEC section 12): the database named by
``HEARTHGATE_BENCH_DATABASE``, in a schema of its own that is dropped afterwards, or else a
throwaway server from Debian's packages started as the tests start it
(``tests/support/postgres.py``), on loopback.
"""

from __future__ import annotations

import asyncio
import os
import select
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from proxy.store.db import Db
from proxy.store.schema import connect
from proxy.store.state import UPSERT_USAGE
from proxy.store.writer import DECISION_COLUMNS, QUEUE_LIMIT, Write, Writer

TARGET_ROWS_PER_S = 5_000
BUSY_MS_PER_REQUEST = 1.5  # about hearthgate's CPU per request at full load (section 1)
BUSY_SLICES = 10
USAGE_ROW = ("person:dad", "2025-03-10", 1, 24, 7, 0.0)
FLUSH_TIMEOUT = 120.0
CHUNK = 1_000


@dataclass(frozen=True)
class LogResults:
    sustained_rows: int
    sustained_s: float
    trickle_rows: int
    trickle_s: float
    busy_offered: int
    busy_written: int
    busy_s: float
    busy_depth: int  # writes (decision rows and usage upserts) queued when the period ended
    busy_drain_s: float
    burst_rows: int
    burst_s: float
    dropped: int
    written: int
    in_table: int
    expected_in_table: int

    @property
    def rows_per_s(self) -> float:
        return self.sustained_rows / self.sustained_s

    @property
    def trickle_rows_per_s(self) -> float:
        return self.trickle_rows / self.trickle_s

    @property
    def busy_rows_per_s(self) -> float:
        return self.busy_written / self.busy_s

    @property
    def busy_offered_per_s(self) -> float:
        return self.busy_offered / self.busy_s

    @property
    def burst_rows_per_s(self) -> float:
        return self.burst_rows / self.burst_s


def make_rows(count: int, offset: int = 0) -> list[tuple[object, ...]]:
    """Decision rows shaped like ``Gate.finish`` writes them (DECISION_COLUMNS order)."""
    start = datetime(2025, 3, 10, 8, 0, tzinfo=UTC)
    rows: list[tuple[object, ...]] = []
    for n in range(offset, offset + count):
        ts = (start + timedelta(milliseconds=37 * n)).isoformat(timespec="milliseconds")
        allowed = n % 7 != 0
        rows.append(
            (
                ts,
                f"r{n:09d}",
                f"192.168.1.{n % 200 + 2}",
                f"device-{n % 40}",
                f"person-{n % 12}",
                "openai",
                "api.openai.com",
                "POST",
                "/v1/chat/completions",
                "chat",
                "gpt-4o-mini",
                "default" if allowed else "time_rule",
                None if allowed else "bedtime",
                "allow" if allowed else "block",
                int(allowed),
                1,
                "no rule matched; requests are allowed by default"
                if allowed
                else "time rule 'bedtime' (21:00-07:00), until 07:00",
                18 + n % 40,
                200 if allowed else 403,
                24 if allowed else None,
                7 if allowed else None,
                None,
                "reported" if allowed else None,
            )
        )
    assert len(rows[0]) == len(DECISION_COLUMNS)
    return rows


async def _sustained(writer: Writer, rows: list[tuple[object, ...]]) -> float:
    t0 = time.perf_counter()
    for start in range(0, len(rows), CHUNK):
        while writer.depth > QUEUE_LIMIT // 2:  # a producer that never overflows the queue
            await asyncio.sleep(0.001)
        for row in rows[start : start + CHUNK]:
            writer.submit_decision(row)
        await asyncio.sleep(0)
    await writer.flush(FLUSH_TIMEOUT)
    return time.perf_counter() - t0


async def _trickle(writer: Writer, rows: list[tuple[object, ...]]) -> float:
    t0 = time.perf_counter()
    for row in rows:
        writer.submit_decision(row)
        await asyncio.sleep(0)
    await writer.flush(FLUSH_TIMEOUT)
    return time.perf_counter() - t0


def _work(ms: float) -> None:
    """Pure-Python work with a GIL-releasing syscall between slices, like a proxy hook chain."""
    for _ in range(BUSY_SLICES):
        end = time.perf_counter() + ms / BUSY_SLICES / 1000
        while time.perf_counter() < end:
            pass
        select.select([], [], [], 0)


async def _busy(
    writer: Writer, rows: list[tuple[object, ...]], seconds: float
) -> tuple[int, int, float, int, float]:
    """(decision rows offered, written, seconds, writes still queued, seconds to drain)."""
    written0, sent = writer.stats.written, 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds and sent < len(rows):
        _work(BUSY_MS_PER_REQUEST)
        writer.submit(Write(UPSERT_USAGE, ("device:bench", *USAGE_ROW[1:])))
        writer.submit(Write(UPSERT_USAGE, USAGE_ROW))
        writer.submit_decision(rows[sent])
        sent += 1
        await asyncio.sleep(0)
    elapsed = time.perf_counter() - t0
    written, depth = writer.stats.written - written0, writer.depth
    t1 = time.perf_counter()
    await writer.flush(FLUSH_TIMEOUT)
    return sent, written, elapsed, depth, time.perf_counter() - t1


async def _burst(writer: Writer, rows: list[tuple[object, ...]]) -> float:
    t0 = time.perf_counter()
    for row in rows:
        writer.submit_decision(row)
    await writer.flush(FLUSH_TIMEOUT)
    return time.perf_counter() - t0


async def _run(
    where: Path | str, sustained_rows: int, trickle_rows: int, busy_s: float, burst_rows: int
) -> LogResults:
    connect(where).close()  # create the schema, as `hearthgate run` does at start-up
    writer = Writer(where)
    writer.start()
    try:
        sustained_s = await _sustained(writer, make_rows(sustained_rows))
        trickle_s = await _trickle(writer, make_rows(trickle_rows, offset=sustained_rows))
        offset = sustained_rows + trickle_rows
        busy_rows = make_rows(int(busy_s * 2000 / BUSY_MS_PER_REQUEST), offset=offset)
        busy = await _busy(writer, busy_rows, busy_s)
        offset += busy[0]
        burst_s = await _burst(writer, make_rows(burst_rows, offset=offset))
    finally:
        await writer.stop()
    with Db(where) as db:
        in_table = int(db.conn.execute("SELECT count(*) FROM decisions").fetchone()[0])
    return LogResults(
        sustained_rows,
        sustained_s,
        trickle_rows,
        trickle_s,
        *busy,
        burst_rows,
        burst_s,
        writer.stats.dropped,
        writer.stats.written,
        in_table,
        offset + burst_rows,
    )


def run(sustained_rows: int, trickle_rows: int, busy_s: float, burst_rows: int) -> LogResults:
    with tempfile.TemporaryDirectory(prefix="hearthgate-bench-log-") as tmp:
        return asyncio.run(_run(Path(tmp), sustained_rows, trickle_rows, busy_s, burst_rows))


def run_postgres(
    sustained_rows: int, trickle_rows: int, busy_s: float, burst_rows: int
) -> tuple[LogResults, str]:
    """The same runs against PostgreSQL; the results and where the server was."""
    with _postgres() as (url, where):
        return asyncio.run(_run(url, sustained_rows, trickle_rows, busy_s, burst_rows)), where


@contextmanager
def _postgres() -> Iterator[tuple[str, str]]:
    import psycopg

    given = os.environ.get("HEARTHGATE_BENCH_DATABASE", "").strip()
    if given:
        from proxy.store.sql.target import parse_url

        schema = "hg_bench_" + uuid.uuid4().hex[:8]
        with psycopg.connect(given, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        sep = "&" if "?" in given else "?"
        try:
            yield f"{given}{sep}options=-csearch_path%3D{schema}", parse_url(given).display
        finally:
            with psycopg.connect(given, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
        return
    from tests.support.postgres import PostgresServer, find_bin

    bindir = find_bin()
    if bindir is None:
        raise RuntimeError(
            "no PostgreSQL: install Debian's postgresql package or set HEARTHGATE_BENCH_DATABASE"
        )
    server = PostgresServer(bindir).start()
    try:
        yield server.fresh_url(), f"a throwaway PostgreSQL {bindir.parent.name} on loopback"
    finally:
        server.destroy()
