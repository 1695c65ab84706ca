"""A policy alert through the real proxy: allowed, recorded in `alerts`, sent to a webhook."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import KID, Gate, household
from tests.support.proxyproc import wait_until
from tests.support.webhook import Webhook

pytestmark = pytest.mark.e2e
CHAT = [{"role": "user", "content": "hi"}]


def test_personal_data_alert_is_allowed_recorded_and_notified(make_gate) -> None:  # type: ignore[no-untyped-def]
    with Webhook() as hook:
        gate: Gate = make_gate(
            household(
                bedtime=False,
                extra=f"""policies:
  - name: kids-personal-data
    when: {{groups: [kids], prompt: {{pii: [email, phone]}}}}
    action: alert
notifications:
  - {{url: "{hook.url}/family", format: ntfy}}
""",
            )
        )
        reply = gate.openai(KID).chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": "You are a helpful tutor."},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "my email is alice@example.com"}],
                },
            ],
        )
        assert reply.choices
        [row] = gate.rows("device = 'alice-laptop'")
        assert (row["stage"], row["action"], row["allowed"]) == ("policy", "alert", 1)
        wait_until(lambda: len(gate.sql("SELECT * FROM alerts")) == 1, 10, "the alert row")
        wait_until(lambda: len(hook.received) == 1, 10, "the notification")
    note = hook.received[0]
    assert note.path == "/family" and "kids-personal-data" in note.headers["title"]
    assert b"personal data (email)" in note.body
    assert b"alice@example.com" not in note.body, "the prompt itself is never sent"
    alert = gate.sql("SELECT device, rule, reason FROM alerts")[0]
    assert tuple(alert)[:2] == ("alice-laptop", "kids-personal-data")
    assert json.dumps(dict(alert)).count("example.com") == 0


def test_the_running_gate_sends_the_weekly_report_when_it_is_due(make_gate) -> None:  # type: ignore[no-untyped-def]
    # the gate's rules come from the compiled cache: the schedule reads the rules' fields
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from governance.facts import DAY_NAMES

    today = DAY_NAMES[datetime.now(ZoneInfo("UTC")).weekday()]  # household() is in UTC
    with Webhook() as hook:
        gate: Gate = make_gate(
            household(
                bedtime=False,
                extra=f"""reports: {{weekly: {{day: {today}, at: "00:00"}}}}
notifications:
  - {{url: "{hook.url}/family", format: ntfy, "on": [report]}}
""",
            )
        )
        assert gate.openai(KID).chat.completions.create(model="gpt-4o-mini", messages=CHAT).choices
        # the schedule looks every 30 s
        wait_until(lambda: len(hook.received) == 1, 60, "the weekly report")
    report = hook.received[0]
    assert report.path == "/family" and "weekly report" in report.headers["title"]
    assert b"alice" in report.body
