"""Stage 5a: pause — a parent stopped a person, a device or a group, now, for a while.

A pause is a block like bedtime that starts the moment a parent asks (``hearthgate pause``,
the API or the dashboard's button) and ends at its ``until`` or at ``resume``. It sits with
the time rules, after the emergency, the allowlist and unlocks: an unlock a parent opens
during a pause lets that device through (pausing ends the unlocks open at that moment, so a
pause takes effect at once).
"""

from __future__ import annotations

from datetime import datetime

from governance.facts import Action, Decision, Identity, RequestFacts, Stage
from governance.snapshot import Snapshot
from governance.state import Pause, RuntimeState

MAX_PAUSE_MINUTES = 1440
RULE = "pause"


def evaluate(
    facts: RequestFacts, snap: Snapshot, state: RuntimeState, now: datetime
) -> Decision | None:
    if not state.pauses:
        return None
    pause = active_pause(state.pauses, facts.identity, now)
    if pause is None:
        return None
    until = pause.until.astimezone(snap.zone)
    return Decision(
        stage=Stage.TIME_RULE,
        action=Action.BLOCK,
        rule=RULE,
        reason=f"{describe(pause)} paused by {pause.by} until {until:%H:%M}",
        message=f"A parent paused AI services until {until:%H:%M}",
        until=until.isoformat(timespec="minutes"),
    )


def active_pause(pauses: tuple[Pause, ...], ident: Identity, now: datetime) -> Pause | None:
    """The pause covering this identity that lasts longest, or None."""
    found = [
        p for p in pauses if p.until > now and p.covers(ident.device, ident.person, ident.groups)
    ]
    return max(found, key=lambda p: p.until) if found else None


def describe(pause: Pause) -> str:
    return f"group {pause.target}" if pause.kind == "group" else pause.target


def check_pause_minutes(minutes: int) -> None:
    if not 1 <= minutes <= MAX_PAUSE_MINUTES:
        raise ValueError(f"a pause lasts 1 to {MAX_PAUSE_MINUTES} minutes, not {minutes}")
