from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from governance import pipeline
from governance.facts import Action, Stage
from governance.state import ActiveEmergency, RuntimeAllow, RuntimeState, Unlock
from tests.governance.helpers import at, facts, snapshot

RULES = """
allowlist:
  - {device: mom-laptop, reason: parent}
time_rules:
  - {name: bedtime, start: "21:00", end: "07:00", applies_to: {groups: [kids]}}
"""
NIGHT = at("2026-11-20T23:00")


def test_stages_are_one_ordered_list() -> None:
    names = [name for name, _ in pipeline.STAGES]
    assert names == [
        "emergency",
        "allowlist (device, address, MAC)",
        "allowlist (user)",
        "override",
        "pause",
        "time rules",
        "policies and quotas",
    ]


def test_default_when_nothing_decides() -> None:
    snap = snapshot()
    decision = pipeline.decide(facts(snap), snap, RuntimeState(), NIGHT)
    assert decision.stage is Stage.DEFAULT and decision.action is Action.ALLOW


def test_default_block() -> None:
    snap = snapshot(
        base=__import__("tests.governance.helpers", fromlist=["BASE"]).BASE.replace(
            "settings: {", "settings: {default: block, "
        )
    )
    decision = pipeline.decide(facts(snap), snap, RuntimeState(), NIGHT)
    assert decision.stage is Stage.DEFAULT and not decision.allowed


def test_time_rule_blocks_kid_at_night() -> None:
    snap = snapshot(RULES)
    decision = pipeline.decide(facts(snap), snap, RuntimeState(), NIGHT)
    assert decision.stage is Stage.TIME_RULE and not decision.allowed


def test_emergency_beats_everything_and_expires() -> None:
    snap = snapshot(RULES)
    emergency = ActiveEmergency(
        1, NIGHT - timedelta(minutes=5), NIGHT + timedelta(minutes=10), "school project", "mom"
    )
    state = RuntimeState(emergency=emergency)
    assert pipeline.decide(facts(snap), snap, state, NIGHT).stage is Stage.EMERGENCY
    later = NIGHT + timedelta(minutes=11)
    assert pipeline.decide(facts(snap), snap, state, later).stage is Stage.TIME_RULE


def test_allowlist_before_time_rules() -> None:
    snap = snapshot(RULES.replace("groups: [kids]", "groups: [parents, kids]"))
    decision = pipeline.decide(facts(snap, "192.168.1.10"), snap, RuntimeState(), NIGHT)
    assert decision.stage is Stage.ALLOWLIST


def test_expired_runtime_allow_stops_matching_at_once() -> None:
    snap = snapshot(RULES)
    entry = RuntimeAllow.make("ip", "192.168.1.50", "guest", NIGHT + timedelta(seconds=1))
    state = RuntimeState(allowlist=(entry,))
    assert pipeline.decide(facts(snap), snap, state, NIGHT).stage is Stage.ALLOWLIST
    after = NIGHT + timedelta(seconds=1)
    assert pipeline.decide(facts(snap), snap, state, after).stage is Stage.TIME_RULE


def test_unlock_window_is_an_override() -> None:
    snap = snapshot(RULES)
    state = RuntimeState(
        unlocks={"alice-laptop": (Unlock("alice-laptop", NIGHT + timedelta(minutes=15), "mom"),)}
    )
    decision = pipeline.decide(facts(snap), snap, state, NIGHT)
    assert decision.stage is Stage.OVERRIDE and decision.allowed


def test_observe_mode_logs_would_block_but_allows() -> None:
    snap = snapshot(RULES)
    snap = replace(snap, observe=True)
    decision = pipeline.decide(facts(snap), snap, RuntimeState(), NIGHT)
    assert decision.action is Action.BLOCK and not decision.enforced and decision.allowed
    assert decision.reason.startswith("would block")


@pytest.mark.parametrize("fail_open", [False, True])
def test_error_decision_follows_settings_fail(fail_open: bool) -> None:
    snap = replace(snapshot(), fail_open=fail_open)
    decision = pipeline.error_decision(snap, RuntimeError("boom"))
    assert decision.stage is Stage.ERROR and decision.allowed is fail_open


def test_explain_lists_every_stage_without_short_circuit() -> None:
    snap = snapshot(RULES)
    verdicts = pipeline.explain(facts(snap, "192.168.1.10"), snap, RuntimeState(), NIGHT)
    assert [name for name, _ in verdicts][-1] == "default"
    assert verdicts[1][1] is not None  # allowlisted


def test_with_notes_keeps_every_other_field() -> None:
    """Decision.with_notes must copy every field, including any added later."""
    from dataclasses import fields, replace

    from governance.facts import Decision, Note

    decision = Decision(
        stage=Stage.QUOTA,
        action=Action.BLOCK,
        reason="r",
        rule="q",
        message="m",
        until="2026-11-22T21:00",
        status=429,
        retry_after=60,
        enforced=False,
        notes=(Note(Stage.POLICY, Action.LOG, "p", "logged"),),
    )
    assert {f.name for f in fields(Decision)} == {
        "stage",
        "action",
        "reason",
        "rule",
        "message",
        "until",
        "status",
        "retry_after",
        "enforced",
        "notes",
    }  # a new field needs a place in with_notes
    notes = (Note(Stage.TIME_RULE, Action.ALERT, "t", "alert"),)
    assert decision.with_notes(notes) == replace(decision, notes=notes)
