"""When the weekly report goes out (``reports.weekly``, default Sunday 18:00 local) and
sending it, once per week, to every ``notifications`` target with ``report`` in ``on``.

Which week was sent last is kept in the database (``meta.report_sent_week``), so a restart
neither skips nor repeats a week; a gate that was off at the hour sends when it comes back
during the same week.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from governance.facts import DAY_NAMES
from proxy.reports import weekly

if TYPE_CHECKING:  # httpx, smtplib and email load when a report is due, not at the gate's start
    import httpx

    from governance.schema import Notification
    from governance.snapshot import Snapshot
from proxy.store.db import Db
from proxy.store.sql.target import Target

log = logging.getLogger(__name__)
SENT_KEY = "report_sent_week"


def due_week(snap: Snapshot, now: datetime, last_sent: str | None) -> date | None:
    """The Monday of the week whose report is due at ``now``, or None."""
    plan = snap.rules.reports.weekly
    local = now.astimezone(snap.zone)
    monday = weekly.week_of(local.date())
    day = monday + timedelta(days=DAY_NAMES.index(plan.day))
    # the rules' own text: a snapshot read from the cache holds records, not the models
    send_at = datetime.combine(day, time.fromisoformat(plan.at), tzinfo=snap.zone)
    if local >= send_at and last_sent != monday.isoformat():
        return monday
    return None


def targets(snap: Snapshot) -> list[Notification]:
    return [t for t in snap.rules.notifications if "report" in t.on]


def subject(report: dict[str, Any]) -> str:
    names = ", ".join(p["person"] for p in report["people"]) or "nobody"
    week = report["week"]
    return f"hearthgate weekly report: {names}, {week['start']} to {week['end']}"


async def deliver(
    snap: Snapshot, report: dict[str, Any], client: httpx.AsyncClient, **mail_options: Any
) -> int:
    """Send ``report`` to every report target; the number that took it."""
    import httpx

    from proxy.reports import mail

    title, body = subject(report), weekly.text(report)
    sent = 0
    for target in targets(snap):
        try:
            if target.format == "email":
                await asyncio.to_thread(mail.send, target, title, body, **mail_options)
            else:
                response = await client.post(**_request(target, title, body, report))
                response.raise_for_status()
            sent += 1
        except (mail.MailError, httpx.HTTPError) as exc:
            where = target.smtp.host if target.smtp else (target.url or "").split("?", 1)[0]
            log.warning("weekly report to %s not sent: %s", where, type(exc).__name__)
    return sent


def _request(target: Notification, title: str, body: str, report: Any) -> dict[str, Any]:
    url = target.url or ""
    if target.format == "ntfy":
        headers = {"Title": title, "Tags": "bar_chart"}
        if target.token:
            headers["Authorization"] = f"Bearer {target.token}"
        return {"url": url, "content": body.encode(), "headers": headers}
    if target.format == "gotify":
        headers = {"X-Gotify-Key": target.token} if target.token else {}
        return {
            "url": url.rstrip("/") + "/message",
            "headers": headers,
            "json": {"title": title, "message": body, "priority": 4},
        }
    return {"url": url, "json": {"source": "hearthgate", "title": title, "report": report}}


async def run(
    where: Target,
    snapshot: Callable[[], Snapshot],
    clock: Callable[[], datetime],
    interval: float = 30.0,
) -> None:
    client: httpx.AsyncClient | None = None
    try:
        while True:
            await asyncio.sleep(interval)
            try:
                snap = snapshot()
                if not targets(snap):
                    continue
                if client is None:  # the first time a household has somewhere to send it
                    import httpx

                    client = httpx.AsyncClient(timeout=20, trust_env=False)
                await send_if_due(where, snap, clock(), client)
            except Exception as exc:  # noqa: BLE001 - a report must never stop the gate
                log.warning("weekly report: %s", exc)
    finally:
        if client is not None:
            await client.aclose()


async def send_if_due(
    where: Target | Path, snap: Snapshot, now: datetime, client: httpx.AsyncClient
) -> bool:
    if not targets(snap):
        return False

    def read() -> tuple[date | None, dict[str, Any] | None]:
        with Db(where) as db:
            row = db.row("SELECT value FROM meta WHERE key = ?", (SENT_KEY,))
            monday = due_week(snap, now, row["value"] if row else None)
            if monday is None:
                return None, None
            with db.transaction() as conn:  # claimed before sending: once, by one gate
                claimed = conn.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO "
                    "UPDATE SET value = excluded.value WHERE meta.value <> excluded.value",
                    (SENT_KEY, monday.isoformat()),
                ).rowcount
            if claimed != 1:
                return None, None  # another gate sharing the database took it
            return monday, weekly.build(db, snap, monday)

    monday, report = await asyncio.to_thread(read)
    if monday is None or report is None:
        return False
    await deliver(snap, report, client)
    return True
