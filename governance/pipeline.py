"""The pipeline: one ordered list of stages; the first allow or block decides.

    1 emergency override  ->  2 allowlist (device, address, MAC)  ->  3 allowlist (user)
    ->  4 override (unlock window, PIN)  ->  5 pause, then time rules
    ->  6 policies and quotas
    ->  7 settings.default

``alert`` and ``log`` verdicts are kept as notes on the final decision. In observe mode a
block is returned with ``enforced=False``: logged as "would block", never enforced.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from governance import allowlist, emergency, overrides, pause, policy, time_rules
from governance.facts import Action, Decision, Note, RequestFacts, Stage
from governance.snapshot import Snapshot
from governance.state import RuntimeState

StageFn = Callable[[RequestFacts, Snapshot, RuntimeState, datetime], Decision | None]

STAGES: tuple[tuple[str, StageFn], ...] = (
    ("emergency", emergency.evaluate),
    ("allowlist (device, address, MAC)", allowlist.evaluate_device),
    ("allowlist (user)", allowlist.evaluate_user),
    ("override", overrides.evaluate),
    ("pause", pause.evaluate),
    ("time rules", time_rules.evaluate),
    ("policies and quotas", policy.evaluate),
)


def decide(facts: RequestFacts, snap: Snapshot, state: RuntimeState, now: datetime) -> Decision:
    """The decision for one request. Raises only on a bug; the edge turns that into ``fail``."""
    pending: list[Decision] = []
    for _, evaluate in STAGES:
        decision = evaluate(facts, snap, state, now)
        if decision is None:
            continue
        if decision.terminal:
            return _finish(decision, pending, snap)
        pending.append(decision)
    if pending:
        return _finish(pending[0], pending[1:], snap)
    return _finish(default_decision(snap), pending, snap)


def explain(
    facts: RequestFacts, snap: Snapshot, state: RuntimeState, now: datetime
) -> list[tuple[str, Decision | None]]:
    """Every stage's own verdict, in order, for ``rules explain`` (no short-circuit)."""
    verdicts: list[tuple[str, Decision | None]] = [
        (name, evaluate(facts, snap, state, now)) for name, evaluate in STAGES
    ]
    verdicts.append(("default", default_decision(snap)))
    return verdicts


def default_decision(snap: Snapshot) -> Decision:
    action = snap.default_action
    word = "allowed" if action is Action.ALLOW else "blocked"
    return Decision(
        stage=Stage.DEFAULT,
        action=action,
        rule="settings.default",
        reason=f"no rule matched; requests are {word} by default",
    )


def error_decision(snap: Snapshot | None, error: BaseException) -> Decision:
    """What an internal error does to a request: ``settings.fail`` (closed unless stated)."""
    fail_open = snap is not None and snap.fail_open
    return Decision(
        stage=Stage.ERROR,
        action=Action.ALLOW if fail_open else Action.BLOCK,
        rule="settings.fail",
        reason=f"the gate hit an internal error ({type(error).__name__}) and fails "
        f"{'open' if fail_open else 'closed'}",
    )


def _finish(decision: Decision, earlier: list[Decision], snap: Snapshot) -> Decision:
    notes: tuple[Note, ...] = tuple(d.as_note() for d in earlier)
    for d in earlier:
        notes += d.notes
    if notes:
        decision = decision.with_notes(notes + decision.notes)
    if snap.observe and decision.action is Action.BLOCK:
        decision = replace(
            decision, enforced=False, reason=f"would block (observe mode): {decision.reason}"
        )
    return decision
