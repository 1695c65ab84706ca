"""Warnings about rules that are valid but probably not what a parent meant."""

from __future__ import annotations

from governance.facts import Inspect
from governance.snapshot import Snapshot


def warnings_for(snap: Snapshot) -> list[str]:
    notes = []
    sni_devices = {n for n, d in snap.devices.items() if d.inspect is Inspect.SNI}
    for policy in snap.policies:
        if not policy.needs_body:
            continue
        targets = set(policy.devices) or {
            n
            for n, d in snap.devices.items()
            if (not policy.people or d.person in policy.people)
            and (not policy.groups or d.groups & policy.groups)
        }
        blind = sorted(targets & sni_devices)
        if blind:
            notes.append(
                f"policy '{policy.name}' looks at request bodies (models or prompt), "
                f"which are never read for inspect: sni devices: {', '.join(blind)}"
            )
    if snap.rules.overrides.master_pin is None:
        notes.append(
            "no overrides.master_pin: only per-request PINs made with "
            "`hearthgate override create` can unblock a request"
        )
    return notes
