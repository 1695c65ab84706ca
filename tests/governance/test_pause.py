"""Pause: a runtime block for a person, a device or a group, from now until a set time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from governance import pipeline
from governance.facts import Action, Stage
from governance.pause import check_pause_minutes
from governance.state import ActiveEmergency, Pause, RuntimeState, Unlock
from tests.governance.helpers import BASE, at, facts, snapshot

NOW = at("2026-11-20T16:00")
LATER = NOW + timedelta(hours=1)


@pytest.mark.parametrize(
    ("pause", "paused_ips"),
    [
        (Pause("person", "alice", LATER, "mom"), {"192.168.1.50"}),
        (Pause("device", "bob-tablet", LATER, "mom"), {"192.168.1.51"}),
        (Pause("group", "kids", LATER, "mom"), {"192.168.1.50", "192.168.1.51"}),
        (Pause("device", "ip:10.0.0.9", LATER, "mom"), {"10.0.0.9"}),
    ],
)
def test_a_pause_blocks_whom_it_names_and_nobody_else(pause: Pause, paused_ips: set[str]) -> None:
    snap = snapshot()
    state = RuntimeState(pauses=(pause,))
    for ip in ("192.168.1.50", "192.168.1.51", "192.168.1.10", "10.0.0.9"):
        decision = pipeline.decide(facts(snap, ip), snap, state, NOW)
        assert (decision.rule == "pause") is (ip in paused_ips), ip
        if ip in paused_ips:
            assert decision.stage is Stage.TIME_RULE and decision.action is Action.BLOCK
            assert "paused by mom until 17:00" in decision.reason
            assert decision.until == "2026-11-20T17:00+01:00"


def test_a_pause_ends_at_its_time_and_the_longest_one_is_shown() -> None:
    snap = snapshot()
    short = Pause("person", "alice", NOW + timedelta(minutes=10), "dad")
    state = RuntimeState(pauses=(short, Pause("group", "kids", LATER, "mom")))
    decision = pipeline.decide(facts(snap), snap, state, NOW)
    assert "group kids paused by mom until 17:00" in decision.reason
    assert pipeline.decide(facts(snap), snap, state, LATER).stage is Stage.DEFAULT


def test_emergency_allowlist_and_a_later_unlock_beat_a_pause_bedtime_does_not_matter() -> None:
    snap = snapshot(
        """
allowlist: [{device: mom-laptop}]
time_rules: [{name: bedtime, start: "15:00", end: "07:00"}]
"""
    )
    paused = (Pause("group", "parents", LATER, "dad"), Pause("group", "kids", LATER, "dad"))
    mom = pipeline.decide(facts(snap, "192.168.1.10"), snap, RuntimeState(pauses=paused), NOW)
    assert mom.stage is Stage.ALLOWLIST
    alice = pipeline.decide(facts(snap), snap, RuntimeState(pauses=paused), NOW)
    assert alice.rule == "pause"  # the pause speaks first, bedtime would block anyway
    unlocked = RuntimeState(
        pauses=paused, unlocks={"alice-laptop": (Unlock("alice-laptop", LATER, "mom"),)}
    )
    assert pipeline.decide(facts(snap), snap, unlocked, NOW).stage is Stage.OVERRIDE
    emergency = ActiveEmergency(1, NOW, LATER, "trip", "mom")
    on = RuntimeState(pauses=paused, emergency=emergency)
    assert pipeline.decide(facts(snap), snap, on, NOW).stage is Stage.EMERGENCY


def test_observe_mode_only_logs_a_pause() -> None:
    snap = snapshot(base=BASE.replace("settings: {", "settings: {mode: observe, "))
    state = RuntimeState(pauses=(Pause("person", "alice", LATER, "mom"),))
    decision = pipeline.decide(facts(snap), snap, state, NOW)
    assert decision.rule == "pause" and decision.allowed and not decision.enforced


@pytest.mark.parametrize("minutes", [0, -5, 1441])
def test_a_pause_lasts_one_minute_to_a_day(minutes: int) -> None:
    with pytest.raises(ValueError, match="1 to 1440"):
        check_pause_minutes(minutes)
