"""Stage 1: the emergency override — a parent lets every request through for a while.

Rules for starting one (checked here, enforced again by the database): 1-1440 minutes, a
reason, one at a time; extensions are positive and never reach past 1440 minutes from
activation.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from governance.facts import Action, Decision, RequestFacts, Stage
from governance.snapshot import Snapshot
from governance.state import RuntimeState

MAX_MINUTES = 1440


def evaluate(
    facts: RequestFacts, snap: Snapshot, state: RuntimeState, now: datetime
) -> Decision | None:
    active = state.emergency
    if active is None or active.until <= now:
        return None
    until = active.until.astimezone(snap.zone)
    return Decision(
        stage=Stage.EMERGENCY,
        action=Action.ALLOW,
        rule=f"emergency #{active.id}",
        reason=f"emergency override by {active.activated_by} until {until:%H:%M}: {active.reason}",
        until=until.isoformat(timespec="minutes"),
    )


def check_activation(minutes: int, reason: str) -> None:
    if not 1 <= minutes <= MAX_MINUTES:
        raise ValueError(f"an emergency lasts 1 to {MAX_MINUTES} minutes, not {minutes}")
    if not reason or not reason.strip():
        raise ValueError("an emergency needs a reason")


def extended_until(activated_at: datetime, until: datetime, additional_minutes: int) -> datetime:
    """The new end of an emergency extended by ``additional_minutes``; ValueError if not allowed."""
    if additional_minutes <= 0:
        raise ValueError(
            f"an extension must be a positive number of minutes, not {additional_minutes}"
        )
    new_until = until + timedelta(minutes=additional_minutes)
    limit = activated_at + timedelta(minutes=MAX_MINUTES)
    if new_until > limit:
        raise ValueError(
            f"an emergency cannot last past {MAX_MINUTES} minutes from its start; "
            f"at most {max(0, int((limit - until).total_seconds() // 60))} "
            "more minutes are possible"
        )
    return new_until
