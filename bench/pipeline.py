"""Section 2: one pipeline decision, timed, with 200 devices, 50 time rules and 100 policies.

The rules come from ``rules_gen`` through ``load_rules_text`` (the same loader the proxy
uses). Facts are built like the proxy builds them (``identity.resolve`` once per connection,
so identity is not timed): known devices by IP, by MAC and inside CIDRs, unknown guests,
three providers, several endpoints and models, prompts from a sentence to a few KB (some with
personal data or flagged keywords; each request its own text, since hearthgate caches scans
per text), instants spread over a week so time rules open and close, and usage counters so
quotas are checked and sometimes exceeded. Only ``decide`` is timed, one call at a time with
``perf_counter_ns``, after a warm-up.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bench import rules_gen
from bench.stats import percentile
from bench.texts import EMAIL_HIT, PHONE_HIT, prose, salted
from governance.facts import Endpoint, Inspect, RequestFacts
from governance.pipeline import STAGES, decide
from governance.snapshot import Snapshot
from governance.state import RuntimeState, UsageCount
from proxy.identity import resolve
from proxy.rules.loader import load_rules_text

TARGET_P99_US = 50.0
ZONE = ZoneInfo("Europe/Berlin")
DAY = datetime(2025, 3, 10, tzinfo=ZONE)  # a Monday, outside any DST change
PROVIDERS = (
    ("openai", "api.openai.com"),
    ("openai", "api.openai.com"),
    ("anthropic", "api.anthropic.com"),
    ("gemini", "generativelanguage.googleapis.com"),
)
MODELS = (
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-4.1",
    "o1-mini",
    "claude-3-5-haiku-latest",
    "claude-sonnet-4-20250514",
    "gemini-1.5-flash",
    "gemini-2.5-pro",
)
ENDPOINTS = (Endpoint.CHAT,) * 12 + (
    Endpoint.RESPONSES,
    Endpoint.EMBEDDINGS,
    Endpoint.IMAGES,
    Endpoint.AUDIO,
)
SIZE_BUCKETS = (
    (0, 1024, "prompt < 1 KB"),
    (1024, 4096, "prompt 1-4 KB"),
    (4096, 10**9, "prompt >= 4 KB"),
)


@dataclass
class PipelineResults:
    durations_ns: list[int]
    prompt_sizes: list[int]
    outcomes: Counter[str] = field(default_factory=Counter)
    facts: int = 0
    timer_overhead_ns: int = 0
    stages_ns: dict[str, list[int]] = field(default_factory=dict)
    rules_ns: list[int] = field(default_factory=list)  # the same decisions, prompt scanned

    def us(
        self, q: float, sizes: tuple[int, int] | None = None, *, rules_only: bool = False
    ) -> float:
        durations = self.rules_ns if rules_only else self.durations_ns
        values = (
            durations
            if sizes is None
            else [
                d
                for d, n in zip(durations, self.prompt_sizes, strict=True)
                if sizes[0] <= n < sizes[1]
            ]
        )
        return percentile(values, q) / 1000

    def count(self, sizes: tuple[int, int]) -> int:
        return sum(1 for n in self.prompt_sizes if sizes[0] <= n < sizes[1])


def _prompts(rng: random.Random) -> list[str]:
    prompts = []
    for i in range(60):
        size = rng.choice((60, 120, 200, 300, 300, 500, 800, 1200, 2000, 3500, 6000))
        text = prose(size, seed=1000 + i)
        if i % 12 == 5:
            text = EMAIL_HIT + text
        elif i % 12 == 6:
            text = text + " " + PHONE_HIT
        elif i % 12 == 7:
            text = "Write my essay for me, I need an essay writer. " + text
        prompts.append(text)
    return prompts


def _client(rng: random.Random) -> tuple[str, str | None]:
    """(ip, mac) of a client: mostly known devices, some by MAC or CIDR, some unknown."""
    roll = rng.random()
    i = rng.randrange(rules_gen.DEVICES)
    if roll < 0.10:
        return f"192.168.77.{rng.randrange(2, 250)}", None
    if roll < 0.15 and rules_gen.device_mac(i):
        return f"10.1.9.{rng.randrange(2, 250)}", rules_gen.device_mac(i)
    if roll < 0.20 and rules_gen.device_cidr(i):
        return f"10.20.{i}.{rng.randrange(1, 15)}", None
    ip = rules_gen.device_ip(i)
    return (ip, None) if ip else (f"10.1.0.{i + 1}", rules_gen.device_mac(i))


def build_facts(snap: Snapshot, count: int, seed: int = 7) -> list[RequestFacts]:
    rng = random.Random(seed)
    prompts = _prompts(rng)
    facts = []
    for n in range(count):
        ip, mac = _client(rng)
        ident = resolve(snap, ip, mac=mac)
        provider, host = rng.choice(PROVIDERS)
        inspected = ident.inspect is Inspect.TLS
        prompt = salted(rng.choice(prompts), f"p{n}")  # every request its own text
        facts.append(
            RequestFacts(
                request_id=f"bench{n:06d}",
                identity=ident,
                host=host,
                provider=provider,
                method="POST",
                path="/v1/chat/completions",
                endpoint=rng.choice(ENDPOINTS),
                model=rng.choice(MODELS) if inspected else None,
                prompt=prompt if inspected else None,
                prompt_chars=len(prompt) if inspected else 0,
                body_inspected=inspected,
            )
        )
    return facts


def build_state(rng: random.Random) -> RuntimeState:
    usage = {
        f"person:{rules_gen.person(i)}": UsageCount(
            DAY.date(), requests=rng.randrange(0, 200), tokens=rng.randrange(0, 200_000)
        )
        for i in range(rules_gen.PEOPLE)
    }
    return RuntimeState(usage=usage)


def instants(rng: random.Random, count: int = 499) -> list[datetime]:
    return [
        (DAY + timedelta(minutes=rng.randrange(7 * 24 * 60))).astimezone(ZONE) for _ in range(count)
    ]


def _timer_overhead() -> int:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(10_000):
        t0 = clock()
        samples.append(clock() - t0)
    return int(percentile(samples, 50))


def time_stages(
    facts: list[RequestFacts],
    snap: Snapshot,
    state: RuntimeState,
    times: list[datetime],
    calls: int,
) -> dict[str, list[int]]:
    """Each stage on its own over the same facts, without the short-circuit of ``decide``."""
    clock = time.perf_counter_ns
    out: dict[str, list[int]] = {}
    for name, evaluate in STAGES:
        samples = out.setdefault(name, [])
        for i in range(calls):
            f, now = facts[i % len(facts)], times[i % len(times)]
            t0 = clock()
            evaluate(f, snap, state, now)
            samples.append(clock() - t0)
    return out


def run(decisions: int, warmup: int = 10_000) -> PipelineResults:
    snap = load_rules_text(rules_gen.rules_text(), "bench-generated.yaml")
    rng = random.Random(11)
    facts = build_facts(snap, 5000)
    state = build_state(rng)
    times = instants(rng)
    clock = time.perf_counter_ns
    for i in range(warmup):
        decide(facts[i % len(facts)], snap, state, times[i % len(times)])
    durations, sizes, outcomes = [], [], Counter[str]()
    for i in range(decisions):
        f, now = facts[i % len(facts)], times[i % len(times)]
        t0 = clock()
        decision = decide(f, snap, state, now)
        durations.append(clock() - t0)
        sizes.append(f.prompt_chars)
        outcomes[f"{decision.stage.value}/{decision.action.value}"] += 1
    rules = []
    for i in range(decisions):  # each decision again, right after its prompt was scanned
        f, now = facts[i % len(facts)], times[i % len(times)]
        decide(f, snap, state, now)
        t0 = clock()
        decide(f, snap, state, now)
        rules.append(clock() - t0)
    stages = time_stages(facts, snap, state, times, max(decisions // 5, 1000))
    return PipelineResults(durations, sizes, outcomes, len(facts), _timer_overhead(), stages, rules)
