"""The rules in a parent's words."""

from __future__ import annotations

import pytest

from governance.schema import Policy, TimeRule
from proxy.admin.dashboard import sentences


@pytest.mark.parametrize(
    ("days", "text"),
    [
        (["sun", "mon", "tue", "wed", "thu"], "Sunday to Thursday"),
        (["mon", "tue", "wed", "thu", "fri"], "Monday to Friday"),
        (["sat", "sun"], "Saturday and Sunday"),
        (["mon", "wed", "fri"], "Monday, Wednesday and Friday"),
        (["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "every day"),
    ],
)
def test_days(days: list[str], text: str) -> None:
    assert sentences.days_text(days) == text


def test_a_time_rule_and_policies_as_sentences() -> None:
    bedtime = TimeRule.model_validate(
        {
            "name": "bedtime",
            "start": "21:00",
            "end": "07:00",
            "days": ["sun", "mon", "tue", "wed", "thu"],
            "applies_to": {"groups": ["kids"]},
        }
    )
    assert sentences.time_rule(bedtime) == (
        "Bedtime for kids: Sunday to Thursday, 21:00 to 07:00 — blocked."
    )
    images = Policy.model_validate(
        {"name": "kids-no-images", "when": {"groups": ["kids"], "endpoints": ["images"]}}
    )
    assert sentences.policy(images) == "kids-no-images: for kids, pictures — blocked."
    daily = Policy.model_validate(
        {
            "name": "kids-daily",
            "when": {"groups": ["kids"]},
            "quota": {"minutes_per_day": 60, "requests_per_day": 100},
        }
    )
    assert sentences.policy(daily) == (
        "kids-daily: for kids — at most 60 minutes of use a day and 100 requests a day "
        "(each person); then blocked."
    )
    safety = Policy.model_validate(
        {"name": "s", "action": "alert", "when": {"prompt": {"topics": ["self_harm"]}}}
    )
    assert "prompts about self-harm or suicide" in sentences.policy(safety)
    assert "null" not in sentences.policy(safety)
