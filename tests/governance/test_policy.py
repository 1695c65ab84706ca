"""Policies: one table row per condition; AND across conditions; priority; alert/log."""

from __future__ import annotations

import pytest

from governance import pipeline, policy
from governance.facts import Action, Endpoint, Stage
from governance.policy_match import matches
from governance.state import RuntimeState
from tests.governance.helpers import at, facts, snapshot

NOON = at("2026-11-20T12:00")


def verdict(when: str, action: str = "block", **request: object) -> str | None:
    snap = snapshot(f"policies:\n  - {{name: p, when: {when}, action: {action}}}\n")
    decision = policy.evaluate(facts(snap, **request), snap, RuntimeState(), NOON)  # type: ignore[arg-type]
    return decision.action.value if decision else None


@pytest.mark.parametrize(
    ("when", "req", "expected"),
    [
        ("{devices: [alice-laptop]}", {}, "block"),
        ("{devices: [mom-laptop]}", {}, None),
        ("{people: [alice]}", {}, "block"),
        ("{people: [bob]}", {}, None),
        ("{groups: [kids]}", {}, "block"),
        ("{groups: [parents]}", {}, None),
        ("{groups: [guests]}", {"ip": "10.0.0.9"}, "block"),
        ("{providers: [openai]}", {}, "block"),
        ("{providers: [anthropic]}", {}, None),
        ("{categories: [api]}", {}, "block"),
        ("{categories: [companion, image]}", {}, None),
        ("{categories: [companion]}", {"category": "companion", "provider": "nomi"}, "block"),
        ("{categories: [companion]}", {"category": None, "provider": "x"}, None),
        ("{groups: [parents], categories: [companion]}", {"category": "companion"}, None),
        ("{hosts: [api.openai.com]}", {}, "block"),
        ("{hosts: ['*.openai.com']}", {}, "block"),
        ("{hosts: ['*.azure.com']}", {}, None),
        ("{endpoints: [images, audio]}", {"endpoint": Endpoint.IMAGES}, "block"),
        ("{endpoints: [images, audio]}", {}, None),
        ("{models: ['gpt-4o*']}", {"model": "gpt-4o-2024-08-06"}, "block"),
        ("{models: ['gpt-4o']}", {"model": "GPT-4o"}, "block"),
        ("{models: ['gpt-4o']}", {"model": "gpt-4o-mini"}, None),
        ("{models: ['gpt-4o']}", {"model": None}, None),
        ("{models_not: ['gpt-4o-mini*', 'claude-*haiku*']}", {"model": "gpt-4o"}, "block"),
        ("{models_not: ['gpt-4o-mini*', 'claude-*haiku*']}", {"model": "claude-3-5-haiku"}, None),
        ("{models_not: ['gpt-4o-mini*']}", {"model": None, "model_unknown": True}, "block"),
        ("{models_not: ['gpt-4o-mini*']}", {"model": None}, None),  # read in full: runs none
        ("{models_not: ['gpt-4o-mini*']}", {"model": None, "endpoint": Endpoint.FILES}, None),
        ("{prompt: {keywords: [casino]}}", {"prompt": "best CASINO tricks"}, "block"),
        ("{prompt: {keywords: [casino]}}", {"prompt": "a cassino game"}, None),
        # long prompts take the remembered keyword search: same answers
        ("{prompt: {keywords: [casino]}}", {"prompt": "homework " * 500 + "CASINO"}, "block"),
        ("{prompt: {keywords: [casino]}}", {"prompt": "homework " * 500 + "cassino"}, None),
        (
            "{prompt: {regex: ['\\bessay\\b.*\\bfor me\\b']}}",
            {"prompt": "write my essay for me"},
            "block",
        ),
        (
            "{prompt: {regex: ['\\bessay\\b.*\\bfor me\\b']}}",
            {"prompt": "how to plan an essay"},
            None,
        ),
        ("{prompt: {pii: [email]}}", {"prompt": "mail me at kid@example.com"}, "block"),
        ("{prompt: {pii: [email]}}", {"prompt": "no address here"}, None),
        ("{max_prompt_chars: 10}", {"prompt": "x" * 11}, "block"),
        ("{max_prompt_chars: 10}", {"prompt": "x" * 10}, None),
        ("{groups: [kids], models: ['gpt-4o']}", {"model": "gpt-4o"}, "block"),  # AND: both hold
        ("{groups: [parents], models: ['gpt-4o']}", {"model": "gpt-4o"}, None),  # AND: one fails
        ("{}", {}, "block"),  # no condition: everyone
    ],
)
def test_conditions(when: str, req: dict[str, object], expected: str | None) -> None:
    assert verdict(when, **req) == expected


def test_body_conditions_never_match_sni_devices() -> None:
    # bob-tablet is inspect: sni — neither its model nor its prompt is known
    assert verdict("{models_not: ['gpt-4o-mini*']}", ip="192.168.1.51") is None
    assert verdict("{prompt: {keywords: [x]}}", ip="192.168.1.51") is None
    assert verdict("{endpoints: [chat]}", ip="192.168.1.51") is None
    assert verdict("{providers: [openai]}", ip="192.168.1.51") == "block"


def test_first_terminal_match_by_priority_wins_and_alerts_are_noted() -> None:
    snap = snapshot("""
policies:
  - {name: late-allow, priority: 50, when: {groups: [kids]}, action: allow}
  - {name: pii-alert, priority: 5, when: {prompt: {pii: [email]}}, action: alert}
  - {name: log-all, priority: 6, when: {}, action: log}
  - {name: early-block, priority: 10, when: {models: [gpt-4o]}, action: block,
     message: Not that model.}
""")
    decision = pipeline.decide(
        facts(snap, model="gpt-4o", prompt="me@example.com"), snap, RuntimeState(), NOON
    )
    assert (decision.rule, decision.action, decision.message) == (
        "early-block",
        Action.BLOCK,
        "Not that model.",
    )
    assert [(n.rule, n.action) for n in decision.notes] == [
        ("pii-alert", Action.ALERT),
        ("log-all", Action.LOG),
    ]
    allowed = pipeline.decide(
        facts(snap, model="gpt-4o-mini", prompt="hi"), snap, RuntimeState(), NOON
    )
    assert (allowed.rule, allowed.stage) == ("late-allow", Stage.POLICY)


def test_only_alerts_make_an_alert_decision() -> None:
    snap = snapshot("policies:\n  - {name: a, when: {prompt: {pii: [phone]}}, action: alert}\n")
    decision = pipeline.decide(
        facts(snap, prompt="call +49 170 1234567"), snap, RuntimeState(), NOON
    )
    assert (decision.action, decision.allowed, decision.stage) == (Action.ALERT, True, Stage.POLICY)
    assert "personal data (phone)" in decision.reason


def test_policies_sharing_keywords_on_one_long_prompt_each_see_the_truth() -> None:
    snap = snapshot(
        """
        policies:
          - {name: a, priority: 1, when: {prompt: {keywords: [dice, poker]}}, action: log}
          - {name: b, priority: 2, when: {prompt: {keywords: [poker, vape]}}, action: alert}
          - {name: c, priority: 3, when: {prompt: {keywords: [dice]}}, action: block}
        """
    )
    prompt = "a long essay about card games " * 200 + "and poker night"
    decision = pipeline.decide(facts(snap, prompt=prompt), snap, RuntimeState(), NOON)
    assert decision.rule == "a" and decision.action is Action.LOG
    assert [n.rule for n in decision.notes] == ["b"]  # c (dice) does not match


def test_a_regex_reason_names_the_pattern_never_the_prompt() -> None:
    snap = snapshot(
        "policies:\n"
        "  - {name: p, when: {prompt: {regex: ['[0-9]{4} secret [a-z]+']}}, action: alert}\n"
    )
    (mine,) = [p for p in snap.policies if p.name == "p"]
    hit, detail = matches(mine, facts(snap, prompt="my 1234 secret diary"))
    assert hit
    assert "1234" not in detail and "diary" not in detail
    assert "secret" in detail  # the rule's own words
