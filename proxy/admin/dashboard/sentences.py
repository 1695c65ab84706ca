"""The rules in a parent's words: each time rule and policy as one plain sentence.

"Bedtime for kids: Sunday to Thursday, 21:00 to 07:00 — blocked." No YAML, no ``null``.
"""

from __future__ import annotations

from collections.abc import Sequence

from governance.schema import DAY_NAMES, AppliesTo, Policy, Quota, TimeRule, When

DAY_WORDS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
ENDPOINT_WORDS = {
    "chat": "chat",
    "completions": "text completion",
    "responses": "chat (responses)",
    "embeddings": "embeddings",
    "images": "pictures",
    "audio": "voice and audio",
    "realtime": "live voice",
    "files": "file uploads",
    "other": "other requests",
    "web-app": "the services' websites",
}
ACTION_WORDS = {
    "block": "blocked",
    "allow": "allowed",
    "alert": "allowed, and you get an alert",
    "log": "allowed, and noted in the log",
}
TOPIC_WORDS = {"self_harm": "self-harm or suicide"}


def days_text(days: Sequence[str]) -> str:
    idx = sorted({DAY_NAMES.index(d) for d in days if d in DAY_NAMES})
    if len(idx) == 7:
        return "every day"
    if idx == [5, 6]:
        return "Saturday and Sunday"
    for shift in range(7):  # a run of days, perhaps across the week's end (Sunday to Thursday)
        run = [(shift + i) % 7 for i in range(len(idx))]
        if sorted(run) == idx and len(idx) > 2:
            return f"{DAY_WORDS[run[0]]} to {DAY_WORDS[run[-1]]}"
    return " and ".join(", ".join(DAY_WORDS[i] for i in idx).rsplit(", ", 1))


def who_text(sel: AppliesTo | When | None) -> str:
    if sel is None or not (sel.groups or sel.people or sel.devices):
        return "everyone"
    parts = list(sel.groups) + list(sel.people) + [f"the device {d}" for d in sel.devices]
    return _and(parts)


def _and(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def time_rule(rule: TimeRule) -> str:
    hours = "all day" if rule.start == rule.end else f"{rule.start} to {rule.end}"
    name = rule.name.replace("-", " ").replace("_", " ")
    return (
        f"{name[:1].upper()}{name[1:]} for {who_text(rule.applies_to)}: "
        f"{days_text(rule.days)}, {hours} — {ACTION_WORDS[rule.action]}."
    )


def policy(p: Policy) -> str:
    what = _conditions(p.when)
    subject = f"for {who_text(p.when)}" + (f", {what}" if what else "")
    if p.quota is not None:
        return f"{p.name}: {subject} — at most {_quota(p.quota)}; then {ACTION_WORDS[p.action]}."
    return f"{p.name}: {subject} — {ACTION_WORDS[p.action]}."


def _conditions(w: When) -> str:
    parts = []
    if w.endpoints:
        parts.append(_and([ENDPOINT_WORDS.get(e, e) for e in w.endpoints]))
    if w.providers:
        parts.append("on " + _and(list(w.providers)))
    if w.hosts:
        parts.append("on " + _and(list(w.hosts)))
    if w.models:
        parts.append("the models " + _and(list(w.models)))
    if w.models_not:
        parts.append("any model other than " + _and(list(w.models_not)))
    prompt = w.prompt
    if prompt is not None:
        if prompt.pii:
            parts.append("prompts with personal data (" + ", ".join(prompt.pii) + ")")
        if prompt.keywords:
            parts.append("prompts with the words " + _and([f"“{k}”" for k in prompt.keywords]))
        if prompt.regex:
            parts.append("prompts matching a pattern")
        topics = getattr(prompt, "topics", [])
        if topics:
            parts.append("prompts about " + _and([TOPIC_WORDS.get(t, t) for t in topics]))
    if w.max_prompt_chars is not None:
        parts.append(f"prompts longer than {w.max_prompt_chars} characters")
    return "; ".join(parts)


def _quota(q: Quota) -> str:
    parts = []
    per = {"day": "a day", "week": "a week"}
    for period in ("day", "week"):
        for what, unit in (
            ("minutes", "minutes of use"),
            ("requests", "requests"),
            ("tokens", "tokens"),
            ("cost", "dollars"),
        ):
            limit = getattr(q, f"{what}_per_{period}")
            if limit is not None:
                amount = f"${limit:.2f}" if what == "cost" else f"{int(limit)} {unit}"
                parts.append(f"{amount} {per[period]}")
    who = "each device" if q.per == "device" else "each person"
    return _and(parts) + f" ({who})"
