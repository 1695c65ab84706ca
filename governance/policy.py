"""Stage 6: policies and quotas — which services, which models, what content, how much.

Policies are tried by priority (lower first, file order on ties); the first ``allow`` or
``block`` decides. ``alert`` and ``log`` policies are recorded and the search goes on, so a
notification rule never lets a request past a block. A policy with a ``quota`` only acts
once its counter has reached the limit, answering 429 until the counter resets.

A policy whose body condition cannot be checked (the gate could not read the body, or the
request runs a model it does not name) is decided by ``settings.unreadable``: ``block``
blocks the request there, unless the policy is an ``allow`` (an unread body never grants
anything); ``allow`` skips the policy, as if its condition did not hold.
"""

from __future__ import annotations

from datetime import datetime

from governance import quotas
from governance.facts import Action, Decision, Note, RequestFacts, Stage
from governance.policy_match import CompiledPolicy, body_matches, unreadable_reason
from governance.snapshot import Snapshot
from governance.state import RuntimeState


def evaluate(
    facts: RequestFacts, snap: Snapshot, state: RuntimeState, now: datetime
) -> Decision | None:
    notes: list[Note] = []
    first_note: Decision | None = None
    for policy in snap.policies_for(facts):
        unread = unreadable_reason(policy, facts) if policy.needs_body else None
        if unread is not None:
            if not snap.unreadable_block or policy.action is Action.ALLOW:
                continue
            decision: Decision | None = _unreadable_decision(policy, unread)
        else:
            matched, detail = body_matches(policy, facts) if policy.needs_body else (True, "")
            if not matched:
                continue
            decision = (
                _quota_decision(policy, facts, snap, state, now)
                if policy.quota
                else _policy_decision(policy, detail)
            )
        if decision is None:
            continue
        if decision.terminal:
            earlier = [first_note.as_note()] if first_note is not None else []
            return _with_notes(decision, earlier + notes)
        if first_note is None:
            first_note = decision
        else:
            notes.append(decision.as_note())
    return _with_notes(first_note, notes) if first_note else None


def _policy_decision(policy: CompiledPolicy, detail: str) -> Decision:
    verb = {
        Action.ALLOW: "allows",
        Action.BLOCK: "blocks",
        Action.ALERT: "raises an alert for",
        Action.LOG: "logs",
    }[policy.action]
    reason = f"policy '{policy.name}' {verb} this request"
    if detail:
        reason += f" ({detail})"
    return Decision(
        stage=Stage.POLICY,
        action=policy.action,
        rule=policy.name,
        reason=reason,
        message=policy.message,
    )


def _unreadable_decision(policy: CompiledPolicy, why: str) -> Decision:
    return Decision(
        stage=Stage.POLICY,
        action=Action.BLOCK,
        rule=policy.name,
        reason=f"the gate could not read this request ({why}), so policy "
        f"'{policy.name}' cannot be checked; settings.unreadable blocks such requests",
        message=policy.message,
    )


def _quota_decision(
    policy: CompiledPolicy, facts: RequestFacts, snap: Snapshot, state: RuntimeState, now: datetime
) -> Decision | None:
    assert policy.quota is not None
    local = now.astimezone(snap.zone)
    key = quotas.usage_key(policy.quota, facts.identity)
    bonus = quotas.bonus_for(state, facts.identity.person, local.date())
    count = quotas.today_of(state, key, local.date())
    exceeded = quotas.check(policy.quota, count, local, bonus)
    if exceeded is None:
        return None
    who = key.split(":", 1)[1]
    return Decision(
        stage=Stage.QUOTA,
        action=policy.action,
        rule=policy.name,
        reason=f"{who} has used the {exceeded.what} allowed by '{policy.name}'; "
        f"it resets at {exceeded.reset_at:%H:%M} on {exceeded.reset_at:%a %d %b}",
        message=policy.message or exceeded.child_message(),
        until=exceeded.reset_at.isoformat(timespec="minutes"),
        status=429,
        retry_after=exceeded.retry_after,
    )


def _with_notes(decision: Decision, notes: list[Note]) -> Decision:
    if not notes:
        return decision
    return decision.with_notes(decision.notes + tuple(notes))
