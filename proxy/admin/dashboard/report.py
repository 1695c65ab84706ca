"""The dashboard's weekly report: per child, requests and minutes of use per service and
category, blocks by rule and alerts, each beside the week before (``hearthgate report``)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from proxy.admin.dashboard import data
from proxy.admin.dashboard.html import Html, field, h, join, section, select, table
from proxy.reports import weekly


async def render(view: data.View, query: dict[str, str]) -> tuple[str, Html]:
    snap = view.snap
    today = view.gate.clock().astimezone(snap.zone).date()
    monday = weekly.week_of(_day(query.get("week"), today))
    person = query.get("person") or None
    if person not in snap.rules.people:
        person = None
    report = await view.store.read(lambda db: weekly.build(db, snap, monday, person))
    body = join(
        [
            section("Which week", _chooser(view, monday, today, person), cls="filters"),
            *(_person(p) for p in report["people"]),
        ]
    )
    if not report["people"]:
        body += Html('<p class="muted">No children in the rules (people in a group kids).</p>')
    end = monday + timedelta(days=6)
    return f"Week of {monday:%d %b} to {end:%d %b}", body


def _day(text: str | None, today: date) -> date:
    try:
        return date.fromisoformat(text) if text else today
    except ValueError:
        return today


def _chooser(view: data.View, monday: date, today: date, person: str | None) -> Html:
    weeks = [weekly.week_of(today) - timedelta(days=7 * i) for i in range(8)]
    options = [(w.isoformat(), f"{w:%d %b} – {w + timedelta(days=6):%d %b}") for w in weeks]
    people = [("", "every child")] + [(n, n) for n in sorted(view.snap.rules.people)]
    return h(
        '<form method="get" action="/dashboard/report" class="grid auto">{}{}'
        '<button type="submit">Show</button></form>',
        field("Week", select("week", options, monday.isoformat())),
        field("Child", select("person", people, person or "")),
    )


def _person(p: dict[str, Any]) -> Html:
    summary = h(
        "<p><strong>{}</strong> requests {} · <strong>{}</strong> minutes of use {}</p>",
        p["requests"]["this_week"],
        _before(p["requests"]),
        p["minutes"]["this_week"],
        _before(p["minutes"]),
    )
    services = table(
        ("Service", "Requests", "Before", "Minutes", "Before"),
        [
            (s["service"], s["requests"], s["requests_before"], s["minutes"], s["minutes_before"])
            for s in p["services"]
        ],
        cls="compact report",
    )
    categories = table(
        ("Kind", "Requests", "Before"),
        [(c["category"], c["requests"], c["requests_before"]) for c in p["categories"]],
        cls="compact report",
    )
    blocks = table(
        ("Blocked by", "Times", "Before"),
        [(b["rule"], b["count"], b["count_before"]) for b in p["blocks"]],
        cls="compact report",
    )
    alerts = table(
        ("Alert", "Times", "Before"),
        [(a["rule"], a["count"], a["count_before"]) for a in p["alerts"]],
        cls="compact report",
    )
    return section(
        p["person"],
        summary
        + Html('<p class="muted">“Before” is the week before; minutes are active minutes.</p>')
        + Html("<h3>Services</h3>")
        + services
        + Html("<h3>Kinds of service</h3>")
        + categories
        + Html("<h3>Blocked</h3>")
        + blocks
        + Html("<h3>Alerts</h3>")
        + alerts,
    )


def _before(pair: dict[str, int]) -> Html:
    diff = pair["this_week"] - pair["week_before"]
    if diff == 0:
        return h('<small class="muted">(same as the week before)</small>')
    cls, word = ("up", "more") if diff > 0 else ("down", "fewer")
    return h(
        '<small class="{}">({} {} than the week before: {})</small>',
        cls,
        abs(diff),
        word,
        pair["week_before"],
    )
