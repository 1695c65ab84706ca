"""Stage 5: time rules — bedtime, school hours, homework windows.

A window from ``start`` to ``end`` on the listed days, in the rules' time zone. When ``end``
is not after ``start`` the window runs past midnight and belongs to its start day: a Friday
21:00-07:00 rule covers Saturday 02:00, not Friday 02:00. ``start == end`` is the whole day.
Lower priority numbers win; the first matching rule decides. ``block`` denies; ``alert`` and
``log`` are recorded but let later stages decide.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from governance.facts import Action, Decision, Identity, RequestFacts, Stage
from governance.snapshot import CompiledTimeRule, Selector, Snapshot
from governance.state import RuntimeState


def evaluate(
    facts: RequestFacts, snap: Snapshot, state: RuntimeState, now: datetime
) -> Decision | None:
    local = to_local(now, snap)
    minute, weekday = local.hour * 60 + local.minute, local.weekday()
    ident = facts.identity
    for rule in _candidates(snap, state, ident):
        if _open(rule, minute, weekday):
            return _decision(rule, local, minute, snap)
    return None


def _candidates(
    snap: Snapshot, state: RuntimeState, ident: Identity
) -> tuple[CompiledTimeRule, ...]:
    """The rules covering this identity, by priority (runtime rules merged in)."""
    static = snap.rules_for(ident)[0]
    if not state.time_rules:
        return static
    extra = tuple(r for r in state.time_rules if r.applies_to.covers(ident))
    return tuple(sorted(static + extra, key=lambda r: r.priority)) if extra else static


def _open(rule: CompiledTimeRule, minute: int, weekday: int) -> bool:
    """The same test as ``window_start_day``, on integers (the hot path)."""
    start, end, days = rule.start_min, rule.end_min, rule.days
    if start == end:
        return weekday in days
    if start < end:
        return start <= minute < end and weekday in days
    if minute >= start:
        return weekday in days
    return minute < end and (weekday - 1) % 7 in days


def to_local(now: datetime, snap: Snapshot) -> datetime:
    if now.tzinfo is None:
        raise ValueError("time rules need an aware datetime; got a naive one")
    return now.astimezone(snap.zone)


def applies(selector: Selector, ident: Identity) -> bool:
    """Everyone when the selector is empty; else anyone named by device, person or group."""
    return selector.covers(ident)


def window_contains(rule: CompiledTimeRule, local: datetime) -> bool:
    """Whether local wall-clock time ``local`` falls in the rule's window."""
    return window_start_day(rule, local) is not None


def window_start_day(rule: CompiledTimeRule, local: datetime) -> datetime | None:
    """The local date (as midnight) the open window started on, or None outside it."""
    t, day = (
        local.time().replace(tzinfo=None),
        local.replace(hour=0, minute=0, second=0, microsecond=0),
    )
    weekday = local.weekday()
    if rule.start == rule.end:
        return day if weekday in rule.days else None
    if rule.start < rule.end:
        inside = rule.start <= t < rule.end
        return day if inside and weekday in rule.days else None
    if t >= rule.start and weekday in rule.days:
        return day
    if t < rule.end and (weekday - 1) % 7 in rule.days:
        return day - timedelta(days=1)
    return None


def window_end(rule: CompiledTimeRule, local: datetime) -> datetime | None:
    """When the open window containing ``local`` closes, in the rules' zone."""
    start_day = window_start_day(rule, local)
    if start_day is None:
        return None
    if rule.start == rule.end:
        naive = datetime.combine(start_day.date() + timedelta(days=1), time(0, 0))
    else:
        end_day = start_day if rule.start < rule.end else start_day + timedelta(days=1)
        naive = datetime.combine(end_day.date(), rule.end)
    return naive.replace(tzinfo=local.tzinfo)


def _decision(rule: CompiledTimeRule, local: datetime, minute: int, snap: Snapshot) -> Decision:
    return Decision(
        stage=Stage.TIME_RULE,
        action=rule.action,
        rule=rule.name,
        reason=rule.reason,
        message=rule.message,
        until=_until(rule, local, minute, snap),
    )


def _until(rule: CompiledTimeRule, local: datetime, minute: int, snap: Snapshot) -> str | None:
    """When access comes back (ISO, minutes): the end of the open window, or of the run of
    windows that follow it without a gap (an all-day rule on several days in a row); None
    when the rule never lets go (all day, every day). Worked out once per window and day."""
    day = local.date()
    if rule.start_min > rule.end_min and minute < rule.end_min:
        day -= timedelta(days=1)  # the part after midnight of a window that began yesterday
    key = (rule.start_min, rule.end_min, rule.days, day)
    if key in snap.window_ends:
        return snap.window_ends[key]
    end = window_end(rule, local)
    assert end is not None, "the rule is open"
    for _ in range(8):
        nxt = window_end(rule, end)
        if nxt is None:
            break
        end = nxt
    else:
        end = None  # open again at every end: it never closes on its own
    if len(snap.window_ends) > 4096:
        snap.window_ends.clear()
    until = snap.window_ends[key] = end.isoformat(timespec="minutes") if end else None
    return until


__all__ = ["Action", "applies", "evaluate", "window_contains", "window_end"]
