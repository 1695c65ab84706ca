"""Charts as inline SVG drawn on the server: no script, no CDN, readable on a phone.

Each chart is sized in a small ``viewBox`` (360 units wide, about a phone's width) and
scales to its container, so its text stays legible; every bar carries a ``<title>`` (a
tooltip) and the chart an ``aria-label`` that says the same in words.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo

from proxy.admin.dashboard.data import Counts
from proxy.admin.dashboard.html import Html, h, join

WIDTH = 360
ALLOWED, BLOCKED, TRACK = "#2f855a", "#c53030", "#e2e8f0"


def nice_max(value: int) -> int:
    """The smallest of 1, 2, 5 x 10^n that is at least ``value`` (an axis top)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if factor * step >= value:
                return factor * step
        step *= 10


def hourly_chart(hours: Sequence[tuple[datetime, Counts]], zone: tzinfo) -> Html:
    """Requests per hour over the last 24 hours, allowed below, blocked stacked on top."""
    height, left, bottom, top = 170, 30, 20, 8
    plot = height - bottom - top
    peak = nice_max(max((c.total for _, c in hours), default=0) or 1)
    slot = (WIDTH - left) / max(len(hours), 1)
    marks = (0, peak // 2, peak) if peak % 2 == 0 else (0, peak)
    parts = [_gridline(left, top + plot - plot * m / peak, str(m)) for m in marks]
    for i, (hour, counts) in enumerate(hours):
        x = left + i * slot + 1
        local = hour.astimezone(zone)
        ok_h, bad_h = plot * counts.allowed / peak, plot * counts.blocked / peak
        tip = f"{local:%H}:00 {counts.allowed} allowed, {counts.blocked} blocked"
        parts.append(_rect(x, top + plot - ok_h, slot - 2, ok_h, ALLOWED, tip))
        parts.append(_rect(x, top + plot - ok_h - bad_h, slot - 2, bad_h, BLOCKED, tip))
        if i % 4 == 0:
            parts.append(
                h('<text x="{}" y="{}" font-size="10">{}</text>', x, height - 6, f"{local:%H}h")
            )
    total = sum(c.total for _, c in hours)
    blocked = sum(c.blocked for _, c in hours)
    label = f"Requests per hour, last 24 hours: {total} in all, {blocked} blocked"
    return _svg(height, label, join(parts)) + _legend()


def usage_chart(rows: Sequence[tuple[str, Counts]]) -> Html:
    """Today's requests per device as horizontal bars (allowed, then blocked)."""
    if not rows:
        return Html('<p class="muted">No requests today.</p>')
    row_h = 34
    peak = max(c.total for _, c in rows) or 1
    parts = []
    for i, (name, counts) in enumerate(rows):
        y = i * row_h
        ok_w = (WIDTH - 60) * counts.allowed / peak
        bad_w = (WIDTH - 60) * counts.blocked / peak
        tip = f"{name}: {counts.allowed} allowed, {counts.blocked} blocked"
        parts.append(h('<text x="0" y="{}" font-size="12">{}</text>', y + 12, name))
        parts.append(_rect(0, y + 16, ok_w, 12, ALLOWED, tip))
        parts.append(_rect(ok_w, y + 16, bad_w, 12, BLOCKED, tip))
        parts.append(
            h(
                '<text x="{}" y="{}" font-size="11">{}</text>',
                round(ok_w + bad_w + 4, 1),
                y + 26,
                counts.total,
            )
        )
    label = "Requests today per device: " + ", ".join(f"{n} {c.total}" for n, c in rows)
    return _svg(len(rows) * row_h, label, join(parts)) + _legend()


def meter(used: float, limit: float, label: str) -> Html:
    """One quota as a bar: green while under 80 %, amber up to the limit, red at it."""
    share = 1.0 if limit <= 0 else min(1.0, used / limit)
    colour = ALLOWED if share < 0.8 else "#b7791f" if share < 1 else BLOCKED
    bar = _rect(0, 0, WIDTH * share, 14, colour, label)
    track = h('<rect x="0" y="0" width="{}" height="14" rx="3" fill="{}"/>', WIDTH, TRACK)
    return _svg(14, label, Html(track + bar), cls="meter")


def _svg(height: int, label: str, body: Html, cls: str = "chart") -> Html:
    return h(
        '<svg class="{}" viewBox="0 0 {} {}" width="100%" role="img" aria-label="{}" '
        'preserveAspectRatio="xMinYMin meet">{}</svg>',
        cls,
        WIDTH,
        height,
        label,
        body,
    )


def _rect(x: float, y: float, w: float, hgt: float, fill: str, tip: str) -> Html:
    if hgt <= 0 or w <= 0:
        return Html("")
    return h(
        '<rect x="{}" y="{}" width="{}" height="{}" rx="2" fill="{}"><title>{}</title></rect>',
        round(x, 1),
        round(y, 1),
        round(w, 1),
        round(hgt, 1),
        fill,
        tip,
    )


def _gridline(left: int, y: float, text: str) -> Html:
    return h(
        '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="{}"/>'
        '<text x="0" y="{}" font-size="10">{}</text>',
        left,
        WIDTH,
        round(y, 1),
        round(y, 1),
        TRACK,
        round(y + 3, 1),
        text,
    )


def _legend() -> Html:
    return Html(
        '<p class="legend"><span class="key ok"></span>allowed '
        '<span class="key bad"></span>blocked</p>'
    )
