"""Runtime state the pipeline reads: what parents switched on while the gate runs.

An immutable view assembled by the proxy from its in-memory caches (which ``store.py`` fills
from SQLite). Stages compare expiry times with the ``now`` they are given, so an entry that
has expired stops matching at once, whatever the cache age.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Literal, Never

from governance.snapshot import CompiledTimeRule, Network


@dataclass(frozen=True, slots=True)
class ActiveEmergency:
    id: int
    activated_at: datetime
    until: datetime
    reason: str
    activated_by: str


@dataclass(frozen=True, slots=True)
class RuntimeAllow:
    kind: Literal["device", "network", "mac", "user"]
    value: str
    reason: str | None = None
    expires_at: datetime | None = None
    network: Network | None = None

    @staticmethod
    def make(
        kind: str, value: str, reason: str | None = None, expires_at: datetime | None = None
    ) -> RuntimeAllow:
        if kind in ("ip", "cidr", "network"):
            net = ipaddress.ip_network(value, strict=False)
            return RuntimeAllow("network", str(net), reason, expires_at, net)
        if kind not in ("device", "mac", "user"):
            raise ValueError(f"unknown allowlist entry type {kind!r}")
        return RuntimeAllow(kind, value, reason, expires_at)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Unlock:
    device: str
    until: datetime
    by: str
    provider: str | None = None  # None: every provider
    source: Literal["unlock", "pin", "master_pin"] = "unlock"


@dataclass(frozen=True, slots=True)
class Pause:
    """A parent stopped a person, device or group until ``until`` (``hearthgate pause``)."""

    kind: Literal["person", "device", "group"]
    target: str
    until: datetime
    by: str

    def covers(self, device: str, person: str | None, groups: frozenset[str]) -> bool:
        if self.kind == "device":
            return device == self.target
        if self.kind == "person":
            return person == self.target
        return self.target in groups


@dataclass(frozen=True, slots=True)
class Bonus:
    """Extra allowance for one person on one local day (``hearthgate bonus``), summed."""

    day: date
    minutes: int = 0
    requests: int = 0
    tokens: int = 0


@dataclass(frozen=True, slots=True)
class UsageCount:
    """One person's or device's use on one local day (and the ISO week it belongs to)."""

    day: date
    requests: int = 0
    tokens: int = 0
    cost: float = 0.0
    week_requests: int = 0
    week_tokens: int = 0
    week_cost: float = 0.0
    minutes: int = 0  # minutes with at least one request (or a stream running)
    week_minutes: int = 0
    last_minute: int = 0  # the newest minute counted (minutes since the epoch)


_EMPTY: Mapping[str, Never] = MappingProxyType({})  # shared, read-only; fits any value type


@dataclass(frozen=True, slots=True)
class RuntimeState:
    emergency: ActiveEmergency | None = None
    allowlist: tuple[RuntimeAllow, ...] = ()
    unlocks: Mapping[str, tuple[Unlock, ...]] = field(default_factory=lambda: _EMPTY)
    usage: Mapping[str, UsageCount] = field(default_factory=lambda: _EMPTY)
    time_rules: tuple[CompiledTimeRule, ...] = ()  # added through the API / CLI
    pauses: tuple[Pause, ...] = ()
    bonuses: Mapping[str, Bonus] = field(default_factory=lambda: _EMPTY)  # by person


EMPTY_STATE = RuntimeState()
