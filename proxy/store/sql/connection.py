"""A connection to either backend, with one interface for the store's modules.

``connect(target)`` opens SQLite (WAL, busy timeout, foreign keys) or PostgreSQL
(autocommit, so transactions are explicit: ``BEGIN`` ... ``COMMIT``). Both run the same SQL
text (see ``dialect``); rows index by position and by column name, as ``sqlite3.Row`` does.
Errors are the drivers' own; ``integrity_errors()`` and ``unavailable_errors()`` name them
for both. ``psycopg`` is imported only when a PostgreSQL connection is opened (it costs
more than 100 ms, and every CLI command must answer within 300 ms).
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from proxy.store.sql import dialect
from proxy.store.sql.target import Target

SQLITE_BUSY_TIMEOUT_MS = 5000
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
    "PRAGMA foreign_keys=ON",
)
# rows per multi-row INSERT, at most: x 23 columns stays far below SQLite's variable limit.
# A batch is cut into powers of two up to this (300 = 256 + 32 + 8 + 4), so at most nine
# statement texts ever exist: sqlite3 caches each compiled statement per text, and one per
# batch size (up to 128 of them, the largest hundreds of KB each) held tens of MiB for good
SQLITE_ROWS_PER_INSERT = 256
CONNECT_TIMEOUT = 3  # seconds; an unreachable server must not hold a gate's start-up long


def integrity_errors() -> tuple[type[Exception], ...]:
    """A constraint said no (unique index, foreign key), on either backend."""
    pg = sys.modules.get("psycopg")  # not imported: no PostgreSQL connection, no such error
    return (sqlite3.IntegrityError, pg.IntegrityError) if pg else (sqlite3.IntegrityError,)


def unavailable_errors() -> tuple[type[Exception], ...]:
    """The database cannot be reached or went away: retry later, decide from memory."""
    pg = sys.modules.get("psycopg")
    found: tuple[type[Exception], ...] = (sqlite3.OperationalError,)
    return (*found, pg.OperationalError, pg.InterfaceError) if pg else found


class Row:
    """One result row: ``row[0]``, ``row["name"]``, ``dict(row)``, unpacking."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values, self._index = values, index

    def __getitem__(self, key: int | str) -> Any:
        return self._values[self._index[key] if isinstance(key, str) else key]

    def keys(self) -> list[str]:
        return list(self._index)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._index, self._values, strict=True))!r})"


def _row_factory(cursor: Any) -> Any:
    names = [c.name for c in cursor.description or ()]
    index = {name: i for i, name in enumerate(names)}
    return lambda values: Row(values, index)


def _numeric_loader() -> type:
    from psycopg.adapt import Loader

    class NumericLoader(Loader):
        """``sum()`` of integers is NUMERIC in PostgreSQL: give an int back, as SQLite does."""

        def load(self, data: Any) -> int | float:
            text = bytes(data).decode()
            return float(text) if any(c in text for c in ".eEN") else int(text)

    return NumericLoader


class Connection:
    """The store's handle on one database connection (one thread at a time)."""

    def __init__(self, target: Target, raw: Any) -> None:
        self.target, self.raw = target, raw
        self.kind = target.kind
        self._savepoints = 0

    # --- statements -------------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; the cursor has ``fetchone``, ``fetchall`` and ``rowcount``."""
        if self.kind == "sqlite":
            return self.raw.execute(sql, params)
        return self.raw.execute(dialect.postgres(sql), params or None)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        if self.kind == "sqlite":
            self.raw.executemany(sql, rows)
            return
        with self.raw.cursor() as cur:
            cur.executemany(dialect.postgres(sql), list(rows))

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """An ``INSERT`` of one row; the new row's ``id``."""
        row = self.execute(f"{sql} RETURNING id", params).fetchone()
        return int(row[0])

    def script(self, script: str) -> None:
        """A schema script (SQLite's DDL, translated for PostgreSQL)."""
        for statement in dialect.statements(script):
            if self.kind == "sqlite":
                self.raw.execute(statement)
            else:
                self.raw.execute(dialect.postgres_ddl(statement))

    def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Many rows into one table: PostgreSQL's COPY, SQLite's multi-row INSERTs."""
        if self.kind == "postgresql":
            names = ", ".join(columns)
            with self.raw.cursor() as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN") as cp:
                for row in rows:
                    cp.write_row(row)
            return
        per = SQLITE_ROWS_PER_INSERT
        one = f"({', '.join('?' * len(columns))})"
        into = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
        start = 0
        while start < len(rows):
            size = min(per, 1 << ((len(rows) - start).bit_length() - 1))
            chunk = rows[start : start + size]
            self.raw.execute(into + ", ".join([one] * size), [v for r in chunk for v in r])
            start += size

    # --- transactions -----------------------------------------------------------------

    @property
    def in_transaction(self) -> bool:
        if self.kind == "sqlite":
            return bool(self.raw.in_transaction)
        return bool(self.raw.info.transaction_status != 0)  # psycopg.pq.TransactionStatus.IDLE

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction; inside another one it is a savepoint of it."""
        if self.in_transaction:
            with self.savepoint():
                yield self
            return
        self.raw.execute("BEGIN IMMEDIATE" if self.kind == "sqlite" else "BEGIN")
        try:
            yield self
            self.raw.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    @contextmanager
    def savepoint(self) -> Iterator[Connection]:
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        self.raw.execute(f"SAVEPOINT {name}")
        try:
            yield self
            self.raw.execute(f"RELEASE {name}")
        except BaseException:
            if self.in_transaction:
                self.raw.execute(f"ROLLBACK TO {name}")
                self.raw.execute(f"RELEASE {name}")
            raise
        finally:
            self._savepoints -= 1

    def lock(self, name: str) -> None:
        """Hold a lock named ``name`` until the transaction ends, against every gate.

        SQLite needs none: ``BEGIN IMMEDIATE`` already lets one writer in at a time.
        """
        if self.kind == "postgresql":
            self.raw.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (name,))

    def _rollback(self) -> None:
        try:
            self.raw.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - the connection is gone; the server rolled back
            pass

    def close(self) -> None:
        try:
            self.raw.close()
        except Exception:  # noqa: BLE001 - closing what is already broken
            pass

    @property
    def closed(self) -> bool:
        return self.kind == "postgresql" and bool(self.raw.closed)


def connect(target: Target) -> Connection:
    """An open connection, not migrated (``schema.connect`` migrates)."""
    if target.kind == "sqlite":
        assert target.path is not None
        target.path.parent.mkdir(parents=True, exist_ok=True)
        lite = sqlite3.connect(
            target.path, timeout=5, isolation_level=None, check_same_thread=False
        )
        lite.row_factory = sqlite3.Row
        for pragma in SQLITE_PRAGMAS:
            lite.execute(pragma)
        return Connection(target, lite)
    import psycopg

    raw: psycopg.Connection[Any] = psycopg.connect(
        target.dsn or "",
        autocommit=True,
        connect_timeout=CONNECT_TIMEOUT,
        row_factory=_row_factory,
        application_name="hearthgate",
    )
    raw.adapters.register_loader("numeric", _numeric_loader())
    return Connection(target, raw)
