"""Quotas: how much a person (or device) may use per local day and ISO week.

Counters are kept per local day in the rules' zone and reset at local midnight; the weekly
ones at Monday 00:00. A request is over quota when the counter has already reached the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from governance.facts import Identity
from governance.state import Bonus, RuntimeState, UsageCount

if TYPE_CHECKING:  # annotations only: a snapshot read back from the CLI cache has no pydantic
    from governance.schema import Quota


@dataclass(frozen=True, slots=True)
class Exceeded:
    what: str  # "100 requests per day"
    retry_after: int  # seconds until the counter resets
    reset_at: datetime
    minutes: bool = False  # a time allowance (said to the child differently)

    def child_message(self) -> str:
        """What the child reads when no message was written in the rules."""
        back = f"{self.reset_at:%H:%M} on {self.reset_at:%a %d %b}"
        period = "Today's" if "per day" in self.what else "This week's"
        amount = self.what.rsplit(" per ", 1)[0]
        if self.minutes:
            return f"{period} {amount} are used up. They come back at {back}"
        return f"{period} allowance of {amount} is used up. It comes back at {back}"


def usage_key(quota: Quota, ident: Identity) -> str:
    if quota.per == "person" and ident.person is not None:
        return f"person:{ident.person}"
    return f"device:{ident.device}"


def usage_keys(ident: Identity) -> tuple[str, ...]:
    """Every counter one request adds to."""
    keys = [f"device:{ident.device}"]
    if ident.person is not None:
        keys.append(f"person:{ident.person}")
    return tuple(keys)


def today_of(state: RuntimeState, key: str, local_day: date) -> UsageCount:
    return rolled(state.usage.get(key), local_day)


def rolled(count: UsageCount | None, local_day: date) -> UsageCount:
    """The counter as it stands on ``local_day``: a new day keeps only its week's totals."""
    if count is None:
        return UsageCount(local_day)
    if count.day == local_day:
        return count
    if count.day.isocalendar()[:2] == local_day.isocalendar()[:2]:
        return UsageCount(
            local_day,
            week_requests=count.week_requests,
            week_tokens=count.week_tokens,
            week_cost=count.week_cost,
            week_minutes=count.week_minutes,
            last_minute=count.last_minute,
        )
    return UsageCount(local_day, last_minute=count.last_minute)


def bonus_for(state: RuntimeState, person: str | None, local_day: date) -> Bonus | None:
    """Today's extra allowance for this person (``hearthgate bonus``), if any."""
    if person is None or not state.bonuses:
        return None
    bonus = state.bonuses.get(person)
    return bonus if bonus is not None and bonus.day == local_day else None


def limits(quota: Quota, bonus: Bonus | None = None) -> tuple[tuple[str, str, float], ...]:
    """(what, period, limit) for each limit the quota sets, today's bonus added: a bonus
    raises the day's limit and, for that day, the week's."""
    extra = {
        "requests": bonus.requests if bonus else 0,
        "tokens": bonus.tokens if bonus else 0,
        "minutes": bonus.minutes if bonus else 0,
        "cost": 0,
    }
    found = []
    for period in ("day", "week"):
        for what in ("requests", "tokens", "minutes", "cost"):
            limit = getattr(quota, f"{what}_per_{period}")
            if limit is not None:
                found.append((what, period, limit + extra[what]))
    return tuple(found)


def used(count: UsageCount, what: str, period: str) -> float:
    prefix = "week_" if period == "week" else ""
    return float(getattr(count, prefix + what))


def check(
    quota: Quota, count: UsageCount, local: datetime, bonus: Bonus | None = None
) -> Exceeded | None:
    this_minute = int(local.timestamp() // 60)
    for what, period, limit in limits(quota, bonus):
        spent = used(count, what, period)
        if what == "minutes" and count.last_minute == this_minute:
            spent -= 1  # this minute is already counted: more requests in it are free
        if spent < limit:
            continue
        if period == "day":
            reset = _next_midnight(local)
        else:
            reset = _midnight(local.date() + timedelta(days=7 - local.weekday()), local)
        return _exceeded(f"{_amount(what, limit)} per {period}", reset, local, what == "minutes")
    return None


def _amount(what: str, limit: float) -> str:
    return f"${limit:.2f}" if what == "cost" else f"{int(limit)} {what}"


def _exceeded(what: str, reset: datetime, local: datetime, minutes: bool = False) -> Exceeded:
    # subtract in UTC: aware datetimes sharing one tzinfo subtract as wall-clock times,
    # which is an hour off on the days daylight saving changes
    seconds = max(1, int((reset.astimezone(UTC) - local.astimezone(UTC)).total_seconds()))
    return Exceeded(what, seconds, reset, minutes)


def _next_midnight(local: datetime) -> datetime:
    return _midnight(local.date() + timedelta(days=1), local)


def _midnight(day: date, local: datetime) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=local.tzinfo)
