"""A synchronous handle on the database for administrative changes (CLI, admin API).

Every change runs in one transaction (SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's ``BEGIN``)
that also writes its ``audit`` row and bumps ``meta.state_version`` — every running gate
polls that number and reloads its runtime state within a second of any change, whoever made
it and on whichever gate.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from governance.errors import StateError
from proxy.store.schema import connect
from proxy.store.sql.connection import Connection
from proxy.store.sql.target import Target, target_of
from proxy.store.state import iso


def normalize_actor(name: str) -> str:
    """People are compared by trimmed, lower-cased name: "Mom " and "mom" are one parent."""
    actor = " ".join(name.split()).lower()
    if not actor:
        raise StateError("who is making this change? (an empty name was given)")
    return actor


class Db:
    def __init__(self, where: Target | str | Path) -> None:
        """``where``: a target, a database URL, or a state directory (its SQLite file)."""
        self.target = target_of(where)
        self.conn = connect(self.target)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Db:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def change(
        self, actor: str, action: str, target: str | None, now: datetime
    ) -> Iterator[Change]:
        """A transaction that records one audited change and tells the proxy about it."""
        with self.transaction():
            change = Change(self.conn, normalize_actor(actor), action, target, now)
            yield change
            self.conn.execute(
                "INSERT INTO audit (ts, actor, action, target, before, after) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    iso(now),
                    change.actor,
                    action,
                    change.target,
                    _json(change.before),
                    _json(change.after),
                ),
            )
            self.conn.execute(
                "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) "
                "WHERE key = 'state_version'"
            )

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction (no audit); nested inside another it becomes a savepoint, so a
        change applied on approval commits or rolls back with the approval."""
        with self.conn.transaction() as conn:
            yield conn

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(sql, params).fetchall()]

    def row(self, sql: str, params: tuple[Any, ...] = ()) -> dict[str, Any] | None:
        found = self.conn.execute(sql, params).fetchone()
        return dict(found) if found else None


class Change:
    """What a change did, filled in by the action for the audit row."""

    def __init__(
        self, conn: Connection, actor: str, action: str, target: str | None, now: datetime
    ) -> None:
        self.conn, self.actor, self.action, self.target, self.now = conn, actor, action, target, now
        self.before: Any = None
        self.after: Any = None

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.conn.execute(sql, params)

    def insert(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        return self.conn.insert(sql, params)

    def row(self, sql: str, params: tuple[Any, ...] = ()) -> dict[str, Any] | None:
        found = self.conn.execute(sql, params).fetchone()
        return dict(found) if found else None


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str, sort_keys=True)
