from __future__ import annotations

from datetime import date

import pytest

from governance import pipeline, quotas
from governance.facts import Stage
from governance.prices import compile_prices, estimate_cost
from governance.schema import Quota
from governance.state import Bonus, RuntimeState, UsageCount
from tests.governance.helpers import at, facts, snapshot

RULES = """
policies:
  - name: kids-daily
    when: {groups: [kids]}
    quota: {per: person, requests_per_day: 3, tokens_per_week: 1000}
    message: That's enough for today.
"""


def state(**usage: UsageCount) -> RuntimeState:
    return RuntimeState(usage={k.replace("_", ":", 1): v for k, v in usage.items()})


def test_under_quota_no_opinion_at_quota_429_until_local_midnight() -> None:
    snap = snapshot(RULES)
    now = at("2026-11-20T21:30")
    under = state(person_alice=UsageCount(date(2026, 11, 20), requests=2))
    assert pipeline.decide(facts(snap), snap, under, now).stage is Stage.DEFAULT
    full = state(person_alice=UsageCount(date(2026, 11, 20), requests=3))
    decision = pipeline.decide(facts(snap), snap, full, now)
    assert (decision.stage, decision.status, decision.allowed) == (Stage.QUOTA, 429, False)
    assert decision.retry_after == 2 * 3600 + 30 * 60
    assert "resets at 00:00 on Sat 21 Nov" in decision.reason
    assert decision.message == "That's enough for today."


def test_counts_are_per_person_across_devices_and_reset_at_midnight() -> None:
    snap = snapshot(RULES)
    full = state(person_alice=UsageCount(date(2026, 11, 20), requests=3))
    # alice's other device shares the person counter; bob has his own
    assert (
        pipeline.decide(facts(snap, "192.168.1.51"), snap, full, at("2026-11-20T21:30")).stage
        is Stage.DEFAULT
    )
    next_day = at("2026-11-21T00:00")
    assert pipeline.decide(facts(snap), snap, full, next_day).stage is Stage.DEFAULT


def test_weekly_limit_survives_the_day_change_until_monday() -> None:
    snap = snapshot(RULES)
    week = state(person_alice=UsageCount(date(2026, 11, 18), tokens=0, week_tokens=1000))
    sat = pipeline.decide(facts(snap), snap, week, at("2026-11-21T10:00"))
    assert sat.stage is Stage.QUOTA and "per week" in sat.reason
    assert "Mon 23 Nov" in sat.reason
    monday = pipeline.decide(facts(snap), snap, week, at("2026-11-23T00:00"))
    assert monday.stage is Stage.DEFAULT


def test_midnight_across_a_dst_change_is_local() -> None:
    # Berlin falls back on Sun 2026-10-25: that day has 25 hours
    quota = Quota(requests_per_day=1)
    local = at("2026-10-25T00:30")
    exceeded = quotas.check(quota, UsageCount(date(2026, 10, 25), requests=1), local)
    assert exceeded is not None and exceeded.retry_after == 24 * 3600 + 30 * 60


@pytest.mark.parametrize(
    ("per", "key"), [("person", "person:alice"), ("device", "device:alice-laptop")]
)
def test_usage_key(per: str, key: str) -> None:
    snap = snapshot()
    assert quotas.usage_key(Quota(per=per), facts(snap).identity) == key  # type: ignore[arg-type]


def test_unknown_device_falls_back_to_device_counter() -> None:
    snap = snapshot()
    ident = facts(snap, "10.1.1.1").identity
    assert quotas.usage_key(Quota(per="person"), ident) == "device:ip:10.1.1.1"
    assert quotas.usage_keys(ident) == ("device:ip:10.1.1.1",)


def test_cost_quota_and_prices() -> None:
    prices = compile_prices([("my-model", 1.0, 2.0)])
    assert estimate_cost(prices, "my-model", 1_000_000, 500_000) == 2.0
    assert estimate_cost(prices, "gpt-4o-mini-2024", 1_000_000, 0) == 0.15
    assert estimate_cost(prices, "unknown", 10, 10) == 0.0
    quota = Quota(cost_per_day=0.5)
    local = at("2026-11-20T12:00")
    assert quotas.check(quota, UsageCount(date(2026, 11, 20), cost=0.49), local) is None
    assert quotas.check(quota, UsageCount(date(2026, 11, 20), cost=0.5), local) is not None


MINUTES = """
policies:
  - name: kids-time
    when: {groups: [kids]}
    quota: {per: person, minutes_per_day: 60, minutes_per_week: 300}
"""


def test_minutes_per_day_run_out_with_a_message_saying_when_they_come_back() -> None:
    snap = snapshot(MINUTES)
    now = at("2026-11-20T18:30")
    under = state(person_alice=UsageCount(date(2026, 11, 20), minutes=59, week_minutes=59))
    assert pipeline.decide(facts(snap), snap, under, now).stage is Stage.DEFAULT
    used = state(person_alice=UsageCount(date(2026, 11, 20), minutes=60, week_minutes=60))
    decision = pipeline.decide(facts(snap), snap, used, now)
    assert (decision.stage, decision.status) == (Stage.QUOTA, 429)
    assert decision.message == (
        "Today's 60 minutes are used up. They come back at 00:00 on Sat 21 Nov"
    )
    assert decision.retry_after == 5 * 3600 + 30 * 60
    week = state(person_alice=UsageCount(date(2026, 11, 19), minutes=10, week_minutes=300))
    weekly = pipeline.decide(facts(snap), snap, week, now)
    assert weekly.message is not None and weekly.message.startswith("This week's 300 minutes")
    assert "00:00 on Mon 23 Nov" in weekly.message


def test_a_bonus_raises_todays_limits_for_that_person_only() -> None:
    snap = snapshot(MINUTES + "    \n")
    now = at("2026-11-20T18:30")
    day = date(2026, 11, 20)
    usage = {
        "person:alice": UsageCount(day, minutes=60, week_minutes=60),
        "person:bob": UsageCount(day, minutes=60, week_minutes=60),
    }
    extra = {"alice": Bonus(day, minutes=30)}
    with_bonus = RuntimeState(usage=usage, bonuses=extra)
    assert pipeline.decide(facts(snap), snap, with_bonus, now).stage is Stage.DEFAULT
    bob = pipeline.decide(facts(snap, "192.168.1.51", prompt=None), snap, with_bonus, now)
    assert bob.stage is Stage.QUOTA
    spent = RuntimeState(
        usage={"person:alice": UsageCount(day, minutes=90, week_minutes=90)}, bonuses=extra
    )
    assert "90 minutes per day" in pipeline.decide(facts(snap), snap, spent, now).reason
    yesterday = RuntimeState(usage=usage, bonuses={"alice": Bonus(date(2026, 11, 19), 30)})
    assert pipeline.decide(facts(snap), snap, yesterday, now).stage is Stage.QUOTA


def test_a_bonus_of_requests_and_tokens() -> None:
    snap = snapshot(RULES)
    now = at("2026-11-20T18:30")
    day = date(2026, 11, 20)
    full = {"person:alice": UsageCount(day, requests=3, tokens=0, week_tokens=1000)}
    only_requests = RuntimeState(usage=full, bonuses={"alice": Bonus(day, requests=2)})
    assert "tokens per week" in pipeline.decide(facts(snap), snap, only_requests, now).reason
    both = RuntimeState(usage=full, bonuses={"alice": Bonus(day, requests=2, tokens=500)})
    assert pipeline.decide(facts(snap), snap, both, now).stage is Stage.DEFAULT
