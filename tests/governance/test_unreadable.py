"""settings.unreadable: a body the gate could not read is never "no match" (SPEC section 3)."""

from __future__ import annotations

import pytest

from governance import pipeline
from governance.facts import Action, Endpoint, Stage
from governance.state import RuntimeState
from tests.governance.helpers import at, facts, snapshot

NOON = at("2026-11-20T12:00")
WHY = "its body is encoded as 'x-teen', which the gate cannot read"


def decide(when: str, action: str = "block", setting: str = "block", **request: object):  # type: ignore[no-untyped-def]
    snap = snapshot(
        f"settings: {{unreadable: {setting}}}\n"
        f"policies:\n  - {{name: p, when: {when}, action: {action}}}\n",
        base=BASE_NO_SETTINGS,
    )
    return pipeline.decide(facts(snap, **request), snap, RuntimeState(), NOON)  # type: ignore[arg-type]


BASE_NO_SETTINGS = """
version: 1
groups: {parents: {}, kids: {}, guests: {}}
people:
  mom: {groups: [parents]}
  alice: {groups: [kids]}
devices:
  alice-laptop: {person: alice, ips: [192.168.1.50]}
  bob-tablet: {ips: [192.168.1.51], inspect: sni}
  mom-laptop: {person: mom, ips: [192.168.1.10]}
"""


@pytest.mark.parametrize(
    "when",
    [
        "{groups: [kids], models_not: ['gpt-4o-mini*']}",
        "{groups: [kids], models: ['gpt-4o*']}",
        "{groups: [kids], prompt: {keywords: [casino]}}",
        "{groups: [kids], prompt: {pii: [email]}}",
        "{groups: [kids], max_prompt_chars: 100}",
    ],
)
def test_a_body_condition_on_an_unread_body_blocks(when: str) -> None:
    decision = decide(when, unreadable=WHY, model=None, prompt=None)  # type: ignore[arg-type]
    assert (decision.action, decision.stage, decision.rule) == (Action.BLOCK, Stage.POLICY, "p")
    assert "could not read this request" in decision.reason and "x-teen" in decision.reason
    # an alert or log policy can be dodged the same way: it blocks too
    assert decide(when, "alert", unreadable=WHY, model=None).action is Action.BLOCK  # type: ignore[arg-type]


def test_setting_allow_skips_the_policy() -> None:
    snap = snapshot(
        "settings: {unreadable: allow}\n"
        "policies:\n  - {name: p, when: {prompt: {keywords: [casino]}}, action: block}\n",
        base=BASE_NO_SETTINGS,
    )
    decision = pipeline.decide(facts(snap, unreadable=WHY), snap, RuntimeState(), NOON)
    assert decision.stage is Stage.DEFAULT and decision.allowed


def test_allow_policies_never_grant_on_an_unread_body() -> None:
    decision = decide("{models: ['gpt-4o-mini*']}", "allow", unreadable=WHY)  # type: ignore[arg-type]
    assert decision.stage is Stage.DEFAULT  # skipped, not allowed by the policy


def test_other_devices_and_rules_are_unaffected() -> None:
    when = "{groups: [kids], prompt: {keywords: [casino]}}"
    assert decide(when, ip="192.168.1.10", unreadable=WHY).stage is Stage.DEFAULT  # type: ignore[arg-type]
    assert decide(when, ip="192.168.1.51", unreadable=WHY).stage is Stage.DEFAULT  # type: ignore[arg-type]
    assert decide("{groups: [kids]}", "log", unreadable=WHY).action is Action.LOG  # type: ignore[arg-type]


def test_endpoints_named_in_an_unread_body() -> None:
    when = "{groups: [kids], endpoints: [chat]}"
    unknown = {"endpoint": Endpoint.FILES, "endpoint_known": False, "unreadable": WHY}
    assert decide(when, **unknown).action is Action.BLOCK  # type: ignore[arg-type]
    known = {"endpoint": Endpoint.FILES, "unreadable": WHY}
    assert decide(when, **known).stage is Stage.DEFAULT  # type: ignore[arg-type]


def test_a_run_that_names_no_model_is_unreadable_for_model_rules_only() -> None:
    run = {"model": None, "model_unknown": True}
    models = decide("{models_not: ['gpt-4o-mini*']}", **run)  # type: ignore[arg-type]
    assert "does not say which model" in models.reason
    assert decide("{prompt: {keywords: [casino]}}", **run).stage is Stage.DEFAULT  # type: ignore[arg-type]


def test_every_model_of_a_batch_counts() -> None:
    batch = {"model": "gpt-4o-mini", "models": ("gpt-4o-mini", "gpt-4o")}
    assert decide("{models_not: ['gpt-4o-mini*']}", **batch).action is Action.BLOCK  # type: ignore[arg-type]
    assert decide("{models: ['gpt-4o']}", **batch).action is Action.BLOCK  # type: ignore[arg-type]
    assert decide("{models: ['gpt-4o-mini*']}", "allow", **batch).stage is Stage.DEFAULT  # type: ignore[arg-type]
    one = {"models": ("gpt-4o-mini",)}
    assert decide("{models: ['gpt-4o-mini*']}", "allow", **one).action is Action.ALLOW  # type: ignore[arg-type]
