"""What the dashboard reads: today's counts, the last 24 hours by hour, last-seen times, and
quota use — plus ``Store``, which runs store calls in a worker thread like the admin API.

Read-only SQL over the decision log lives here (aggregates only the dashboard draws); every
change goes through the store's own functions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from governance.quotas import bonus_for, limits, today_of, used
from governance.snapshot import Snapshot
from governance.state import RuntimeState
from proxy.admin.auth import Authenticator
from proxy.gate import Gate
from proxy.store.db import Db
from proxy.store.state import iso

if TYPE_CHECKING:
    from governance.schema import Rules

T = TypeVar("T")

# words for (what, period) in the bars
WORDS = {
    ("requests", "day"): "requests today",
    ("tokens", "day"): "tokens today",
    ("minutes", "day"): "minutes today",
    ("cost", "day"): "$ today",
    ("requests", "week"): "requests this week",
    ("tokens", "week"): "tokens this week",
    ("minutes", "week"): "minutes this week",
    ("cost", "week"): "$ this week",
}


class Store:
    """Store calls off the event loop; after a write the gate's state is refreshed at once."""

    def __init__(self, gate: Gate, auth: Authenticator) -> None:
        self.gate, self.auth = gate, auth

    async def read(self, fn: Callable[[Db], T]) -> T:
        return await asyncio.to_thread(self._with_db, fn)

    async def write(self, fn: Callable[[Db], T]) -> T:
        """Run a change; refresh even when it was stored as a consent request instead."""
        try:
            return await asyncio.to_thread(self._with_db, fn)
        finally:
            self.auth.forget()
            await self.gate.cache.refresh(force=True)

    def _with_db(self, fn: Callable[[Db], T]) -> T:
        with Db(self.gate.cache.target) as db:
            return fn(db)


@dataclass(frozen=True, slots=True)
class Counts:
    total: int = 0
    allowed: int = 0

    @property
    def blocked(self) -> int:
        return self.total - self.allowed

    def plus(self, total: int, allowed: int) -> Counts:
        return Counts(self.total + total, self.allowed + allowed)


@dataclass(frozen=True, slots=True)
class QuotaBar:
    who: str  # "alice" or "device alice-laptop"
    policy: str
    what: str  # "requests today"
    used: float
    limit: float  # today's bonus included
    bonus: float = 0  # extra given for today (hearthgate bonus)
    person: str | None = None


def local_midnight(now: datetime, snap: Snapshot) -> datetime:
    local = now.astimezone(snap.zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def today_counts(db: Db, since: datetime) -> tuple[dict[str, Counts], dict[str, Counts]]:
    """Decisions since ``since`` counted per device and per person."""
    rows = db.rows(
        "SELECT device, person, count(*) AS n, coalesce(sum(allowed), 0) AS ok FROM decisions "
        "WHERE ts >= ? GROUP BY device, person",
        (iso(since),),
    )
    devices: dict[str, Counts] = {}
    people: dict[str, Counts] = {}
    for r in rows:
        devices[r["device"]] = devices.get(r["device"], Counts()).plus(r["n"], r["ok"])
        if r["person"]:
            people[r["person"]] = people.get(r["person"], Counts()).plus(r["n"], r["ok"])
    return devices, people


def hourly(db: Db, now: datetime) -> list[tuple[datetime, Counts]]:
    """The last 24 hours, oldest first, one entry per UTC hour (empty hours included)."""
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
    rows = db.rows(
        "SELECT substr(ts, 1, 13) AS hour, count(*) AS n, coalesce(sum(allowed), 0) AS ok "
        "FROM decisions WHERE ts >= ? GROUP BY hour",
        (iso(start),),
    )
    found = {r["hour"]: Counts(r["n"], r["ok"]) for r in rows}
    hours = [start + timedelta(hours=i) for i in range(24)]
    return [(hour, found.get(iso(hour)[:13], Counts())) for hour in hours]


def last_seen(db: Db, devices: list[str]) -> dict[str, str | None]:
    """The newest decision time of each device (one indexed lookup each)."""
    seen: dict[str, str | None] = {}
    for name in devices:
        row = db.row("SELECT max(ts) AS ts FROM decisions WHERE device = ?", (name,))
        seen[name] = row["ts"] if row else None
    return seen


def quota_bars(snap: Snapshot, state: RuntimeState, now: datetime) -> list[QuotaBar]:
    """Every quota limit in the rules, for every person (or device) it applies to."""
    today = now.astimezone(snap.zone).date()
    bars = []
    for policy in snap.policies:
        quota = policy.quota
        if quota is None:
            continue
        for who, key, person in _quota_targets(snap, policy, quota.per):
            count = today_of(state, key, today)
            bonus = bonus_for(state, person, today)
            plain = {(w, p): lim for w, p, lim in limits(quota)}
            for what, period, limit in limits(quota, bonus):
                extra = limit - plain[(what, period)]
                bars.append(
                    QuotaBar(
                        who,
                        policy.name,
                        WORDS[(what, period)],
                        used(count, what, period),
                        limit,
                        extra,
                        person,
                    )
                )
    return bars


def _quota_targets(snap: Snapshot, policy: Any, per: str) -> list[tuple[str, str, str | None]]:
    """(label, usage key, person) of the people — or devices — a quota policy covers."""
    if per == "person":
        return [
            (person, f"person:{person}", person)
            for person, groups in snap.person_groups.items()
            if (not policy.people or person in policy.people)
            and (not policy.groups or policy.groups & groups)
            and (
                not policy.devices
                or any(d.person == person for n, d in snap.devices.items() if n in policy.devices)
            )
        ]
    return [
        (f"device {name}", f"device:{name}", info.person)
        for name, info in snap.devices.items()
        if (not policy.devices or name in policy.devices)
        and (not policy.people or info.person in policy.people)
        and (not policy.groups or policy.groups & info.groups)
    ]


def redacted_rules(rules: Rules) -> dict[str, Any]:
    """The rules as loaded, every default filled in, secrets (tokens, PIN hash) hidden."""
    data = rules.model_dump(mode="json")
    if data.get("overrides", {}).get("master_pin"):
        data["overrides"]["master_pin"] = "(set; hidden)"
    for note in data.get("notifications", []):
        if note.get("token"):
            note["token"] = "(set; hidden)"
    return data


@dataclass(frozen=True, slots=True)
class View:
    """What a page renderer gets: the gate, the store, and who is looking."""

    gate: Gate
    store: Store
    admin_name: str
    can_write: bool
    csrf: str

    @property
    def snap(self) -> Snapshot:
        return self.gate.rules.snapshot
