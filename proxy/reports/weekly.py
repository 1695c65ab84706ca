"""The weekly report per child: requests and active minutes per service and category,
blocks by rule and alerts, each beside the same figure for the week before.

A week is Monday 00:00 to Monday 00:00 in the rules' zone. "Active minutes" per service are
the clock minutes with at least one allowed request to it; the week's total is the usage
counter, which also counts every minute a stream ran. Children are the people in a group
named like ``kids`` or ``children``, else everyone who is not in ``parents``.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from governance.snapshot import Snapshot
from proxy.catalog.services import catalog_for
from proxy.store.db import Db
from proxy.store.state import iso

CHILD_GROUPS = ("kids", "children", "teens", "kinder")


def children(snap: Snapshot) -> list[str]:
    people = snap.rules.people
    kids = [n for n, p in people.items() if set(p.groups) & set(CHILD_GROUPS)]
    return sorted(kids or [n for n, p in people.items() if "parents" not in p.groups])


def week_of(day: date) -> date:
    """The Monday of ``day``'s week."""
    return day - timedelta(days=day.weekday())


def build(db: Db, snap: Snapshot, monday: date, person: str | None = None) -> dict[str, Any]:
    """The report for the week starting ``monday`` (local), for one person or every child."""
    who = [person] if person else children(snap)
    start, end = _bounds(snap, monday), _bounds(snap, monday + timedelta(days=7))
    before = _bounds(snap, monday - timedelta(days=7))
    categories = _categories(snap)
    return {
        "week": {"start": monday.isoformat(), "end": (monday + timedelta(days=6)).isoformat()},
        "timezone": snap.rules.settings.timezone,
        "people": [
            _person(db, name, (start, end), (before, start), monday, categories) for name in who
        ],
    }


def _person(
    db: Db,
    name: str,
    week: tuple[datetime, datetime],
    last: tuple[datetime, datetime],
    monday: date,
    categories: dict[str, str],
) -> dict[str, Any]:
    now_services, prev_services = _services(db, name, week), _services(db, name, last)
    services = _compare(now_services, prev_services, ("requests", "minutes"))
    by_category: dict[str, dict[str, int]] = {}
    for item in services:
        cat = by_category.setdefault(
            categories.get(item["service"], "other"),
            {"requests": 0, "minutes": 0, "requests_before": 0, "minutes_before": 0},
        )
        for k in cat:
            cat[k] += item[k]
    return {
        "person": name,
        "requests": _pair(sum(s["requests"] for s in services), _total(db, name, last)),
        "minutes": _pair(
            _minutes(db, name, monday), _minutes(db, name, monday - timedelta(days=7))
        ),
        "services": services,
        "categories": [{"category": k, **v} for k, v in sorted(by_category.items())],
        "blocks": _compare(
            _counted(db, name, week, "action = 'block' AND enforced = 1", "decisions"),
            _counted(db, name, last, "action = 'block' AND enforced = 1", "decisions"),
            ("count",),
            key="rule",
        ),
        "alerts": _compare(
            _counted(db, name, week, "1 = 1", "alerts"),
            _counted(db, name, last, "1 = 1", "alerts"),
            ("count",),
            key="rule",
        ),
    }


def _bounds(snap: Snapshot, day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=snap.zone)


def _categories(snap: Snapshot) -> dict[str, str]:
    return {p.name: str(getattr(p, "category", None) or p.api) for p in catalog_for(snap).providers}


def _services(db: Db, person: str, span: tuple[datetime, datetime]) -> dict[str, dict[str, int]]:
    rows = db.rows(
        "SELECT coalesce(provider, host) AS service, count(*) AS requests, "
        "count(DISTINCT substr(ts, 1, 16)) AS minutes FROM decisions "
        "WHERE person = ? AND ts >= ? AND ts < ? AND allowed = 1 GROUP BY service",
        (person, iso(span[0]), iso(span[1])),
    )
    return {r["service"]: {"requests": r["requests"], "minutes": r["minutes"]} for r in rows}


def _total(db: Db, person: str, span: tuple[datetime, datetime]) -> int:
    row = db.row(
        "SELECT count(*) AS n FROM decisions WHERE person = ? AND ts >= ? AND ts < ? "
        "AND allowed = 1",
        (person, iso(span[0]), iso(span[1])),
    )
    return int(row["n"]) if row else 0


def _minutes(db: Db, person: str, monday: date) -> int:
    row = db.row(
        "SELECT coalesce(sum(minutes), 0) AS m FROM usage WHERE key = ? AND day >= ? AND day < ?",
        (f"person:{person}", monday.isoformat(), (monday + timedelta(days=7)).isoformat()),
    )
    return int(row["m"]) if row else 0


def _counted(
    db: Db, person: str, span: tuple[datetime, datetime], where: str, table: str
) -> dict[str, dict[str, int]]:
    rows = db.rows(
        f"SELECT coalesce(rule, stage) AS rule, count(*) AS n FROM {table} "
        f"WHERE person = ? AND ts >= ? AND ts < ? AND {where} GROUP BY 1",
        (person, iso(span[0]), iso(span[1])),
    )
    return {r["rule"]: {"count": r["n"]} for r in rows}


def _compare(
    now: dict[str, dict[str, int]],
    before: dict[str, dict[str, int]],
    fields: tuple[str, ...],
    key: str = "service",
) -> list[dict[str, Any]]:
    names = sorted(set(now) | set(before), key=lambda n: (-now.get(n, {}).get(fields[0], 0), n))
    return [
        {
            key: name,
            **{f: now.get(name, {}).get(f, 0) for f in fields},
            **{f"{f}_before": before.get(name, {}).get(f, 0) for f in fields},
        }
        for name in names
    ]


def _pair(now: int, before: int) -> dict[str, int]:
    return {"this_week": now, "week_before": before}


def text(report: dict[str, Any]) -> str:
    """The report as plain text, for the terminal and the e-mail body."""
    week = report["week"]
    lines = [f"Week {week['start']} to {week['end']} ({report['timezone']})"]
    for p in report["people"]:
        lines += ["", f"{p['person']}"]
        lines.append(
            f"  requests: {_change(p['requests'])}; minutes of use: {_change(p['minutes'])}"
        )
        for s in p["services"]:
            lines.append(
                f"  {s['service']}: {s['requests']} requests (week before {s['requests_before']}),"
                f" {s['minutes']} active minutes (week before {s['minutes_before']})"
            )
        for c in p["categories"]:
            lines.append(
                f"  category {c['category']}: {c['requests']} requests "
                f"(week before {c['requests_before']})"
            )
        blocks = ", ".join(f"{b['rule']} {b['count']} ({b['count_before']})" for b in p["blocks"])
        alerts = ", ".join(f"{a['rule']} {a['count']} ({a['count_before']})" for a in p["alerts"])
        lines.append(f"  blocked by rule (week before): {blocks or 'none'}")
        lines.append(f"  alerts (week before): {alerts or 'none'}")
    return "\n".join(lines)


def _change(pair: dict[str, int]) -> str:
    now, before = pair["this_week"], pair["week_before"]
    diff = now - before
    sign = "+" if diff > 0 else ""
    return f"{now} (week before {before}, {sign}{diff})"
