"""The dashboard's "Devices & people" page: who is who, when each device was last seen,
today's use, and (for parents) unlocking a device or making a PIN for a blocked request.
"""

from __future__ import annotations

from typing import Any

from governance.quotas import today_of
from proxy.admin.dashboard import charts, data
from proxy.admin.dashboard.html import (
    Html,
    field,
    form,
    h,
    hidden,
    join,
    section,
    select,
    table,
    when,
)

UNLOCK_CHOICES = (("15", "15 min"), ("30", "30 min"), ("60", "1 hour"), ("120", "2 hours"))


async def render(view: data.View, query: dict[str, str]) -> tuple[str, Html]:
    snap, now = view.snap, view.gate.clock()
    names = sorted(snap.devices)

    def gather(db: Any) -> tuple[Any, ...]:
        devices, people = data.today_counts(db, data.local_midnight(now, snap))
        return devices, people, data.last_seen(db, names)

    devices, people, seen = await view.store.read(gather)
    unnamed = sorted(d for d in devices if d not in snap.devices)
    usage_rows = [(n, devices[n]) for n in sorted(devices, key=lambda n: -devices[n].total)]
    body = join(
        [
            section("Devices", _devices(view, names, devices, seen)),
            section("Unnamed devices seen today", _unnamed(unnamed, devices)) if unnamed else "",
            section("Requests today per device", charts.usage_chart(usage_rows[:12])),
            section("People", _people(view, people)),
            section("PIN for a blocked request", _pin_form(view)) if view.can_write else "",
        ]
    )
    return "Devices & people", body


def _usage(view: data.View, key: str) -> str:
    today = view.gate.clock().astimezone(view.snap.zone).date()
    count = today_of(view.gate.cache.state, key, today)
    requests = "request" if count.requests == 1 else "requests"
    return f"{count.requests} {requests}, {count.tokens} tokens"


def _devices(
    view: data.View, names: list[str], counts: dict[str, data.Counts], seen: dict[str, Any]
) -> Html:
    headers = ["Device", "Person", "Groups", "Last seen", "Today", "Counted"]
    if view.can_write:
        headers.append("Unlock")
    rows = []
    for name in names:
        info = view.snap.devices[name]
        c = counts.get(name, data.Counts())
        row: list[Any] = [
            name,
            info.person or "–",
            ", ".join(sorted(info.groups)) or "–",
            when(seen.get(name), view.snap.zone),
            f"{c.allowed} allowed, {c.blocked} blocked",
            _usage(view, f"device:{name}"),
        ]
        if view.can_write:
            row.append(_unlock_form(view, name))
        rows.append(row)
    return table(headers, rows)


def _unlock_form(view: data.View, device: str) -> Html:
    fields = hidden("device", device) + field("for", select("minutes", UNLOCK_CHOICES, "30"))
    return form(
        "/dashboard/unlock",
        view.csrf,
        fields,
        "Unlock",
        cls="row",
        confirm=f"Let {device} through for this long?",
    )


def _unnamed(names: list[str], counts: dict[str, data.Counts]) -> Html:
    return table(
        ("Device", "Today"),
        [(n, f"{counts[n].allowed} allowed, {counts[n].blocked} blocked") for n in names],
    ) + Html('<p class="muted">Name them in the rules file (devices: ips or macs).</p>')


def _people(view: data.View, counts: dict[str, data.Counts]) -> Html:
    snap = view.snap
    rows = []
    for person, groups in sorted(snap.person_groups.items()):
        devices = sorted(n for n, d in snap.devices.items() if d.person == person)
        c = counts.get(person, data.Counts())
        rows.append(
            (
                person,
                ", ".join(sorted(groups)) or "–",
                ", ".join(devices) or "–",
                f"{c.allowed} allowed, {c.blocked} blocked",
                _usage(view, f"person:{person}"),
            )
        )
    return table(("Person", "Groups", "Devices", "Today", "Counted"), rows)


def _pin_form(view: data.View) -> Html:
    fields = join(
        [
            field(
                "Request id (on the block page)",
                Html(
                    '<input type="text" name="request_id" required maxlength="64" '
                    'autocomplete="off" spellcheck="false">'
                ),
            ),
            field(
                "PIN valid for (minutes)",
                Html('<input type="number" name="minutes" min="1" max="60" value="15" required>'),
            ),
            hidden("back", "/dashboard/devices"),
        ]
    )
    note = h(
        '<p class="muted">The PIN works once, for the device that was blocked, and unlocks it '
        "for {} minutes. It is shown only once.</p>",
        view.snap.overrides.unlock_minutes,
    )
    return note + form("/dashboard/override", view.csrf, fields, "Make a PIN", cls="stack")
