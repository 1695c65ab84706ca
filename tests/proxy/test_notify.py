"""Notifications against a real local webhook receiver: formats, retries, throttling."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest

from governance.schema import Notification
from proxy import notify
from proxy.metrics import Metrics
from proxy.notify import Event, Notifier, build_request
from tests.support.webhook import Webhook

EVENT = Event(
    "2026-11-20T21:30:00.000Z",
    "req1",
    "alice-laptop",
    "alice",
    "openai",
    "api.openai.com",
    "policy",
    "kids-personal-data",
    "alert",
    "prompt contains personal data (email)",
)


def test_formats() -> None:
    plain = build_request(Notification(url="http://h/x"), EVENT)
    assert plain["json"]["device"] == "alice-laptop" and plain["json"]["source"] == "hearthgate"
    ntfy = build_request(Notification(url="http://h/topic", format="ntfy", token="tk"), EVENT)
    assert ntfy["headers"]["Title"] == "hearthgate: alice alert (kids-personal-data)"
    assert ntfy["headers"]["Authorization"] == "Bearer tk"
    assert b"personal data" in ntfy["content"]
    gotify = build_request(Notification(url="http://h/", format="gotify", token="gt"), EVENT)
    assert gotify["url"] == "http://h/message" and gotify["headers"] == {"X-Gotify-Key": "gt"}
    assert gotify["json"]["priority"] == 5


async def run_notifier(
    targets: list[Notification], events: list[Event], wait_for: int, hook: Webhook
) -> Notifier:
    notifier = Notifier(lambda: targets, Metrics())
    task = asyncio.create_task(notifier.run())
    for event in events:
        notifier.submit(event)
    for _ in range(200):
        if len(hook.received) >= wait_for:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)
    task.cancel()
    return notifier


async def test_retries_then_delivers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notify, "RETRY_DELAYS", (0.05, 0.05, 0.05))
    with Webhook(statuses=[500, 503]) as hook:
        notifier = await run_notifier([Notification(url=hook.url + "/hook")], [EVENT], 3, hook)
    assert len(hook.received) == 3 and notifier.sent == 1
    assert json.loads(hook.received[-1].body)["rule"] == "kids-personal-data"


async def test_gives_up_after_retries_and_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notify, "RETRY_DELAYS", (0.01, 0.01, 0.01))
    with Webhook(statuses=[500] * 10) as hook:
        notifier = await run_notifier([Notification(url=hook.url)], [EVENT], 4, hook)
    assert len(hook.received) == 4 and notifier.sent == 0
    assert notifier._metrics.errors.labels("notify")._value.get() == 1


async def test_throttle_and_filter_by_action() -> None:
    block = replace(EVENT, action="block")
    with Webhook() as hook:
        await run_notifier(
            [Notification(url=hook.url, on=["alert"])], [EVENT, EVENT, EVENT, block], 1, hook
        )
    assert len(hook.received) == 1  # three alike within throttle_minutes, and no block


async def test_unreachable_target_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notify, "RETRY_DELAYS", (0.01,))
    notifier = Notifier(lambda: [Notification(url="http://127.0.0.1:9/")], Metrics())
    task = asyncio.create_task(notifier.run())
    notifier.submit(EVENT)
    await asyncio.sleep(0.5)
    assert not task.done()
    task.cancel()
