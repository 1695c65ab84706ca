"""The dashboard's rules page: the rules as loaded (file, load time, last reload error) and a
"what would happen" form that runs a hypothetical request through the pipeline (explain.py).
"""

from __future__ import annotations

import asyncio
import ipaddress
from datetime import datetime
from typing import TYPE_CHECKING, Any

import yaml

from governance.errors import StateError
from proxy.admin.dashboard import data, sentences
from proxy.admin.dashboard.html import Html, badge, field, h, join, section, table, when
from proxy.rules import explain

if TYPE_CHECKING:
    from governance.schema import Rules

FIELDS = ("device", "at", "host", "model", "prompt")


async def render(view: data.View, query: dict[str, str]) -> tuple[str, Html]:
    asked = {k: query.get(k, "").strip() for k in FIELDS}
    answer = _answer(view, asked) if asked["device"] else Html("")
    body = join(
        [
            section("The rules in force", _sentences(view)),
            section("What would happen?", _form(view, asked) + answer),
            # validated again the first time after a load (the cache holds no models):
            # in a worker thread, not on the proxy's event loop
            section(
                "The rules file", _loaded(view, await asyncio.to_thread(view.gate.rules.models))
            ),
        ]
    )
    return "Rules", body


def _loaded(view: data.View, models: Rules) -> Html:
    holder, zone = view.gate.rules, view.snap.zone
    error = (
        h(
            '<div class="flash error"><p><strong>The last edit could not be loaded</strong> '
            "({}); the rules below stay in force until the file is fixed:</p><pre>{}</pre></div>",
            when(holder.last_error_at, zone),
            holder.last_error,
        )
        if holder.last_error
        else Html("")
    )
    facts = h(
        "<p>File <code>{}</code><br>loaded {} · version <code>{}</code></p>",
        str(holder.path),
        when(holder.loaded_at, zone),
        view.snap.version,
    )
    text = yaml.safe_dump(data.redacted_rules(models), sort_keys=False, allow_unicode=True)
    return (
        error
        + facts
        + h(
            '<details><summary>Show the file as loaded</summary><pre class="yaml">{}</pre>'
            "</details>",
            text,
        )
    )


def _sentences(view: data.View) -> Html:
    rules = view.snap.rules
    times = [sentences.time_rule(r) for r in sorted(rules.time_rules, key=lambda r: r.priority)]
    policies = [sentences.policy(p) for p in sorted(rules.policies, key=lambda p: p.priority)]
    default = (
        "Anything no rule speaks about is allowed."
        if rules.settings.default == "allow"
        else "Anything no rule allows is blocked."
    )
    mode = (
        " Watching only: nothing is blocked yet, would-be blocks are noted."
        if rules.settings.mode == "observe"
        else ""
    )
    items = join(h("<li>{}</li>", t) for t in [*times, *policies])
    listed = h('<ul class="sentences">{}</ul>', items) if items else Html("")
    return listed + h("<p>{}{}</p>", default, mode)


def _form(view: data.View, asked: dict[str, str]) -> Html:
    devices = join(h('<option value="{}">', n) for n in sorted(view.snap.devices))
    hosts = join(
        h('<option value="{}">', host)
        for p in view.gate.catalog.providers
        for host in p.hosts
        if not host.startswith("*")
    )
    controls = join(
        [
            field(
                "Device (name or IP)",
                h('<input name="device" list="dl-devices" required value="{}">', asked["device"]),
            ),
            field(
                "At (household time; empty: now)",
                h('<input type="datetime-local" name="at" value="{}">', asked["at"]),
            ),
            field(
                "Service host",
                h(
                    '<input name="host" list="dl-hosts" value="{}">',
                    asked["host"] or "api.openai.com",
                ),
            ),
            field("Model (optional)", h('<input name="model" value="{}">', asked["model"])),
            field(
                "Prompt (optional)",
                h('<textarea name="prompt" rows="2">{}</textarea>', asked["prompt"]),
            ),
        ]
    )
    return h(
        '<form method="get" action="/dashboard/rules" class="stack">{}'
        '<datalist id="dl-devices">{}</datalist><datalist id="dl-hosts">{}</datalist>'
        '<button type="submit">Explain</button></form>',
        controls,
        devices,
        hosts,
    )


def _answer(view: data.View, asked: dict[str, str]) -> Html:
    snap, state = view.snap, view.gate.cache.state
    try:
        at = _moment(view, asked["at"])
        _check_device(view, asked["device"])
        facts = explain.hypothetical(
            snap,
            asked["device"],
            asked["host"] or "api.openai.com",
            asked["model"] or None,
            asked["prompt"] or None,
        )
    except (StateError, ValueError) as exc:
        return h('<p class="flash error">{}</p>', str(exc))
    final = explain.evaluate(snap, state, facts, at)
    verdict = h(
        '<div class="verdict"><p>{} at {}: {} — <strong>{}</strong>{}: {}</p></div>',
        asked["device"],
        when(at, snap.zone),
        badge(final.allowed, final.action.value, final.enforced),
        final.stage.value,
        h(" · {}", final.rule) if final.rule else "",
        final.reason,
    )
    stages = [(name, _verdict_cell(d)) for name, d in explain.explain(snap, state, facts, at)]
    return verdict + table(("Stage", "Its own verdict"), stages, cls="compact explain")


def _verdict_cell(decision: Any) -> Html:
    if decision is None:
        return Html('<span class="muted">no opinion</span>')
    rule = h(" <strong>{}</strong>", decision.rule) if decision.rule else ""
    return h(
        "{}{}: {}",
        badge(decision.allowed, decision.action.value, decision.enforced),
        rule,
        decision.reason,
    )


def _check_device(view: data.View, device: str) -> None:
    if device in view.snap.devices:
        return
    try:
        ipaddress.ip_address(device.removeprefix("ip:"))
    except ValueError:
        raise ValueError(f"{device!r} is neither a device in the rules nor an IP address") from None


def _moment(view: data.View, text: str) -> datetime:
    if not text:
        return view.gate.clock()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"cannot read the time {text!r}; use YYYY-MM-DDTHH:MM") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=view.snap.zone)
