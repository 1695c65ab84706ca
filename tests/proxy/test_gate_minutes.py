"""Minutes of use: a minute with a request counts once, a stream counts every minute it runs,
and requests let through by the emergency override or the allowlist count nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from governance.facts import Action, Decision, Identity, RequestFacts, Stage
from proxy.catalog.providers import Usage
from proxy.flowfacts import FlowRecord
from proxy.gate import Gate
from proxy.metrics import Metrics
from proxy.runtime import RulesHolder, StateCache
from proxy.store.writer import Writer

RULES = """\
version: 1
settings: {timezone: Europe/Berlin}
groups: {kids: {}}
people: {alice: {groups: [kids]}}
devices: {alice-laptop: {person: alice, ips: [127.0.0.1]}}
"""
START = datetime(2026, 11, 20, 17, 0, 10, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def gate(tmp_path: Path) -> tuple[Gate, Clock]:
    (tmp_path / "rules.yaml").write_text(RULES)
    metrics, clock = Metrics(), Clock()
    holder = RulesHolder(tmp_path / "rules.yaml", metrics)
    writer = Writer(tmp_path)
    cache = StateCache(tmp_path, writer, lambda: holder.snapshot.zone, metrics, clock)
    return Gate(holder, cache, writer, metrics, clock=clock), clock


def record(at: datetime, stage: Stage = Stage.DEFAULT) -> FlowRecord:
    ident = Identity("127.0.0.1", "alice-laptop", "alice", frozenset({"kids"}), known=True)
    facts = RequestFacts("r1", ident, "api.openai.com", "openai")
    decision = Decision(stage, Action.ALLOW, "allowed")
    return FlowRecord(facts, decision, "openai", at.timestamp(), 5)


def minutes(gate: Gate) -> tuple[int, int]:
    count = gate.cache.usage["person:alice"]
    return count.minutes, count.week_minutes


def test_requests_in_one_minute_count_once_and_a_stream_every_minute(
    gate: tuple[Gate, Clock],
) -> None:
    g, clock = gate
    for _ in range(3):
        g.begin(record(clock.now))
    assert minutes(g) == (1, 1)
    stream = record(clock.now)
    g.begin(stream)
    clock.now += timedelta(minutes=3, seconds=30)  # 17:00:10 -> 17:03:40
    g.tick_minutes()
    assert minutes(g) == (4, 4)  # 17:00, :01, :02, :03
    clock.now += timedelta(minutes=1)
    g.finish(stream, 200, Usage())
    assert minutes(g) == (5, 5)
    g.tick_minutes()  # a finished stream no longer counts
    assert minutes(g) == (5, 5)
    assert g.cache.usage["person:alice"].last_minute == int(clock.now.timestamp() // 60)
    assert g.cache.usage["device:alice-laptop"].minutes == 5


@pytest.mark.parametrize("stage", [Stage.EMERGENCY, Stage.ALLOWLIST])
def test_emergency_and_allowlist_count_nothing(gate: tuple[Gate, Clock], stage: Stage) -> None:
    g, clock = gate
    flow = record(clock.now, stage)
    g.begin(flow)
    g.finish(flow, 200, Usage(tokens_in=10, tokens_out=10))
    assert "person:alice" not in g.cache.usage


def test_an_upgraded_connection_counts_until_it_ends(gate: tuple[Gate, Clock]) -> None:
    g, clock = gate
    voice = record(clock.now)
    g.begin(voice)
    g.finish(voice, 101, Usage())  # the websocket runs on
    clock.now += timedelta(minutes=2)
    g.tick_minutes()
    g.end_minutes(voice)
    clock.now += timedelta(minutes=5)
    g.tick_minutes()
    assert minutes(g) == (3, 3)
