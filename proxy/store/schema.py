"""The database schema, created and migrated by the program, for SQLite and PostgreSQL.

Each migration is a script in SQLite's DDL (translated for PostgreSQL by ``sql.dialect``:
keep to what both understand, see there). SQLite keeps the version in ``PRAGMA
user_version``; PostgreSQL in the table ``hearthgate_schema``, and migrates under an
advisory lock so gates starting together do not migrate twice.
"""

from __future__ import annotations

from pathlib import Path

from proxy.store.sql import connection as sql
from proxy.store.sql.connection import SQLITE_PRAGMAS as PRAGMAS
from proxy.store.sql.connection import Connection
from proxy.store.sql.target import DB_NAME, Target, target_of

__all__ = ["DB_NAME", "MIGRATIONS", "PRAGMAS", "Connection", "connect", "db_path", "migrate"]

# Each entry moves the schema from version i to i+1. Append, never edit.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE decisions (
        id INTEGER PRIMARY KEY,
        ts TEXT NOT NULL,
        request_id TEXT NOT NULL,
        client_ip TEXT, device TEXT, person TEXT, provider TEXT, host TEXT,
        method TEXT, path TEXT, endpoint TEXT, model TEXT,
        stage TEXT NOT NULL, rule TEXT, action TEXT NOT NULL,
        allowed INTEGER NOT NULL, enforced INTEGER NOT NULL,
        reason TEXT, duration_us INTEGER, status INTEGER,
        tokens_in INTEGER, tokens_out INTEGER, prompt_excerpt TEXT,
        usage_source TEXT
    );
    CREATE INDEX decisions_ts ON decisions(ts);
    CREATE INDEX decisions_device_ts ON decisions(device, ts);
    CREATE INDEX decisions_request ON decisions(request_id);

    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO meta VALUES ('state_version', '0');

    CREATE TABLE emergency (
        id INTEGER PRIMARY KEY,
        activated_at TEXT NOT NULL, until TEXT NOT NULL,
        reason TEXT NOT NULL CHECK (length(trim(reason)) > 0),
        activated_by TEXT NOT NULL,
        deactivated_at TEXT, deactivated_by TEXT,
        active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1))
    );
    -- at most one active emergency, whoever races to insert it
    CREATE UNIQUE INDEX emergency_one_active ON emergency(active) WHERE active = 1;

    CREATE TABLE allowlist (
        id INTEGER PRIMARY KEY,
        identifier TEXT NOT NULL, entry_type TEXT NOT NULL,
        name TEXT, reason TEXT,
        created_at TEXT NOT NULL, created_by TEXT NOT NULL,
        expires_at TEXT, removed_at TEXT, removed_by TEXT
    );
    CREATE UNIQUE INDEX allowlist_live ON allowlist(entry_type, identifier)
        WHERE removed_at IS NULL;

    CREATE TABLE time_rules (
        name TEXT PRIMARY KEY,
        definition TEXT NOT NULL,
        created_at TEXT NOT NULL, created_by TEXT NOT NULL
    );

    CREATE TABLE overrides (
        id INTEGER PRIMARY KEY,
        request_id TEXT NOT NULL, device TEXT,
        pin_hash TEXT NOT NULL,
        created_at TEXT NOT NULL, created_by TEXT NOT NULL, expires_at TEXT NOT NULL,
        used_at TEXT, used_by TEXT
    );
    CREATE INDEX overrides_request ON overrides(request_id);

    CREATE TABLE unlocks (
        id INTEGER PRIMARY KEY,
        device TEXT NOT NULL, provider TEXT,
        until TEXT NOT NULL, source TEXT NOT NULL,
        created_at TEXT NOT NULL, created_by TEXT NOT NULL, revoked_at TEXT
    );

    CREATE TABLE pin_failures (
        id INTEGER PRIMARY KEY, device TEXT NOT NULL, ts TEXT NOT NULL
    );
    CREATE INDEX pin_failures_device ON pin_failures(device, ts);

    CREATE TABLE consent (
        id INTEGER PRIMARY KEY,
        change_type TEXT NOT NULL, description TEXT NOT NULL, payload TEXT NOT NULL,
        requested_by TEXT NOT NULL, requested_at TEXT NOT NULL, expires_at TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        decided_at TEXT, decided_by TEXT, reject_reason TEXT, applied_at TEXT
    );
    CREATE TABLE consent_approvals (
        consent_id INTEGER NOT NULL REFERENCES consent(id),
        approver TEXT NOT NULL, ts TEXT NOT NULL,
        PRIMARY KEY (consent_id, approver)
    );

    CREATE TABLE usage (
        key TEXT NOT NULL, day TEXT NOT NULL,
        requests INTEGER NOT NULL DEFAULT 0,
        tokens_in INTEGER NOT NULL DEFAULT 0, tokens_out INTEGER NOT NULL DEFAULT 0,
        cost REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (key, day)
    );

    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY, ts TEXT NOT NULL, request_id TEXT,
        device TEXT, person TEXT, stage TEXT, rule TEXT, action TEXT, reason TEXT
    );
    CREATE INDEX alerts_ts ON alerts(ts);

    CREATE TABLE audit (
        id INTEGER PRIMARY KEY, ts TEXT NOT NULL, actor TEXT NOT NULL,
        action TEXT NOT NULL, target TEXT, before TEXT, after TEXT
    );
    CREATE INDEX audit_ts ON audit(ts);

    CREATE TABLE admins (
        id INTEGER PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL,
        token_hash TEXT NOT NULL, token_prefix TEXT NOT NULL,
        created_at TEXT NOT NULL, created_by TEXT NOT NULL, revoked_at TEXT
    );
    CREATE UNIQUE INDEX admins_live_name ON admins(name) WHERE revoked_at IS NULL;
    """,
    # 2: pauses, extra allowances for a day, minutes of use in the usage counters
    """
    CREATE TABLE pauses (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('person', 'device', 'group')),
        target TEXT NOT NULL, until TEXT NOT NULL, reason TEXT,
        created_at TEXT NOT NULL, created_by TEXT NOT NULL,
        ended_at TEXT, ended_by TEXT
    );
    CREATE INDEX pauses_until ON pauses(until);

    CREATE TABLE bonuses (
        id INTEGER PRIMARY KEY,
        person TEXT NOT NULL, day TEXT NOT NULL,
        minutes INTEGER NOT NULL DEFAULT 0 CHECK (minutes >= 0),
        requests INTEGER NOT NULL DEFAULT 0 CHECK (requests >= 0),
        tokens INTEGER NOT NULL DEFAULT 0 CHECK (tokens >= 0),
        created_at TEXT NOT NULL, created_by TEXT NOT NULL
    );
    CREATE INDEX bonuses_day ON bonuses(day, person);

    ALTER TABLE usage ADD COLUMN minutes INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE usage ADD COLUMN last_minute INTEGER NOT NULL DEFAULT 0;
    """,
)

_MIGRATE_LOCK = "hearthgate-migrate"


def db_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / DB_NAME


def connect(where: Target | str | Path) -> Connection:
    """A migrated connection to a target, a database URL or a state directory's SQLite."""
    conn = sql.connect(target_of(where))
    try:
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def version(conn: Connection) -> int:
    if conn.kind == "sqlite":
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    found = conn.execute("SELECT to_regclass('hearthgate_schema')").fetchone()[0]
    if found is None:
        return 0
    row = conn.execute("SELECT max(version) FROM hearthgate_schema").fetchone()
    return int(row[0] or 0)


def migrate(conn: Connection) -> tuple[int, int]:
    """Bring the schema up to date; (version before, version after)."""
    before = version(conn)
    _refuse_newer(before)
    if before == len(MIGRATIONS):
        return before, before
    with conn.transaction():
        if conn.kind == "postgresql":
            conn.lock(_MIGRATE_LOCK)  # another gate may be migrating this very moment
            conn.execute("CREATE TABLE IF NOT EXISTS hearthgate_schema (version INTEGER NOT NULL)")
            before = version(conn)
            _refuse_newer(before)
        for i in range(before, len(MIGRATIONS)):
            conn.script(MIGRATIONS[i])
            _set_version(conn, i + 1)
    return before, len(MIGRATIONS)


def _set_version(conn: Connection, number: int) -> None:
    if conn.kind == "sqlite":
        conn.execute(f"PRAGMA user_version = {number}")
    else:
        conn.execute("INSERT INTO hearthgate_schema (version) VALUES (?)", (number,))


def _refuse_newer(found: int) -> None:
    if found > len(MIGRATIONS):
        raise RuntimeError(
            f"the database schema (version {found}) is newer than this "
            f"hearthgate understands ({len(MIGRATIONS)}); upgrade hearthgate"
        )
