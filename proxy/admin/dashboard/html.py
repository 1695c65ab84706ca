"""The dashboard's HTML: escaping by default, the page frame, and small building blocks.

Nothing here trusts a value: ``h(template, ...)`` escapes every argument unless it is
already ``Html`` (markup built by these helpers), so a device called ``<script>`` or a reason
with quotes prints as text. Pages use no inline styles or scripts (the Content-Security-Policy
allows only the files under /dashboard/static/).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import datetime, tzinfo
from typing import Any

from proxy.store.state import parse_ts

NAV = (
    ("/dashboard", "Home"),
    ("/dashboard/decisions", "Decisions"),
    ("/dashboard/devices", "Devices & people"),
    ("/dashboard/rules", "Rules"),
    ("/dashboard/report", "Report"),
)


class Html(str):
    """Markup that is safe to insert as it is; ``+`` with plain text escapes the text."""

    __slots__ = ()

    def __add__(self, other: str) -> Html:
        return Html(str.__add__(self, esc(other)))

    def __radd__(self, other: str) -> Html:
        return Html(str.__add__(esc(other), self))


def esc(value: Any) -> Html:
    """``value`` as text in HTML (attributes included); None is empty."""
    if isinstance(value, Html):
        return value
    return Html(html.escape("" if value is None else str(value), quote=True))


def h(template: str, *args: Any, **kwargs: Any) -> Html:
    """``template.format`` with every argument escaped (``Html`` arguments pass as they are)."""
    return Html(template.format(*(esc(a) for a in args), **{k: esc(v) for k, v in kwargs.items()}))


def join(parts: Iterable[Any], sep: str = "") -> Html:
    return Html(sep.join(esc(p) for p in parts))


def when(ts: str | datetime | None, zone: tzinfo, fmt: str = "%a %d %b %H:%M") -> Html:
    """A log timestamp in the household's zone, with the exact UTC time in its ``datetime``."""
    moment = parse_ts(ts) if isinstance(ts, str) else ts
    if moment is None:
        return Html("–")
    local = moment.astimezone(zone)
    return h('<time datetime="{}">{}</time>', moment.isoformat(), local.strftime(fmt))


def badge(allowed: Any, action: str, enforced: Any = 1) -> Html:
    if action == "block" and not enforced:
        return Html('<span class="badge warn">would block</span>')
    kind = "ok" if allowed else "bad"
    return h('<span class="badge {}">{}</span>', kind, "blocked" if not allowed else action)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], cls: str = "") -> Html:
    """A table that turns into labelled cards on a phone (labels come from ``data-label``)."""
    head = join(h("<th>{}</th>", c) for c in headers)

    def cells(row: Sequence[Any]) -> Html:
        return join(
            h('<td data-label="{}"><div>{}</div></td>', c, v)
            for c, v in zip(headers, row, strict=True)
        )

    body = join(h("<tr>{}</tr>", cells(r)) for r in rows)
    if not body:
        return Html('<p class="muted">Nothing yet.</p>')
    return h(
        '<table class="{}"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', cls, head, body
    )


def section(title: str, body: Html, cls: str = "") -> Html:
    return h('<section class="card {}"><h2>{}</h2>{}</section>', cls, title, body)


def hidden(name: str, value: Any) -> Html:
    return h('<input type="hidden" name="{}" value="{}">', name, value)


def form(
    action: str, csrf: str, fields: Html, button: str, *, cls: str = "", confirm: str = ""
) -> Html:
    """A POST form carrying the session's CSRF token; ``confirm`` asks before sending."""
    extra = h(' data-confirm="{}"', confirm) if confirm else Html("")
    return h(
        '<form method="post" action="{}" class="{}"{}>{}{}<button type="submit">{}</button></form>',
        action,
        cls,
        extra,
        hidden("csrf", csrf),
        fields,
        button,
    )


def select(name: str, options: Iterable[tuple[str, str]], chosen: str | None = "") -> Html:
    opts = join(
        h('<option value="{}"{}>{}</option>', v, Html(" selected") if v == chosen else "", label)
        for v, label in options
    )
    return h('<select name="{}" id="f-{}">{}</select>', name, name, opts)


def field(label: str, control: Html) -> Html:
    return h("<label><span>{}</span>{}</label>", label, control)


def checkbox(label: str, name: str, checked: bool) -> Html:
    mark = Html(" checked") if checked else ""
    return h(
        '<label class="check"><input type="checkbox" name="{}" value="1"{}>{}</label>',
        name,
        mark,
        label,
    )


def flashes(messages: Sequence[tuple[str, str]]) -> Html:
    return join(
        h('<p class="flash {}" role="status">{}</p>', kind, text) for kind, text in messages
    )


def layout(
    title: str,
    body: Html,
    *,
    active: str = "",
    who: str = "",
    role: str = "",
    csrf: str = "",
    messages: Sequence[tuple[str, str]] = (),
) -> str:
    """The whole page: header with navigation and sign-out, messages, then ``body``."""
    nav = join(
        h('<a href="{}"{}>{}</a>', href, Html(' aria-current="page"') if href == active else "", n)
        for href, n in NAV
    )
    signout = (
        h(
            '<span class="who">{} <small>({})</small></span>{}',
            who,
            role,
            form("/logout", csrf, Html(""), "Sign out", cls="inline"),
        )
        if who
        else Html("")
    )
    header = (
        h(
            '<header><a class="brand" href="/dashboard">hearthgate</a><nav>{}</nav>{}</header>',
            nav,
            signout,
        )
        if who
        else Html('<header><span class="brand">hearthgate</span></header>')
    )
    return h(
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        "<title>{} · hearthgate</title>"
        '<link rel="stylesheet" href="/dashboard/static/dashboard.css">'
        '<script src="/dashboard/static/dashboard.js" defer></script>'
        "</head><body>{}<main><h1>{}</h1>{}{}</main></body></html>",
        title,
        header,
        title,
        flashes(messages),
        body,
    )
