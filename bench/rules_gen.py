"""A large, varied rules file for the pipeline benchmark: 200 devices, 50 time rules, 100 policies.

Deterministic (no randomness): the same text every run. Devices are matched by IP, by MAC,
by CIDR; some are inspected at host level only. Time rules have overnight, daytime and
all-day windows on varied days, for groups, people or devices. Policies cover every kind of
condition — groups, people, devices, providers, hosts, endpoints, model globs, prompt
keywords, regexes and personal data, prompt size — and ten carry quotas.
"""

from __future__ import annotations

from typing import Any

import yaml

GROUPS = ("parents", "kids", "teens", "guests", "grandparents", "tutors", "school", "gamers")
PEOPLE = 40
DEVICES = 200
TIME_RULES = 50
POLICIES = 100

_PERSON_GROUPS = (
    ["parents"],
    ["kids"],
    ["teens", "gamers"],
    ["kids", "school"],
    ["grandparents"],
    ["teens", "school"],
    ["kids", "gamers"],
    ["tutors"],
)
_WINDOWS = (
    ("21:00", "07:00"),
    ("22:30", "06:30"),
    ("08:00", "13:00"),
    ("13:00", "15:00"),
    ("00:00", "00:00"),
    ("18:00", "19:00"),
    ("06:00", "07:30"),
    ("15:30", "17:00"),
    ("23:00", "05:00"),
    ("12:00", "12:45"),
)
_DAYS = (
    ["sun", "mon", "tue", "wed", "thu"],
    ["fri", "sat"],
    ["mon", "tue", "wed", "thu", "fri"],
    ["sat", "sun"],
    ["mon", "wed", "fri"],
    ["tue", "thu"],
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
)
_KEYWORDS = (
    ["homework answers", "essay writer", "cheat"],
    ["dating", "romance"],
    ["gambling", "casino", "betting"],
    ["vape", "alcohol"],
    ["diet pills", "skip meals"],
)
_REGEXES = (
    r"\bhow (?:do|can) i (?:hack|break into)\b",
    r"\b(?:buy|order) .{0,20} online\b",
    r"\bsolve (?:this|my) (?:test|exam)\b",
    r"\bignore (?:all|previous) instructions\b",
)
_PII_SETS = (
    ["email", "phone"],
    ["email", "phone", "address"],
    ["card", "national_id"],
    ["email", "phone", "card", "address", "national_id"],
)


def person(i: int) -> str:
    return f"person{i % PEOPLE:02d}"


def device(i: int) -> str:
    return f"dev{i % DEVICES:03d}"


def device_ip(i: int) -> str | None:
    """The plain IP a device is known by (None for MAC-only and CIDR devices)."""
    if i % 25 == 5 or i % 20 == 19:
        return None
    return f"10.1.0.{i + 1}"


def device_cidr(i: int) -> str | None:
    return f"10.20.{i}.0/28" if i % 20 == 19 else None


def device_mac(i: int) -> str | None:
    return f"02:00:00:00:{i // 256:02x}:{i % 256:02x}" if i % 3 == 0 or i % 25 == 5 else None


def _people() -> dict[str, Any]:
    return {person(i): {"groups": _PERSON_GROUPS[i % len(_PERSON_GROUPS)]} for i in range(PEOPLE)}


def _devices() -> dict[str, Any]:
    devices = {}
    for i in range(DEVICES):
        entry: dict[str, Any] = {}
        if i < 160:
            entry["person"] = person(i)
        else:
            entry["groups"] = [("guests", "school", "gamers")[i % 3]]
        ips = [ip for ip in (device_ip(i), device_cidr(i)) if ip]
        if ips:
            entry["ips"] = ips
        if device_mac(i):
            entry["macs"] = [device_mac(i)]
        if i % 10 == 7:
            entry["inspect"] = "sni"
        devices[device(i)] = entry
    return devices


def _time_rule(i: int) -> dict[str, Any]:
    start, end = _WINDOWS[i % len(_WINDOWS)]
    if i % 5 in (0, 1):
        applies = {"groups": [("kids", "teens", "school", "gamers")[i % 4]]}
    elif i % 5 in (2, 3):
        applies = {"people": [person(i * 3), person(i * 3 + 1)]}
    else:
        applies = {"devices": [device(i * 7), device(i * 7 + 3)]}
    return {
        "name": f"time-rule-{i:02d}",
        "start": start,
        "end": end,
        "days": _DAYS[i % len(_DAYS)],
        "action": ("block", "block", "alert", "log")[i % 4],
        "applies_to": applies,
        "priority": 10 + (i * 13) % 200,
        "message": f"Time rule {i} is on.",
    }


def _policy_when(i: int) -> dict[str, Any]:
    kind = i % 10
    who: dict[str, Any] = {"groups": ["kids"]} if i < 20 else {"people": [person(i)]}
    if kind == 0:
        return {"groups": ["kids"], "endpoints": ["images", "audio", "realtime"]}
    if kind == 1:
        return {**who, "models_not": ["gpt-4o-mini*", "claude-*haiku*", "gemini-*flash*"]}
    if kind == 2:
        return {
            **who,
            "prompt": {
                "keywords": _KEYWORDS[i % len(_KEYWORDS)],
                "regex": [_REGEXES[i % len(_REGEXES)]],
            },
        }
    if kind == 3:
        return {"devices": [device(i * 2), device(i * 2 + 1)], "models": ["gpt-4*", "o1*"]}
    if kind == 4:
        return {"people": [person(i)]}
    if kind == 5:
        return {"providers": ["anthropic"], "groups": ["guests"]}
    if kind == 6:
        return {**who, "prompt": {"pii": _PII_SETS[i % len(_PII_SETS)]}}
    if kind == 7:
        return {"hosts": ["api.anthropic.com", "*.openai.azure.com"], "people": [person(i)]}
    if kind == 8:
        return {"groups": ["school"], "max_prompt_chars": 4000 + i}
    return {"people": [person(i)], "endpoints": ["embeddings", "files"]}


def _policy(i: int) -> dict[str, Any]:
    kind = i % 10
    action = {2: "alert", 6: "alert", 7: "log", 9: "allow"}.get(kind, "block")
    policy: dict[str, Any] = {
        "name": f"policy-{i:03d}",
        "priority": 10 + (i * 7) % 90,
        "when": _policy_when(i),
        "action": action,
    }
    if kind == 4:
        policy["quota"] = {
            "per": "person",
            "requests_per_day": 50 + i,
            "tokens_per_day": 100_000 + 1000 * i,
        }
    return policy


def rules_document() -> dict[str, Any]:
    return {
        "version": 1,
        "settings": {"timezone": "Europe/Berlin", "unknown_devices": {"groups": ["guests"]}},
        "groups": {g: {} for g in GROUPS},
        "people": _people(),
        "devices": _devices(),
        "allowlist": [
            {"device": device(3)},
            {"cidr": "10.99.0.0/24"},
            {"mac": "02:00:00:00:00:63"},
            {"user": person(0)},
        ],
        "time_rules": [_time_rule(i) for i in range(TIME_RULES)],
        "policies": [_policy(i) for i in range(POLICIES)],
    }


def rules_text() -> str:
    return yaml.safe_dump(rules_document(), sort_keys=False)
