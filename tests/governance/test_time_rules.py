from __future__ import annotations

from datetime import UTC, datetime

import pytest

from governance import pipeline, time_rules
from governance.facts import Action, Stage
from governance.state import EMPTY_STATE, RuntimeState
from tests.governance.helpers import at, facts, snapshot

BEDTIME = """
time_rules:
  - name: bedtime
    start: "21:00"
    end: "07:00"
    days: [fri]
    applies_to: {groups: [kids]}
    message: Bedtime.
"""


# 2026-11-20 is a Friday, 2026-11-21 a Saturday
@pytest.mark.parametrize(
    ("local", "blocked"),
    [
        ("2026-11-20T20:59", False),
        ("2026-11-20T21:00", True),  # start is inclusive
        ("2026-11-20T23:59", True),
        ("2026-11-21T02:00", True),  # Saturday 02:00 belongs to Friday's window
        ("2026-11-21T06:59", True),
        ("2026-11-21T07:00", False),  # end is exclusive
        ("2026-11-20T02:00", False),  # Friday 02:00 belongs to Thursday, which is not listed
        ("2026-11-21T21:30", False),  # Saturday evening: not a listed day
    ],
)
def test_overnight_window_belongs_to_its_start_day(local: str, blocked: bool) -> None:
    snap = snapshot(BEDTIME)
    decision = time_rules.evaluate(facts(snap), snap, EMPTY_STATE, at(local))
    assert (decision is not None and decision.action is Action.BLOCK) is blocked


def test_applies_only_to_listed_groups() -> None:
    snap = snapshot(BEDTIME)
    mom = facts(snap, "192.168.1.10")
    assert time_rules.evaluate(mom, snap, EMPTY_STATE, at("2026-11-20T22:00")) is None


@pytest.mark.parametrize(
    ("local", "inside"),
    [
        ("2026-11-18T00:00", True),
        ("2026-11-18T12:00", True),
        ("2026-11-18T23:59", True),
        ("2026-11-19T00:00", False),  # Thursday not listed
    ],
)
def test_start_equal_end_is_the_whole_day(local: str, inside: bool) -> None:
    snap = snapshot("""
time_rules:
  - {name: no-ai-wednesday, start: "09:00", end: "09:00", days: [wed]}
""")
    decision = time_rules.evaluate(facts(snap), snap, EMPTY_STATE, at(local))
    assert (decision is not None) is inside
    if decision:
        assert decision.until == "2026-11-19T00:00+01:00"


def test_rules_zone_not_host_zone_utc_instant() -> None:
    # 20:30 UTC on a Friday in November is 21:30 in Berlin: inside the window
    snap = snapshot(BEDTIME)
    now = datetime(2026, 11, 20, 20, 30, tzinfo=UTC)
    decision = time_rules.evaluate(facts(snap), snap, EMPTY_STATE, now)
    assert decision is not None and decision.action is Action.BLOCK


def test_naive_time_is_refused() -> None:
    snap = snapshot(BEDTIME)
    with pytest.raises(ValueError, match="aware"):
        time_rules.evaluate(facts(snap), snap, EMPTY_STATE, datetime(2026, 11, 20, 22, 0))


@pytest.mark.parametrize(
    ("utc", "blocked"),
    [
        # Berlin springs forward on Sun 2026-03-29 at 02:00 -> 03:00 (UTC+1 -> UTC+2)
        ("2026-03-29T00:30", True),  # 01:30 CET, inside the Saturday 22:00-03:30 window
        ("2026-03-29T01:15", True),  # 03:15 CEST: still inside
        ("2026-03-29T01:30", False),  # 03:30 CEST: the window has closed
        # falls back on Sun 2026-10-25 at 03:00 -> 02:00 (UTC+2 -> UTC+1)
        ("2026-10-25T00:45", True),  # 02:45 CEST (first pass)
        ("2026-10-25T01:45", True),  # 02:45 CET (second pass)
        ("2026-10-25T02:30", False),  # 03:30 CET
    ],
)
def test_window_across_dst_changes(utc: str, blocked: bool) -> None:
    snap = snapshot("""
time_rules:
  - {name: late, start: "22:00", end: "03:30", days: [sat], applies_to: {groups: [kids]}}
""")
    now = datetime.fromisoformat(utc).replace(tzinfo=UTC)
    decision = time_rules.evaluate(facts(snap), snap, EMPTY_STATE, now)
    assert (decision is not None) is blocked


def test_lower_priority_number_wins() -> None:
    snap = snapshot("""
time_rules:
  - {name: general, start: "20:00", end: "23:00", applies_to: {groups: [kids]}, priority: 100}
  - {name: homework, start: "20:00", end: "23:00", action: log, applies_to: {people: [alice]},
     priority: 10}
""")
    decision = time_rules.evaluate(facts(snap), snap, EMPTY_STATE, at("2026-11-20T21:00"))
    assert decision is not None and decision.rule == "homework"


@pytest.mark.parametrize("action", ["alert", "log"])
def test_alert_and_log_allow_and_are_noted(action: str) -> None:
    snap = snapshot(f"""
time_rules:
  - {{name: evening, start: "18:00", end: "22:00", action: {action},
     applies_to: {{groups: [kids]}}}}
""")
    decision = pipeline.decide(facts(snap), snap, EMPTY_STATE, at("2026-11-20T19:00"))
    assert decision.allowed
    assert decision.stage is Stage.TIME_RULE and decision.action.value == action


def test_alert_does_not_shadow_a_later_block() -> None:
    snap = snapshot("""
time_rules:
  - {name: evening, start: "18:00", end: "22:00", action: alert, applies_to: {groups: [kids]}}
policies:
  - {name: no-big-models, when: {groups: [kids], models: ["gpt-4o"]}, action: block}
""")
    decision = pipeline.decide(
        facts(snap, model="gpt-4o"), snap, EMPTY_STATE, at("2026-11-20T19:00")
    )
    assert decision.action is Action.BLOCK and decision.stage is Stage.POLICY
    assert [n.rule for n in decision.notes] == ["evening"]


def test_until_names_the_end_of_the_window() -> None:
    snap = snapshot(BEDTIME)
    decision = time_rules.evaluate(facts(snap), snap, EMPTY_STATE, at("2026-11-20T23:00"))
    assert decision is not None
    assert decision.until == "2026-11-21T07:00+01:00"
    assert "until 07:00" in decision.reason


from datetime import time as clock  # noqa: E402

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from governance.snapshot import CompiledTimeRule, Selector  # noqa: E402


@given(
    start=st.times(),
    end=st.times(),
    days=st.frozensets(st.integers(0, 6)),
    when=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1)),
)
def test_integer_fast_path_agrees_with_the_reference(start, end, days, when) -> None:  # type: ignore[no-untyped-def]
    rule = CompiledTimeRule(
        "r",
        clock(start.hour, start.minute),
        clock(end.hour, end.minute),
        days,
        Action.BLOCK,
        Selector(),
        100,
        None,
    )
    minute = when.hour * 60 + when.minute
    assert time_rules._open(rule, minute, when.weekday()) == time_rules.window_contains(
        rule, when.replace(tzinfo=UTC)
    )


@pytest.mark.parametrize(
    ("when", "until"),
    [
        ("2026-11-20T23:00", "2026-11-21T07:00+01:00"),  # before midnight
        ("2026-11-21T02:00", "2026-11-21T07:00+01:00"),  # after midnight: the same window
        ("2026-11-21T23:00", "2026-11-22T07:00+01:00"),  # the next night: its own end
        ("2026-03-28T23:00", "2026-03-29T07:00+02:00"),  # clocks go forward that night
        ("2026-10-25T01:00", "2026-10-25T07:00+01:00"),  # clocks went back that night
    ],
)
def test_until_for_each_night_in_one_snapshot(when: str, until: str) -> None:
    decision = time_rules.evaluate(facts(SHARED), SHARED, EMPTY_STATE, at(when))
    assert decision is not None and decision.until == until


# one snapshot for every case, so the window ends it remembers are tested too
SHARED = snapshot(BEDTIME.replace("days: [fri]", "days: [mon, tue, wed, thu, fri, sat, sun]"))


@pytest.mark.parametrize(
    ("days", "at_text", "until"),
    [
        (None, "2026-11-20T10:00", None),  # all day, every day: it never lets go by itself
        (["mon", "tue", "wed", "thu", "fri"], "2026-11-18T10:00", "2026-11-21T00:00+01:00"),
        (["sat"], "2026-11-21T10:00", "2026-11-22T00:00+01:00"),
    ],
)
def test_an_all_day_rule_says_when_access_really_comes_back(
    days: list[str] | None, at_text: str, until: str | None
) -> None:
    listed = f", days: [{', '.join(days)}]" if days else ""
    rule = '{name: "off", start: "00:00", end: "00:00"' + listed + "}"
    snap = snapshot(f"time_rules: [{rule}]\n")
    decision = pipeline.decide(facts(snap), snap, RuntimeState(), at(at_text))
    assert decision.rule == "off" and decision.until == until
