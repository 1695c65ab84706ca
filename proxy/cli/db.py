"""``hearthgate db migrate``: create or migrate the database of either backend.

``run`` and every other command migrate on their own when they open the database; this is
for doing it on purpose — before starting several gates on a new PostgreSQL database, or to
see the schema version after an upgrade.
"""

from __future__ import annotations

import argparse
import sys

from proxy.cli.common import Common, Sub, database_of, emit, json_option


def add(sub: Sub, common: Common) -> None:
    db = sub.add_parser("db", help="the database: create or migrate it")
    dsub = db.add_subparsers(metavar="ACTION", required=True)
    p = dsub.add_parser(
        "migrate",
        help="create the schema or bring it up to date (SQLite or PostgreSQL)",
        description="Create every table, or apply the migrations a new hearthgate brings. "
        "Safe to run at any time, also while gates are running; gates starting together "
        "on one PostgreSQL database migrate it once.",
    )
    common(p)
    json_option(p)
    p.set_defaults(handler=_migrate)


def _migrate(args: argparse.Namespace) -> int:
    from proxy.store import schema
    from proxy.store.sql import connection

    try:
        target = database_of(args)
    except ValueError as exc:
        print(f"hearthgate: --database: {exc}", file=sys.stderr)
        return 2
    try:
        conn = connection.connect(target)
    except connection.unavailable_errors() as exc:
        print(f"hearthgate: cannot open {target.display}: {exc}", file=sys.stderr)
        return 1
    try:
        before, after = schema.migrate(conn)
    except RuntimeError as exc:
        print(f"hearthgate: {exc}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    data = {"database": target.display, "backend": target.kind, "from": before, "to": after}
    if before == after:
        text = f"{target.display}: schema version {after}, up to date"
    else:
        text = f"{target.display}: schema migrated from version {before} to {after}"
    return emit(args, data, lambda: text)
