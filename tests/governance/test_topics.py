"""Safety topics: first-person statements in four languages are found; homework, literature
and everyday exaggeration are not (the lists are tuned to miss rather than to flag)."""

from __future__ import annotations

import pytest

from governance import pipeline
from governance.facts import Action, Stage
from governance.state import RuntimeState
from governance.topics import TOPICS, find_topic, fold
from tests.governance.helpers import at, facts, snapshot

FOUND = [
    "I want to kill myself",
    "honestly i dont want to live anymore",
    "I don’t want to be alive.",
    "how many pills would kill me",
    "I've been cutting myself again",
    "Ich will nicht mehr leben",
    "ich möchte mich umbringen",
    "Je veux mourir",
    "comment me suicider",
    "Quiero morirme",
    "ya no quiero vivir",
    "I WANNA KILL MYSELF!!!",
]
NOT_FOUND = [
    "Why does Romeo want to die at the end of the play? Essay help",
    "Write a poem where the character says I want to die",
    "history of suicide prevention in Japan",
    "this homework makes me want to die lol",
    "I could kill for a pizza",
    "Interpretation: warum will Werther sterben?",
    "Analyse du personnage: il veut mourir",
    "análisis del poema: quiero morir",
    "me corto el pelo mañana",
    "how do I kill a python process",
    "",
]


@pytest.mark.parametrize("text", FOUND)
def test_first_person_statements_are_found(text: str) -> None:
    assert find_topic(text, ("self_harm",)) == "self_harm"


@pytest.mark.parametrize("text", NOT_FOUND)
def test_homework_literature_and_exaggeration_are_not(text: str) -> None:
    assert find_topic(text, ("self_harm",)) is None


def test_the_lists_are_data_in_four_languages() -> None:
    assert set(TOPICS) == {"self_harm"}
    assert len(TOPICS["self_harm"].phrases) > 80
    assert fold("Élève’s  «text»") == " eleves text "


def test_a_topic_policy_alerts_and_its_reason_never_quotes_the_prompt() -> None:
    snap = snapshot(
        "policies:\n  - {name: kids-safety, when: {groups: [kids], prompt: {topics: [self_harm]}},"
        " action: alert}\n"
    )
    prompt = "I want to kill myself tonight"
    decision = pipeline.decide(
        facts(snap, prompt=prompt), snap, RuntimeState(), at("2026-11-20T21:00")
    )
    assert decision.allowed and decision.stage is Stage.POLICY
    assert (decision.action, decision.rule) == (Action.ALERT, "kids-safety")
    reason = decision.reason
    assert "self_harm" in reason and "kill" not in reason and "tonight" not in reason
    plain = pipeline.decide(
        facts(snap, prompt="essay on Hamlet"), snap, RuntimeState(), at("2026-11-20T21:00")
    )
    assert plain.stage is Stage.DEFAULT and plain.notes == ()
