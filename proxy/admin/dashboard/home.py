"""The dashboard's home page: a card per person first (what is true for them now, today's
minutes, requests and allowance, one-tap pause / unlock / extra time), then the household:
the emergency override (with its on/off form), approvals waiting, unlocked devices, requests
per hour and today's totals.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from governance.quotas import today_of
from proxy.admin.dashboard import charts, data, people
from proxy.admin.dashboard.html import Html, field, form, h, join, section, table, when
from proxy.store import consent, emergency, overrides
from proxy.store.state import parse_ts


async def render(view: data.View, query: dict[str, str]) -> tuple[str, Html]:
    snap, now = view.snap, view.gate.clock()

    def gather(db: Any) -> tuple[Any, ...]:
        midnight = data.local_midnight(now, snap)
        return (
            emergency.status(db, now),
            overrides.active_unlocks(db, now),
            consent.pending(db, now),
            data.today_counts(db, midnight),
            data.hourly(db, now),
        )

    active, unlocks, pending, (devices, people), hours = await view.store.read(gather)
    state = view.gate.cache.state
    bars = data.quota_bars(snap, state, now)
    body = join(
        [
            section("Waiting for approval", _pending(view, pending)) if pending else "",
            _cards(view, people, bars),
            section("The whole household", _status(view, active)),
            section("Unlocked devices", _unlocks(view, unlocks)) if unlocks else "",
            section("Requests, last 24 hours", charts.hourly_chart(hours, snap.zone)),
            section("Today", _today(devices, people)),
        ]
    )
    return "Home", body


def _cards(view: data.View, counts: dict[str, data.Counts], bars: list[data.QuotaBar]) -> Html:
    snap, state, now = view.snap, view.gate.cache.state, view.gate.clock()
    today = now.astimezone(snap.zone).date()
    cards = []
    for person in sorted(snap.rules.people):
        used = today_of(state, f"person:{person}", today)
        seen = counts.get(person, data.Counts())
        facts = {"minutes": used.minutes, "allowed": seen.allowed, "blocked": seen.blocked}
        mine = [b for b in bars if b.person == person]
        cards.append(
            people.card(view, person, people.status(snap, state, person, now), facts, mine)
        )
    if not cards:
        return Html('<p class="muted">No people in the rules yet: add them under people:.</p>')
    return h('<div class="people">{}</div>', join(cards))


def _status(view: data.View, active: dict[str, Any] | None) -> Html:
    snap = view.snap
    mode = (
        h(
            '<p>Mode: <strong class="badge warn">observe</strong> — nothing is blocked, '
            "would-be blocks are logged.</p>"
        )
        if snap.observe
        else h('<p>Mode: <strong class="badge ok">enforce</strong> — the rules apply.</p>')
    )
    if active:
        state = h(
            '<p class="emergency on"><strong>Emergency override is ON</strong>: every request is '
            "allowed until {} ({} min left). Switched on by {}: “{}”</p>",
            when(active["until"], snap.zone, "%H:%M"),
            _minutes_left(active["until"], view.gate.clock()),
            active["activated_by"],
            active["reason"],
        )
    else:
        state = Html('<p class="emergency off">Emergency override is off.</p>')
    return mode + state + (_emergency_forms(view, active) if view.can_write else Html(""))


def _minutes_left(until: str, now: datetime) -> int:
    end = parse_ts(until)
    return max(0, math.ceil((end - now).total_seconds() / 60)) if end else 0


def _emergency_forms(view: data.View, active: dict[str, Any] | None) -> Html:
    back = Html('<input type="hidden" name="back" value="/dashboard">')
    if active:
        extend = field(
            "Extend by (minutes)",
            Html('<input type="number" name="minutes" min="1" max="1440" value="30" required>'),
        )
        return join(
            [
                form("/dashboard/emergency/off", view.csrf, back, "Switch off", cls="row danger"),
                form("/dashboard/emergency/extend", view.csrf, back + extend, "Extend", cls="row"),
            ]
        )
    fields = field(
        "Minutes",
        Html('<input type="number" name="minutes" min="1" max="1440" value="60" required>'),
    ) + field(
        "Reason",
        Html(
            '<input type="text" name="reason" maxlength="200" required '
            'placeholder="e.g. school trip, needs translation">'
        ),
    )
    return form(
        "/dashboard/emergency/on",
        view.csrf,
        back + fields,
        "Switch emergency override on",
        cls="stack",
        confirm="Allow every request on every device?",
    )


def _pending(view: data.View, items: list[dict[str, Any]]) -> Html:
    need = view.snap.rules.consent.approvers
    cards = []
    for item in items:
        info = h(
            "<p><strong>#{}</strong> {}<br><small>asked by {} · {} · approvals {} of {} · "
            "expires {}</small></p>",
            item["id"],
            item["description"],
            item["requested_by"],
            when(item["requested_at"], view.snap.zone),
            len(item["approvals"]),
            need,
            when(item["expires_at"], view.snap.zone),
        )
        cards.append(h('<div class="item">{}{}</div>', info, _consent_forms(view, item)))
    return join(cards)


def _consent_forms(view: data.View, item: dict[str, Any]) -> Html:
    if not view.can_write:
        return Html("")
    base = f"/dashboard/consent/{int(item['id'])}"
    if item["requested_by"] == view.admin_name:
        approve = Html('<p class="muted">Your request: another parent must approve it.</p>')
    elif view.admin_name in item["approvals"]:
        approve = Html('<p class="muted">You approved this.</p>')
    else:
        approve = form(f"{base}/approve", view.csrf, Html(""), "Approve", cls="row")
    reason = field(
        "Reason", Html('<input type="text" name="reason" maxlength="200" placeholder="optional">')
    )
    return approve + form(f"{base}/reject", view.csrf, reason, "Reject", cls="row danger")


def _unlocks(view: data.View, unlocks: list[dict[str, Any]]) -> Html:
    return table(
        ("Device", "Until", "Service", "By"),
        [
            (
                u["device"],
                when(u["until"], view.snap.zone, "%H:%M"),
                u["provider"] or "all",
                u["created_by"],
            )
            for u in unlocks
        ],
    )


def _today(devices: dict[str, data.Counts], people: dict[str, data.Counts]) -> Html:
    def rows(counts: dict[str, data.Counts]) -> list[tuple[Any, ...]]:
        return [(name, c.allowed, c.blocked) for name, c in sorted(counts.items())]

    return join(
        [
            Html("<h3>Per device</h3>"),
            table(("Device", "Allowed", "Blocked"), rows(devices), cls="compact"),
            Html("<h3>Per person</h3>"),
            table(("Person", "Allowed", "Blocked"), rows(people), cls="compact"),
        ]
    )
