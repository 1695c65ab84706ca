"""A kid runs out of daily requests: the SDK raises its rate-limit error until midnight,
and the count survives a restart of the gate."""

from __future__ import annotations

import openai
import pytest

from tests.e2e.conftest import KID, Gate, household

pytestmark = pytest.mark.e2e
CHAT = [{"role": "user", "content": "one more question"}]
QUOTA = """policies:
  - name: kids-daily
    when: {groups: [kids]}
    quota: {per: person, requests_per_day: 3}
    message: That's enough for today.
"""


def test_daily_requests_run_out_and_stay_out_after_a_restart(make_gate) -> None:  # type: ignore[no-untyped-def]
    rules = household(bedtime=False, extra=QUOTA)
    gate: Gate = make_gate(rules)
    client = gate.openai(KID)
    for _ in range(3):
        assert client.chat.completions.create(model="gpt-4o-mini", messages=CHAT).choices
    gate.rows("device = 'alice-laptop'", expect=3)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    err = info.value
    assert "That's enough for today." in str(err) and "resets at 00:00" in str(err)
    retry_after = int(err.response.headers["retry-after"])
    assert 0 < retry_after <= 24 * 3600
    assert err.body["code"] == "hearthgate_quota"
    row = gate.rows("stage = 'quota'")[0]
    assert (row["status"], row["rule"], row["allowed"]) == (429, "kids-daily", 0)

    gate.proc.stop()
    restarted: Gate = make_gate(rules)
    with pytest.raises(openai.RateLimitError):
        restarted.openai(KID).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    usage = restarted.sql(
        "SELECT requests, tokens_in, tokens_out FROM usage WHERE key = 'person:alice'"
    )
    assert tuple(usage[0]) == (3, 33, 21)
