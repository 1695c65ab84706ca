"""Shared pieces of the admin subcommands: who acts, output as text / JSON / CSV, errors.

Cheap to import on purpose (the standard library's light parts and ``governance.errors``):
every CLI module imports this at its top, and ``hearthgate --help`` builds every parser.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from governance.errors import ConsentRequired, StateError

if TYPE_CHECKING:
    from governance.snapshot import Snapshot
    from proxy.store.db import Db
    from proxy.store.sql.target import Target

Handler = Callable[[argparse.Namespace], int]
type Sub = argparse._SubParsersAction[argparse.ArgumentParser]
Common = Callable[[argparse.ArgumentParser], None]


def utc_now() -> datetime:
    return datetime.now(UTC)


# text output shows times in the household's zone (JSON and CSV keep UTC ISO-8601)
_UTC_STAMP = re.compile(
    r"\b([0-9]{4}-[0-9]{2}-[0-9]{2})[T ]([0-9]{2}:[0-9]{2}(?::[0-9]{2})?)(?:\.[0-9]+)?"
    r"(?:Z|\+00:00)(?![\w:+-])"
)
_display_zone: list[ZoneInfo] = []  # set once the rules are loaded; one CLI run, one zone


def show_times_in(zone: ZoneInfo) -> None:
    _display_zone[:] = [zone]


def local_times(text: str) -> str:
    """Every UTC timestamp in ``text`` as local time of the rules' zone, to the second."""
    if not _display_zone:
        return text
    zone = _display_zone[0]

    def local(stamp: re.Match[str]) -> str:
        try:
            when = datetime.fromisoformat(f"{stamp[1]}T{stamp[2]}+00:00").astimezone(zone)
        except (ValueError, OverflowError):  # shaped like a time, is not one: leave it be
            return stamp[0]
        return when.strftime("%Y-%m-%d %H:%M:%S %Z")

    return _UTC_STAMP.sub(local, text)


def actor_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--as",
        dest="actor",
        default=None,
        metavar="NAME",
        help="who is making the change, for the audit log (default: OS user name)",
    )


def json_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON")


def actor_of(args: argparse.Namespace) -> str:
    import getpass

    return str(args.actor or getpass.getuser())


def guarded(body: Callable[[argparse.Namespace, Db, Snapshot], int]) -> Handler:
    """Open the database and rules; turn refusals into a message and exit code."""

    def run(args: argparse.Namespace) -> int:
        from proxy.rules.cache import load_rules
        from proxy.rules.problems import RulesFileError
        from proxy.store.db import Db

        try:
            snap = load_rules(args.rules, args.state_dir)
        except RulesFileError as exc:
            print(f"hearthgate: the rules file cannot be used:\n{exc}", file=sys.stderr)
            return 2
        show_times_in(snap.zone)
        try:
            database = database_of(args)
        except ValueError as exc:
            print(f"hearthgate: --database: {exc}", file=sys.stderr)
            return 2
        try:
            with Db(database) as db:
                return body(args, db, snap)
        except ConsentRequired as exc:
            print(f"waiting for approval: {exc}")
            return 0
        except StateError as exc:
            print(f"hearthgate: {exc}", file=sys.stderr)
            return 1
        except Exception as exc:
            from proxy.store.sql.connection import unavailable_errors

            if not isinstance(exc, unavailable_errors()):
                raise
            print(
                f"hearthgate: the database {database.display} cannot be used: {exc}",
                file=sys.stderr,
            )
            return 1

    return run


def database_of(args: argparse.Namespace) -> Target:
    """``--database`` (or ``$HEARTHGATE_DATABASE``), else the state directory's SQLite file."""
    from proxy.store.sql.target import parse_url

    return parse_url(getattr(args, "database", None) or "", args.state_dir)


def emit(args: argparse.Namespace, data: Any, text: Callable[[], str] | None = None) -> int:
    if getattr(args, "json", False) or text is None:
        print(json.dumps(data, indent=2, default=str))
    else:
        print(local_times(text()))
    return 0


def table(rows: Iterable[dict[str, Any]], columns: list[str]) -> str:
    rows = list(rows)
    if not rows:
        return "(none)"
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def write_csv(rows: list[dict[str, Any]], columns: list[str]) -> int:
    import csv

    writer = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return 0


def parse_when(text: str, zone: ZoneInfo, now: datetime) -> datetime:
    """An instant from ISO text ("2026-11-20T22:00", "22:00", "2026-11-20") or a span ago
    ("2h", "30m", "7d"); naive times are read in the rules' zone, never the host's."""
    value = text.strip()
    if value and value[-1] in "mhd" and value[:-1].isdigit():
        from datetime import timedelta

        unit = {"m": "minutes", "h": "hours", "d": "days"}[value[-1]]
        return now - timedelta(**{unit: int(value[:-1])})
    try:
        if len(value) <= 5 and ":" in value:
            local = now.astimezone(zone)
            hh, mm = value.split(":")
            return local.replace(hour=int(hh), minute=int(mm), second=0, microsecond=0)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise StateError(f"{text!r} is not a time (use 2026-11-20T22:00, 22:00 or 2h)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    text = local_times(str(value))
    return text if len(text) <= 60 else text[:57] + "..."
