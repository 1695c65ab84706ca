"""``pause``, ``resume``, ``bonus`` and ``report``: a parent's everyday controls.

``pause`` stops a person, a device or a group now (``--minutes N`` or ``--until HH:MM``);
``resume`` ends it early; ``bonus`` adds minutes, requests or tokens to one person's limits
for today; ``report --week`` is the weekly report per child. Changes are audited under
``--as`` and wait for other parents where ``consent.actions`` lists them.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from proxy.cli.common import (
    Common,
    Sub,
    actor_of,
    actor_option,
    emit,
    guarded,
    json_option,
    utc_now,
)

if TYPE_CHECKING:
    from governance.snapshot import Snapshot
    from proxy.store.db import Db


def add(sub: Sub, common: Common) -> None:
    p = _parser(sub, common, "pause", "stop a person, device or group now, for a while")
    p.add_argument("target", help="a person, device or group from the rules")
    span = p.add_mutually_exclusive_group(required=True)
    span.add_argument("--minutes", type=int, help="1-1440")
    span.add_argument("--until", metavar="HH:MM", help="local time (the next one to come)")
    p.add_argument("--reason", default=None, help="why (kept in the audit log)")
    p.set_defaults(handler=guarded(_pause))
    r = _parser(sub, common, "resume", "end a pause now")
    r.add_argument("target", help="the person, device or group that was paused")
    r.set_defaults(handler=guarded(_resume))
    b = _parser(sub, common, "bonus", "raise today's limits for one person")
    b.add_argument("person", help="a person from the rules")
    b.add_argument("--minutes", type=int, default=0, help="extra minutes of use today")
    b.add_argument("--requests", type=int, default=0, help="extra requests today")
    b.add_argument("--tokens", type=int, default=0, help="extra tokens today")
    b.set_defaults(handler=guarded(_bonus))
    rep = sub.add_parser(
        "report",
        help="the weekly report per child",
        description="Requests and minutes of use per service and category, blocks by rule "
        "and alerts, each beside the week before.",
    )
    common(rep)
    json_option(rep)
    rep.add_argument(
        "--week",
        nargs="?",
        const="",
        default="",
        metavar="DATE",
        help="the week holding DATE (2026-11-20; default this week)",
    )
    rep.add_argument("--last", action="store_true", help="the week before this one")
    rep.add_argument("--person", help="one person (default: every child)")
    rep.add_argument(
        "--send", action="store_true", help="also send it to the notifications with on: [report]"
    )
    rep.set_defaults(handler=guarded(_report))


def _parser(sub: Sub, common: Common, name: str, text: str) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=text, description=text)
    common(p)
    actor_option(p)
    json_option(p)
    return p


def until_of(text: str, snap: Snapshot, now: datetime) -> datetime:
    """The next local HH:MM after ``now`` (today, or tomorrow when it has passed)."""
    from governance.errors import StateError

    try:
        hh, mm = (int(x) for x in text.strip().split(":"))
        local = now.astimezone(snap.zone).replace(hour=hh, minute=mm, second=0, microsecond=0)
    except ValueError:
        raise StateError(f"--until takes a time like 18:30, not {text!r}") from None
    if local <= now:
        local = (local + timedelta(days=1)).replace(hour=hh, minute=mm)
    return local


def _pause(args: argparse.Namespace, db: Db, snap: Snapshot) -> int:
    from proxy.store import changes

    now = utc_now()
    payload: dict[str, object] = {"op": "pause", "target": args.target, "reason": args.reason}
    if args.until:
        payload["until"] = until_of(args.until, snap, now).isoformat()
    else:
        payload["minutes"] = args.minutes
    row = changes.perform(db, snap, actor_of(args), "pause", payload, now)
    ended = row.get("unlocks_ended")
    return emit(
        args,
        row,
        lambda: (
            f"{row['target']} is paused until {row['until']}"
            + (f" ({ended} unlock(s) ended)" if ended else "")
        ),
    )


def _resume(args: argparse.Namespace, db: Db, snap: Snapshot) -> int:
    from proxy.store import changes

    payload = {"op": "resume", "target": args.target}
    row = changes.perform(db, snap, actor_of(args), "pause", payload, utc_now())
    return emit(args, row, lambda: f"{row['target']} is no longer paused")


def _bonus(args: argparse.Namespace, db: Db, snap: Snapshot) -> int:
    from proxy.store import changes

    payload = {
        "op": "bonus",
        "person": args.person,
        "minutes": args.minutes,
        "requests": args.requests,
        "tokens": args.tokens,
    }
    row = changes.perform(db, snap, actor_of(args), "bonus", payload, utc_now())
    extra = ", ".join(f"{row[k]} {k}" for k in ("minutes", "requests", "tokens") if row.get(k))
    return emit(args, row, lambda: f"{row['person']} has {extra} extra today ({row['day']})")


def _report(args: argparse.Namespace, db: Db, snap: Snapshot) -> int:
    from governance.errors import StateError
    from proxy.reports import weekly

    if args.person and args.person not in snap.rules.people:
        known = ", ".join(sorted(snap.rules.people)) or "none"
        raise StateError(f"there is no person {args.person!r} in the rules (people: {known})")
    try:
        day = (
            datetime.fromisoformat(args.week).date()
            if args.week
            else utc_now().astimezone(snap.zone).date()
        )
    except ValueError:
        raise StateError(f"--week takes a date like 2026-11-20, not {args.week!r}") from None
    monday = weekly.week_of(day) - (timedelta(days=7) if args.last else timedelta(0))
    report = weekly.build(db, snap, monday, args.person)
    if args.send:
        import asyncio

        import httpx

        from proxy.reports.schedule import deliver

        async def send() -> int:
            async with httpx.AsyncClient(timeout=20, trust_env=False) as client:
                return await deliver(snap, report, client)

        report["sent_to"] = asyncio.run(send())
    return emit(args, report, lambda: weekly.text(report))
