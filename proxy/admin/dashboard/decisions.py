"""The dashboard's decision log: filters, pages of 50, and why each request went as it did.

Filters are plain GET parameters (``device``, ``person``, ``provider``, ``category``, ``blocked=1``,
``period`` of 1h/24h/7d/30d/all, ``page``), so a filtered view can be bookmarked.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from governance.facts import Category
from proxy.admin.dashboard import data
from proxy.admin.dashboard.html import (
    Html,
    badge,
    checkbox,
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
from proxy.store import queries

CATEGORIES = tuple(c.value for c in Category)
PAGE_SIZE = 50
PERIODS = (
    ("1h", "last hour"),
    ("24h", "last 24 hours"),
    ("7d", "last 7 days"),
    ("30d", "last 30 days"),
    ("all", "everything"),
)
SPANS = {
    "1h": timedelta(hours=1),
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
STAGE_WORDS = {
    "emergency": "emergency override",
    "allowlist": "always allowed",
    "override": "unlocked",
    "time_rule": "time rule",
    "policy": "rule",
    "quota": "allowance",
    "default": "no rule",
    "error": "gate error",
}
FILTERS = ("device", "person", "provider", "category", "blocked", "period")


def page_number(text: str | None) -> int:
    try:
        return min(max(1, int(text or 1)), 100_000)
    except ValueError:
        return 1


async def render(view: data.View, query: dict[str, str]) -> tuple[str, Html]:
    chosen = {k: query.get(k, "") for k in FILTERS}
    chosen["period"] = chosen["period"] if chosen["period"] in dict(PERIODS) else "24h"
    page = page_number(query.get("page"))
    span = SPANS.get(chosen["period"])
    catalog = view.gate.catalog
    flt = queries.LogFilter(
        device=chosen["device"] or None,
        person=chosen["person"] or None,
        provider=chosen["provider"] or None,
        providers=catalog.names_in(chosen["category"]) if chosen["category"] else None,
        blocked=chosen["blocked"] == "1",
        since=view.gate.clock() - span if span else None,
        limit=PAGE_SIZE + 1,
        offset=(page - 1) * PAGE_SIZE,
    )
    categories = catalog.categories()
    rows = await view.store.read(lambda db: queries.decisions(db, flt, categories))
    seen = await view.store.read(services_seen)
    more, rows = len(rows) > PAGE_SIZE, rows[:PAGE_SIZE]
    body = join(
        [
            section("Filter", _filters(view, chosen, seen), cls="filters"),
            section(f"Page {page}", _rows(view, rows) + _pager(chosen, page, more)),
        ]
    )
    return "Decisions", body


def _options(names: Any, current: str) -> list[tuple[str, str]]:
    found = sorted(set(names) | ({current} if current else set()))
    return [("", "any")] + [(n, n) for n in found]


def services_seen(db: Any) -> list[str]:
    """The services that appear in the log: the filter offers only those."""
    rows = db.rows("SELECT DISTINCT provider FROM decisions WHERE provider IS NOT NULL")
    return sorted(str(r["provider"]) for r in rows)


def _filters(view: data.View, chosen: dict[str, str], seen: list[str]) -> Html:
    snap = view.snap
    providers = seen
    controls = join(
        [
            field(
                "Device",
                select("device", _options(snap.devices, chosen["device"]), chosen["device"]),
            ),
            field(
                "Person",
                select("person", _options(snap.person_groups, chosen["person"]), chosen["person"]),
            ),
            field(
                "Service",
                select("provider", _options(providers, chosen["provider"]), chosen["provider"]),
            ),
            field(
                "Kind",
                select("category", _options(CATEGORIES, chosen["category"]), chosen["category"]),
            ),
            field("Period", select("period", PERIODS, chosen["period"])),
            checkbox("blocked only", "blocked", chosen["blocked"] == "1"),
        ]
    )
    return h(
        '<form method="get" action="/dashboard/decisions" class="grid auto">{}'
        '<button type="submit">Show</button></form>',
        controls,
    )


def _rows(view: data.View, rows: list[dict[str, Any]]) -> Html:
    zone = view.snap.zone
    shown = []
    for r in rows:
        rule = "the default" if r["rule"] == "settings.default" else r["rule"]
        why = h(
            "<strong>{}</strong>{} — {}",
            STAGE_WORDS.get(r["stage"], r["stage"]),
            h(" · {}", rule) if rule else "",
            r["reason"],
        )
        service = h(
            "{}<br><small>{}{}</small>",
            r["provider"] or "–",
            h("{} · ", r["category"]) if r.get("category") else "",
            r["host"],
        )
        tokens = (
            f"tokens: {r['tokens_in'] or 0} in, {r['tokens_out'] or 0} out"
            if r["tokens_in"] is not None or r["tokens_out"] is not None
            else "–"
        )
        shown.append(
            (
                when(r["ts"], zone, "%d %b %H:%M:%S"),
                h("{}<br><small>{}</small>", r["device"], r["person"] or ""),
                service,
                r["model"] or "–",
                badge(r["allowed"], r["action"], r["enforced"]),
                why,
                h("{} · {}", r["status"] if r["status"] is not None else "–", tokens),
                _request_cell(view, r),
            )
        )
    headers = ("Time", "Device", "Service", "Model", "Decision", "Why", "Status", "Request")
    return table(headers, shown, cls="log")


def _request_cell(view: data.View, row: dict[str, Any]) -> Html:
    rid = h("<code>{}</code>", row["request_id"])
    if not view.can_write or row["allowed"] or not row["request_id"]:
        return rid
    fields = (
        hidden("request_id", row["request_id"])
        + hidden("minutes", 15)
        + hidden("back", "/dashboard/decisions")
    )
    return rid + form("/dashboard/override", view.csrf, fields, "Make a PIN", cls="inline")


def _pager(chosen: dict[str, str], page: int, more: bool) -> Html:
    def link(number: int, text: str, rel: str) -> Html:
        params = {k: v for k, v in chosen.items() if v} | {"page": str(number)}
        return h('<a rel="{}" href="/dashboard/decisions?{}">{}</a>', rel, urlencode(params), text)

    parts = [link(page - 1, "← newer", "prev") if page > 1 else Html("")]
    parts.append(link(page + 1, "older →", "next") if more else Html(""))
    return h('<nav class="pager">{}</nav>', join(parts))
