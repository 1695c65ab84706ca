"""The weekly report: figures per child beside the week before; sent once a week on the
schedule in the rules, by e-mail through a real SMTP server with STARTTLS and a login."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest

from proxy.reports import schedule, weekly
from proxy.store.db import Db
from proxy.store.writer import DECISION_COLUMNS
from tests.governance.helpers import snapshot
from tests.support.smtp import SmtpServer

MONDAY = date(2026, 11, 16)  # the week of Mon 16 to Sun 22 Nov 2026 (Europe/Berlin)


def decision(db: Db, ts: str, person: str, provider: str, *, rule: str | None = None) -> None:
    values: dict[str, object] = dict.fromkeys(DECISION_COLUMNS)
    blocked = rule is not None
    values.update(
        ts=ts,
        request_id=ts,
        device=f"{person}-laptop",
        person=person,
        provider=provider,
        host=f"{provider}.example",
        stage="time_rule" if blocked else "default",
        rule=rule,
        action="block" if blocked else "allow",
        allowed=0 if blocked else 1,
        enforced=1,
    )
    cols = ", ".join(DECISION_COLUMNS)
    with db.transaction() as conn:
        conn.execute(
            f"INSERT INTO decisions ({cols}) VALUES ({', '.join('?' * len(DECISION_COLUMNS))})",
            tuple(values[c] for c in DECISION_COLUMNS),
        )


def household(db: Db) -> None:
    for ts in ("2026-11-17T15:00:01.000Z", "2026-11-17T15:00:40.000Z", "2026-11-18T16:10:00.000Z"):
        decision(db, ts, "alice", "openai")
    decision(db, "2026-11-19T20:30:00.000Z", "alice", "chatgpt")
    decision(db, "2026-11-19T21:30:00.000Z", "alice", "chatgpt", rule="bedtime")
    decision(db, "2026-11-10T15:00:00.000Z", "alice", "openai")  # the week before
    decision(db, "2026-11-10T21:30:00.000Z", "alice", "openai", rule="bedtime")
    decision(db, "2026-11-10T21:31:00.000Z", "alice", "openai", rule="bedtime")
    decision(db, "2026-11-17T15:00:00.000Z", "mom", "openai")  # a parent: not in the report
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO usage (key, day, minutes) VALUES ('person:alice', '2026-11-17', 25), "
            "('person:alice', '2026-11-19', 5), ('person:alice', '2026-11-10', 40)"
        )
        conn.execute(
            "INSERT INTO alerts (ts, person, stage, rule, action, reason) VALUES "
            "('2026-11-18T10:00:00.000Z', 'alice', 'policy', 'kids-safety', 'alert', 'x')"
        )


def test_the_report_compares_each_figure_with_the_week_before(tmp_path: Path) -> None:
    snap = snapshot()
    with Db(tmp_path) as db:
        household(db)
        report = weekly.build(db, snap, MONDAY)
    assert report["week"] == {"start": "2026-11-16", "end": "2026-11-22"}
    assert [p["person"] for p in report["people"]] == ["alice", "bob"]  # the kids
    alice = report["people"][0]
    assert alice["requests"] == {"this_week": 4, "week_before": 1}
    assert alice["minutes"] == {"this_week": 30, "week_before": 40}
    openai = next(s for s in alice["services"] if s["service"] == "openai")
    assert (openai["requests"], openai["minutes"], openai["requests_before"]) == (3, 2, 1)
    assert alice["blocks"] == [{"rule": "bedtime", "count": 1, "count_before": 2}]
    assert alice["alerts"] == [{"rule": "kids-safety", "count": 1, "count_before": 0}]
    assert {c["category"] for c in alice["categories"]} >= {"api"} or alice["categories"]
    text = weekly.text(report)
    assert "requests: 4 (week before 1, +3)" in text and "bedtime 1 (2)" in text


def test_the_schedule_sends_once_per_week_at_the_time_in_the_rules() -> None:
    snap = snapshot("reports: {weekly: {day: sat, at: '09:30'}}\n")
    friday = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    saturday = datetime(2026, 11, 21, 8, 31, tzinfo=UTC)  # 09:31 in Berlin
    assert schedule.due_week(snap, friday, None) is None
    assert schedule.due_week(snap, saturday, None) == MONDAY
    assert schedule.due_week(snap, saturday, MONDAY.isoformat()) is None
    default = snapshot()
    assert default.rules.reports.weekly.day == "sun" and default.rules.reports.weekly.at == "18:00"


def test_email_report_through_a_real_smtp_server_with_starttls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("HG_TEST_SMTP", "s3cret-pw")
    with SmtpServer(tmp_path / "pki", "gate", "s3cret-pw") as smtp:
        snap = snapshot(
            "notifications:\n"
            "  - {format: email, to: [mom@example.net], 'on': [report],\n"
            f"     smtp: {{host: 127.0.0.1, port: {smtp.port}, user: gate,"
            " password_env: HG_TEST_SMTP}}\n"
        )
        with Db(tmp_path) as db:
            household(db)
            report = weekly.build(db, snap, MONDAY)

        async def send() -> int:
            async with httpx.AsyncClient() as client:
                return await schedule.deliver(snap, report, client, context=smtp.client_context)

        assert asyncio.run(send()) == 1
        (message,) = smtp.box.messages
        assert smtp.box.logins == ["gate"]
    assert message["To"] == "mom@example.net"
    assert message["Subject"] == "hearthgate weekly report: alice, bob, 2026-11-16 to 2026-11-22"
    assert "requests: 4 (week before 1, +3)" in message.get_payload()
    assert "s3cret-pw" not in caplog.text


def test_a_wrong_password_is_reported_without_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "pw"
    secret.write_text("wrong-one\n")
    with SmtpServer(tmp_path / "pki", "gate", "right-one") as smtp:
        snap = snapshot(
            "notifications:\n"
            "  - {format: email, to: [mom@example.net], 'on': [report],\n"
            f"     smtp: {{host: 127.0.0.1, port: {smtp.port}, user: gate,"
            f" password_file: '{secret}'}}}}\n"
        )

        async def send() -> int:
            async with httpx.AsyncClient() as client:
                report = {"week": {"start": "a", "end": "b"}, "timezone": "UTC", "people": []}
                return await schedule.deliver(snap, report, client, context=smtp.client_context)

        assert asyncio.run(send()) == 0
        assert smtp.box.messages == []
    assert "not sent" in caplog.text and "wrong-one" not in caplog.text


def test_send_if_due_sends_to_a_webhook_once_a_week(tmp_path: Path) -> None:
    from tests.support.webhook import Webhook

    with Webhook() as hook:
        snap = snapshot(
            "notifications:\n"
            f"  - {{url: '{hook.url}/ntfy', format: ntfy, 'on': [report]}}\n"
            f"  - {{url: '{hook.url}/json', 'on': [alert]}}\n"  # not a report target
        )
        with Db(tmp_path) as db:
            household(db)
        sunday_evening = datetime(2026, 11, 22, 17, 1, tzinfo=UTC)  # 18:01 in Berlin

        async def tick(now: datetime) -> bool:
            async with httpx.AsyncClient() as client:
                return await schedule.send_if_due(tmp_path, snap, now, client)

        assert asyncio.run(tick(datetime(2026, 11, 22, 16, 59, tzinfo=UTC))) is False
        assert asyncio.run(tick(sunday_evening)) is True
        assert asyncio.run(tick(sunday_evening)) is False  # once a week, restarts included
        assert [r.path for r in hook.received] == ["/ntfy"]
        assert "2026-11-16 to 2026-11-22" in hook.received[0].headers["title"]
        assert b"requests: 4 (week before 1, +3)" in hook.received[0].body
