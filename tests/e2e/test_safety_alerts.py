"""A safety alert through the real proxy: the request goes through, the parent's phone gets
who, which service, which topic and when, and the prompt's words are sent and stored nowhere."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import KID, Gate, household
from tests.support.proxyproc import wait_until
from tests.support.webhook import Webhook

pytestmark = pytest.mark.e2e
PROMPT = "nobody would notice, i dont want to live anymore"


def test_self_harm_topic_alerts_without_the_prompt(make_gate) -> None:  # type: ignore[no-untyped-def]
    with Webhook() as hook:
        gate: Gate = make_gate(
            household(
                bedtime=False,
                extra=f"""policies:
  - name: kids-safety
    when: {{groups: [kids], prompt: {{topics: [self_harm]}}}}
    action: alert
notifications:
  - {{url: "{hook.url}/phone", format: ntfy}}
  - {{url: "{hook.url}/hook", format: json}}
""",
            )
        )
        client = gate.openai(KID)
        homework = [{"role": "user", "content": "Essay: why does Hamlet want to die?"}]
        assert client.chat.completions.create(model="gpt-4o-mini", messages=homework).choices
        worried = [{"role": "user", "content": PROMPT}]
        assert client.chat.completions.create(model="gpt-4o-mini", messages=worried).choices
        wait_until(lambda: len(hook.received) == 2, 10, "the notifications")
        rows = gate.rows("device = 'alice-laptop'", expect=2)
    assert [r["action"] for r in rows] == ["allow", "alert"]
    phone = next(n for n in hook.received if n.path == "/phone")
    body = phone.body.decode()
    assert "alice" in phone.headers["title"] and "self-harm" in phone.headers["title"]
    for expected in ("alice", "openai", "self-harm or suicide", "kids-safety", "at "):
        assert expected in body, expected
    hook_body = next(n for n in hook.received if n.path == "/hook").body.decode()
    assert json.loads(hook_body)["topic"] == "self_harm"
    stored = json.dumps([dict(r) for r in gate.sql("SELECT * FROM alerts")])
    stored += json.dumps([dict(r) for r in gate.sql("SELECT * FROM decisions")])
    for words in ("live anymore", "nobody would notice"):
        assert words not in body and words not in hook_body and words not in stored
