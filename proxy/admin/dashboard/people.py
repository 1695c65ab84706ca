"""The dashboard's cards, one per person: what is true for them right now, how today went,
and the one-tap buttons (pause 1 h, unlock 30 min, +30 minutes).

"Right now" is the decision the pipeline would make for a request from the person's first
device at this moment, said in a parent's words: allowed; blocked by "bedtime" until 07:00;
paused until 18:30; unlocked until 18:30; today's allowance used up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from governance.facts import Decision, Identity, RequestFacts, Stage
from governance.snapshot import Snapshot
from governance.state import RuntimeState
from proxy.admin.dashboard import charts, data
from proxy.admin.dashboard.html import Html, form, h, hidden, join
from proxy.rules import explain


@dataclass(frozen=True, slots=True)
class Now:
    kind: str  # ok | blocked | paused | unlocked | emergency | warn
    text: str


def status(snap: Snapshot, state: RuntimeState, person: str, now: datetime) -> Now:
    """What a request from this person would meet now (a plain request: no model, no
    prompt, so content rules stay out of it)."""
    devices = sorted(n for n, d in snap.devices.items() if d.person == person)
    if devices:
        facts = explain.hypothetical(snap, devices[0], endpoint="other")
    else:
        groups = snap.person_groups.get(person, frozenset())
        ident = Identity("-", f"person:{person}", person, groups, known=True)
        facts = RequestFacts("dashboard", ident, "api.openai.com", "openai")
    return describe(explain.evaluate(snap, state, facts, now))


def describe(decision: Decision) -> Now:
    until = _clock(decision.until)
    if decision.rule == "pause":
        return Now("paused", f"Paused until {until}" if until else "Paused")
    if decision.stage is Stage.EMERGENCY:
        return Now("emergency", "Allowed: the emergency override is on")
    if decision.stage is Stage.OVERRIDE:
        return Now("unlocked", f"Unlocked until {until}" if until else "Unlocked")
    if decision.stage is Stage.ALLOWLIST:
        return Now("ok", "Always allowed (allowlist)")
    if not decision.allowed:
        if decision.stage is Stage.TIME_RULE:
            text = f"Blocked by “{decision.rule}”" + (f" until {until}" if until else "")
        elif decision.stage is Stage.QUOTA:
            text = f"Today's allowance is used up (“{decision.rule}”)"
        elif decision.stage is Stage.DEFAULT:
            text = "Blocked: nothing in the rules allows it"
        else:
            text = f"Blocked by “{decision.rule}”"
        return Now("blocked", text)
    if decision.stage is Stage.TIME_RULE and decision.rule:
        return Now("warn", f"Allowed, noted by “{decision.rule}”")
    return Now("ok", "Allowed")


def _clock(until: str | None) -> str | None:
    if not until:
        return None
    try:
        moment = datetime.fromisoformat(until)
    except ValueError:
        return None
    return moment.strftime("%H:%M")


def card(
    view: data.View,
    person: str,
    now: Now,
    today: dict[str, Any],
    bars: list[data.QuotaBar],
) -> Html:
    groups = ", ".join(sorted(view.snap.person_groups.get(person, ()))) or "no group"
    facts = h(
        '<p class="today"><strong>{}</strong> minutes · <strong>{}</strong> requests · '
        "<strong>{}</strong> blocked today</p>",
        today.get("minutes", 0),
        today.get("allowed", 0),
        today.get("blocked", 0),
    )
    meters = join(_bar(bar) for bar in bars)
    buttons = _buttons(view, person, now) if view.can_write else Html("")
    return h(
        '<article class="person card {}" id="person-{}"><header><h2>{}</h2>'
        '<small class="muted">{}</small></header>'
        '<p class="now {}" role="status">{}</p>{}{}{}</article>',
        now.kind,
        person,
        person,
        groups,
        now.kind,
        now.text,
        facts,
        meters,
        buttons,
    )


def _bar(bar: data.QuotaBar) -> Html:
    used = f"{bar.used:.2f}" if "$" in bar.what else f"{int(bar.used)}"
    limit = f"{bar.limit:.2f}" if "$" in bar.what else f"{int(bar.limit)}"
    text = f"{used} of {limit} {bar.what}"
    if bar.bonus:
        text += f" (+{int(bar.bonus)} extra today)"
    return h('<div class="quota"><p>{}</p>{}</div>', text, charts.meter(bar.used, bar.limit, text))


def _buttons(view: data.View, person: str, now: Now) -> Html:
    back = hidden("back", f"/dashboard#person-{person}")
    who = hidden("person", person)
    if now.kind == "paused":
        first = form("/dashboard/resume", view.csrf, back + who, "Resume now", cls="inline")
    else:
        first = form(
            "/dashboard/pause",
            view.csrf,
            back + who + hidden("minutes", 60),
            "Pause 1 h",
            cls="inline danger",
        )
    unlock = form(
        "/dashboard/unlock-person",
        view.csrf,
        back + who + hidden("minutes", 30),
        "Unlock 30 min",
        cls="inline",
    )
    extra = form(
        "/dashboard/bonus",
        view.csrf,
        back + who + hidden("minutes", 30),
        "+30 minutes",
        cls="inline",
    )
    return h('<div class="actions">{}{}{}</div>', first, unlock, extra)
