"""Names in the rules that must refer to something defined elsewhere in the same file.

A typo such as ``groups: [kid]`` would otherwise silently match nobody — a rule a parent
believes in that never fires. Each problem names where it is and what is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from governance.errors import Location

if TYPE_CHECKING:
    from governance.schema import AppliesTo, Rules, When

Problem = tuple[Location, str]
_ONE = {"groups": "group", "people": "person", "devices": "device"}
Need = Callable[[str, set[str], list[str], Location], None]


def check_references(rules: Rules) -> list[Problem]:
    """Every dangling reference and duplicate name, in document order."""
    problems: list[Problem] = []
    groups, people, devices = set(rules.groups), set(rules.people), set(rules.devices)

    def need(kind: str, known: set[str], names: list[str], loc: Location) -> None:
        for i, name in enumerate(names):
            if name not in known:
                hint = f"; defined {kind}: {', '.join(sorted(known))}" if known else ""
                problems.append(((*loc, i), f"unknown {_ONE.get(kind, kind)} {name!r}{hint}"))

    need(
        "groups",
        groups,
        rules.settings.unknown_devices.groups,
        ("settings", "unknown_devices", "groups"),
    )
    for name, person in rules.people.items():
        need("groups", groups, person.groups, ("people", name, "groups"))
    for name, device in rules.devices.items():
        if device.person is not None and device.person not in people:
            problems.append((("devices", name, "person"), f"unknown person {device.person!r}"))
        need("groups", groups, device.groups, ("devices", name, "groups"))
    for i, entry in enumerate(rules.allowlist):
        if entry.device is not None and entry.device not in devices:
            problems.append((("allowlist", i, "device"), f"unknown device {entry.device!r}"))
    for i, rule in enumerate(rules.time_rules):
        if rule.applies_to is not None:
            _selector(
                rule.applies_to, ("time_rules", i, "applies_to"), need, groups, people, devices
            )
    for i, policy in enumerate(rules.policies):
        _selector(policy.when, ("policies", i, "when"), need, groups, people, devices)
    problems += _duplicates("time_rules", [r.name for r in rules.time_rules])
    problems += _duplicates("policies", [p.name for p in rules.policies])
    problems += _duplicates("providers", [p.name for p in rules.providers])
    return problems


def _selector(
    sel: AppliesTo | When,
    loc: Location,
    need: Need,
    groups: set[str],
    people: set[str],
    devices: set[str],
) -> None:
    need("groups", groups, sel.groups, (*loc, "groups"))
    need("people", people, sel.people, (*loc, "people"))
    need("devices", devices, sel.devices, (*loc, "devices"))


def _duplicates(section: str, names: list[str]) -> list[Problem]:
    seen: set[str] = set()
    problems: list[Problem] = []
    for i, name in enumerate(names):
        if name in seen:
            problems.append(((section, i, "name"), f"the name {name!r} is used twice"))
        seen.add(name)
    return problems
