"""Alert notifications to a parent's phone: plain JSON webhook, ntfy or Gotify.

The request path only calls ``submit`` (never waits); one background task sends, with three
retries and back-off, and a queue of at most 1,000 events (more are dropped and counted). The
same device, rule and action is not sent again within ``throttle_minutes``, so a child
trying fifty times at bedtime makes one notification, not fifty. Tokens are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from proxy.metrics import Metrics

if TYPE_CHECKING:
    import httpx

    from governance.schema import Notification

log = logging.getLogger(__name__)
RETRY_DELAYS = (1.0, 3.0, 9.0)


@dataclass(frozen=True, slots=True)
class Event:
    ts: str
    request_id: str
    device: str
    person: str | None
    provider: str | None
    host: str
    stage: str
    rule: str | None
    action: str
    reason: str
    topic: str | None = None  # a prompt topic (self_harm): said without the prompt's words
    local_time: str | None = None  # "Thu 03 Dec 21:30", the household's zone

    @property
    def title(self) -> str:
        who = self.person or self.device
        if self.topic:
            return f"hearthgate: {who} may need you ({TOPIC_WORDS.get(self.topic, self.topic)})"
        verb = "blocked" if self.action == "block" else "alert"
        return f"hearthgate: {who} {verb} ({self.rule or self.stage})"


TOPIC_WORDS = {"self_harm": "self-harm or suicide"}


def message_of(event: Event) -> str:
    """The notification's text. A topic alert names who, where, what and when, and never
    carries the prompt (nor the policy's reason, which could)."""
    service = event.provider or event.host
    if event.topic:
        who = event.person or event.device
        return (
            f"{who} wrote something on {service} ({event.device}) at {event.local_time} "
            f"that may be about {TOPIC_WORDS.get(event.topic, event.topic)} "
            f"(policy {event.rule}). The words are not sent or stored: talk with them."
        )
    return f"{event.reason} — {event.device}, {service}"


def build_request(target: Notification, event: Event) -> dict[str, Any]:
    """httpx request arguments for one target's format."""
    text = message_of(event)
    if target.format == "ntfy":
        headers = {
            "Title": event.title,
            "Tags": "warning" if event.action != "block" else "no_entry",
            "Priority": "high" if event.action == "block" else "default",
        }
        if target.token:
            headers["Authorization"] = f"Bearer {target.token}"
        return {"url": target.url, "content": text.encode(), "headers": headers}
    if target.format == "gotify":
        headers = {"X-Gotify-Key": target.token} if target.token else {}
        return {
            "url": (target.url or "").rstrip("/") + "/message",
            "headers": headers,
            "json": {
                "title": event.title,
                "message": text,
                "priority": 8 if event.action == "block" else 5,
            },
        }
    return {
        "url": target.url,
        "json": {
            "source": "hearthgate",
            "title": event.title,
            "message": message_of(event),
            **asdict(event),
        },
    }


class Notifier:
    def __init__(
        self, targets: Callable[[], list[Notification]], metrics: Metrics, limit: int = 1000
    ) -> None:
        self._targets = targets
        self._metrics = metrics
        self._queue: asyncio.Queue[Event] = asyncio.Queue(limit)
        self._last: dict[tuple[str, str, str, str | None, str], float] = {}
        self.sent = 0
        self.dropped = 0

    def submit(self, event: Event) -> None:
        """Queue an event for every target that wants it; never blocks the caller."""
        if not any(event.action in t.on for t in self._targets()):
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    async def run(self) -> None:
        event = await self._queue.get()
        import httpx  # on the first alert: a household without notifications never loads it

        async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
            while True:
                for target in self._targets():
                    if event.action in target.on and not self._throttled(target, event):
                        await self._send(client, target, event)
                event = await self._queue.get()

    def _throttled(self, target: Notification, event: Event) -> bool:
        key = (
            target.url or ",".join(target.to),
            event.device,
            event.stage,
            event.rule,
            event.action,
        )
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < target.throttle_minutes * 60:
            return True
        self._last[key] = now
        return False

    async def _send(self, client: httpx.AsyncClient, target: Notification, event: Event) -> None:
        if target.format == "email":
            await self._mail(target, event)
            return
        import httpx

        request = build_request(target, event)
        for attempt, delay in enumerate((*RETRY_DELAYS, None)):
            try:
                response = await client.post(**request)
                if response.status_code < 500:
                    if response.status_code >= 400:
                        log.warning(
                            "notification to %s refused: HTTP %d",
                            _safe(target.url),
                            response.status_code,
                        )
                    else:
                        self.sent += 1
                    return
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
            if delay is None:
                self._metrics.errors.labels("notify").inc()
                log.warning(
                    "notification to %s failed after %d tries (%s)",
                    _safe(target.url),
                    attempt + 1,
                    problem,
                )
                return
            await asyncio.sleep(delay)

    async def _mail(self, target: Notification, event: Event) -> None:
        from proxy.reports import mail  # smtplib and email: only for a household that mails

        try:
            await asyncio.to_thread(mail.send, target, event.title, message_of(event))
            self.sent += 1
        except mail.MailError as exc:
            self._metrics.errors.labels("notify").inc()
            log.warning("notification not sent: %s", exc)


def _safe(url: str | None) -> str:
    """The URL without a query string (which may hold a token) for the log."""
    return (url or "").split("?", 1)[0]
