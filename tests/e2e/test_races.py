"""Two requests at once (issue 14, class 5): a quota is reserved when a request is allowed,
and PIN guesses are counted before they are checked."""

from __future__ import annotations

import re
import threading
import uuid
from typing import Any

import openai
import pytest

from tests.e2e.conftest import KID, PARENT, Gate, household
from tests.support.fake_llm import FakeLLM
from tests.support.proxyproc import wait_until

pytestmark = pytest.mark.e2e
QUOTA = """allowlist:
  - {device: mom-laptop, reason: parent}
policies:
  - name: kids-daily
    when: {groups: [kids]}
    quota: {per: person, requests_per_day: 5}
    message: That's enough for today.
  - name: everyone-daily
    when: {groups: [parents]}
    quota: {per: person, requests_per_day: 1}
"""
PINS = """overrides:
  max_attempts: 3
  lockout_minutes: 15
"""


def _all_at_once(count: int, work: Any) -> list[Any]:
    """``work(i)`` in ``count`` threads released together; each result or exception."""
    results: list[Any] = [None] * count
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - the test counts each outcome
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_thirty_concurrent_requests_let_exactly_the_quota_through(
    make_gate: Any, fake_llm: FakeLLM
) -> None:
    gate: Gate = make_gate(household(bedtime=False, extra=QUOTA))
    tag = uuid.uuid4().hex[:10]
    clients = [gate.openai(KID) for _ in range(30)]

    def ask(i: int) -> str:
        stream = clients[i].chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"{tag} question {i}"}],
            stream=True,
            extra_headers={"x-fake-delay-ms": "150"},  # each answer takes about a second
        )
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    results = _all_at_once(30, ask)
    answered = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert (len(answered), len(refused)) == (5, 25), results
    reached = [r for r in fake_llm.snapshot() if tag.encode() in r.body]
    assert len(reached) == 5
    gate.rows("device = 'alice-laptop'", expect=30)
    assert len(gate.rows("stage = 'quota' AND device = 'alice-laptop'", expect=25)) == 25
    wait_until(lambda: _usage(gate, "person:alice") == 5, 10, "alice's 5 requests saved")

    # the allowlisted parent is not counted, although a quota applies to her group
    with gate.http(PARENT) as parent:
        for _ in range(3):
            url = "https://api.openai.com/v1/chat/completions"
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": tag}]}
            assert parent.post(url, json=body).status_code == 200
    assert _usage(gate, "person:mom") is None


def _usage(gate: Gate, key: str) -> int | None:
    rows = gate.sql("SELECT SUM(requests) FROM usage WHERE key = ?", (key,))
    return rows[0][0] if rows else None


def test_concurrent_wrong_pins_are_checked_at_most_max_attempts_times(
    make_gate: Any, fake_llm: FakeLLM
) -> None:
    gate: Gate = make_gate(household(bedtime=True, extra=PINS))
    url = "https://api.openai.com/v1/chat/completions"
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "late question"}]}
    clients = [gate.http(KID) for _ in range(12)]

    def guess(i: int) -> str:
        answer = clients[i].post(url, json=body, headers={"X-Hearthgate-Pin": f"{7000 + i}"})
        assert answer.status_code == 403
        return str(answer.json()["error"]["message"])

    messages = _all_at_once(12, guess)
    assert all(isinstance(m, str) for m in messages), messages
    assert sum("attempt(s) left" in m for m in messages) == 3
    assert sum("too many wrong PINs" in m for m in messages) == 9
    metrics = gate.metrics()
    assert re.search(r'override_attempts_total\{result="wrong_pin"\} 3\.0', metrics)
    assert re.search(r'override_attempts_total\{result="locked_out"\} 9\.0', metrics)
    for client in clients:
        client.close()
