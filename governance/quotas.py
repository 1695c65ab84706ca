"""Quotas: how much a person (or device) may use per local day and ISO week.

Counters are kept per local day in the rules' zone and reset at local midnight; the weekly
ones at Monday 00:00. A request is over quota when the counter has already reached the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from governance.facts import Identity
from governance.state import RuntimeState, UsageCount

if TYPE_CHECKING:  # annotations only: a snapshot read back from the CLI cache has no pydantic
    from governance.schema import Quota


@dataclass(frozen=True, slots=True)
class Exceeded:
    what: str  # "100 requests per day"
    retry_after: int  # seconds until the counter resets
    reset_at: datetime


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
        )
    return UsageCount(local_day)


def check(quota: Quota, count: UsageCount, local: datetime) -> Exceeded | None:
    day_limits = (
        ("requests", quota.requests_per_day, count.requests),
        ("tokens", quota.tokens_per_day, count.tokens),
        ("cost", quota.cost_per_day, count.cost),
    )
    for what, limit, used in day_limits:
        if limit is not None and used >= limit:
            return _exceeded(f"{_amount(what, limit)} per day", _next_midnight(local), local)
    week_limits = (
        ("requests", quota.requests_per_week, count.week_requests),
        ("tokens", quota.tokens_per_week, count.week_tokens),
        ("cost", quota.cost_per_week, count.week_cost),
    )
    for what, limit, used in week_limits:
        if limit is not None and used >= limit:
            monday = local.date() + timedelta(days=7 - local.weekday())
            return _exceeded(f"{_amount(what, limit)} per week", _midnight(monday, local), local)
    return None


def _amount(what: str, limit: float) -> str:
    return f"${limit:.2f}" if what == "cost" else f"{int(limit)} {what}"


def _exceeded(what: str, reset: datetime, local: datetime) -> Exceeded:
    # subtract in UTC: aware datetimes sharing one tzinfo subtract as wall-clock times,
    # which is an hour off on the days daylight saving changes
    seconds = max(1, int((reset.astimezone(UTC) - local.astimezone(UTC)).total_seconds()))
    return Exceeded(what, seconds, reset)


def _next_midnight(local: datetime) -> datetime:
    return _midnight(local.date() + timedelta(days=1), local)


def _midnight(day: date, local: datetime) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=local.tzinfo)
