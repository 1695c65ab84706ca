"""A synchronous handle on the database for administrative changes (CLI, admin API).

Every change runs in one ``BEGIN IMMEDIATE`` transaction that also writes its ``audit`` row
and bumps ``meta.state_version`` — the running proxy polls that number and reloads its
runtime state within a second of any change, whoever made it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from governance.errors import StateError
from proxy.store.schema import connect
from proxy.store.state import iso


def normalize_actor(name: str) -> str:
    """People are compared by trimmed, lower-cased name: "Mom " and "mom" are one parent."""
    actor = " ".join(name.split()).lower()
    if not actor:
        raise StateError("who is making this change? (an empty name was given)")
    return actor


class Db:
    def __init__(self, state_dir: str | Path) -> None:
        self.state_dir = Path(state_dir)
        self.conn = connect(state_dir)
        self._depth = 0

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
                "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'state_version'"
            )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (no audit); nested inside another it becomes a savepoint, so a
        change applied on approval commits or rolls back with the approval."""
        if self.conn.in_transaction:
            self._depth += 1
            name = f"sp{self._depth}"
            self.conn.execute(f"SAVEPOINT {name}")
            try:
                yield self.conn
                self.conn.execute(f"RELEASE {name}")
            except BaseException:
                self.conn.execute(f"ROLLBACK TO {name}")
                self.conn.execute(f"RELEASE {name}")
                raise
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(sql, params).fetchall()]

    def row(self, sql: str, params: tuple[Any, ...] = ()) -> dict[str, Any] | None:
        found = self.conn.execute(sql, params).fetchone()
        return dict(found) if found else None


class Change:
    """What a change did, filled in by the action for the audit row."""

    def __init__(
        self, conn: sqlite3.Connection, actor: str, action: str, target: str | None, now: datetime
    ) -> None:
        self.conn, self.actor, self.action, self.target, self.now = conn, actor, action, target, now
        self.before: Any = None
        self.after: Any = None

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def row(self, sql: str, params: tuple[Any, ...] = ()) -> dict[str, Any] | None:
        found = self.conn.execute(sql, params).fetchone()
        return dict(found) if found else None


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str, sort_keys=True)
