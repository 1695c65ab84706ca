"""Stage 4: overrides — a device a parent unlocked, directly or with a PIN.

The PIN itself is checked at the edge (a slow hash must not run on the event loop); a valid
PIN opens an unlock window here like ``hearthgate unlock`` does. An unlock may be limited to
one provider.
"""

from __future__ import annotations

from datetime import datetime

from governance.facts import Action, Decision, RequestFacts, Stage
from governance.snapshot import Snapshot
from governance.state import RuntimeState, Unlock

MAX_OVERRIDE_MINUTES = 60
_HOW = {
    "unlock": "unlocked",
    "pin": "unlocked with a PIN",
    "master_pin": "unlocked with the master PIN",
}


def evaluate(
    facts: RequestFacts, snap: Snapshot, state: RuntimeState, now: datetime
) -> Decision | None:
    unlock = active_unlock(state, facts.device, facts.provider, now)
    if unlock is None:
        return None
    until = unlock.until.astimezone(snap.zone)
    scope = f" for {unlock.provider}" if unlock.provider else ""
    return Decision(
        stage=Stage.OVERRIDE,
        action=Action.ALLOW,
        rule=f"unlock:{unlock.device}",
        reason=f"{unlock.device} was {_HOW[unlock.source]} by {unlock.by}{scope} "
        f"until {until:%H:%M}",
        until=until.isoformat(timespec="minutes"),
    )


def active_unlock(
    state: RuntimeState, device: str, provider: str | None, now: datetime
) -> Unlock | None:
    for unlock in state.unlocks.get(device, ()):
        if unlock.until > now and (unlock.provider is None or unlock.provider == provider):
            return unlock
    return None


def check_override_minutes(minutes: int) -> None:
    if not 1 <= minutes <= MAX_OVERRIDE_MINUTES:
        raise ValueError(f"an override lasts 1 to {MAX_OVERRIDE_MINUTES} minutes, not {minutes}")


def check_unlock_minutes(minutes: int) -> None:
    if not 1 <= minutes <= 1440:
        raise ValueError(f"an unlock lasts 1 to 1440 minutes, not {minutes}")
