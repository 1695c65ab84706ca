"""Rules compiled once into an immutable snapshot the hot path only looks things up in.

``compile_rules`` runs at load and on every reload; a reload swaps the whole snapshot, so a
request sees either the old rules or the new ones, never a mix.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field
from datetime import date, time
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from governance.errors import RulesError
from governance.facts import DAY_NAMES, Action, Identity, Inspect, RequestFacts
from governance.policy_match import CompiledPolicy, compile_policy, concerns_request
from governance.prices import Price, compile_prices
from governance.references import check_references

if TYPE_CHECKING:  # annotations only: a snapshot read back from the CLI cache has no pydantic
    from governance.schema import Rules

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IdentityKey = tuple[str, str | None, frozenset[str]]


@dataclass(frozen=True, slots=True)
class Selector:
    """Who a rule applies to; empty means everyone."""

    groups: frozenset[str] = frozenset()
    people: frozenset[str] = frozenset()
    devices: frozenset[str] = frozenset()

    @property
    def everyone(self) -> bool:
        return not (self.groups or self.people or self.devices)

    def covers(self, ident: Identity) -> bool:
        """Everyone when empty; else anyone named by device, person or group."""
        return (
            self.everyone
            or ident.device in self.devices
            or (ident.person is not None and ident.person in self.people)
            or bool(self.groups & ident.groups)
        )


@dataclass(frozen=True, slots=True)
class CompiledTimeRule:
    name: str
    start: time
    end: time
    days: frozenset[int]  # 0 = Monday
    action: Action
    applies_to: Selector
    priority: int
    message: str | None
    start_min: int = 0  # minutes after midnight, for the hot path
    end_min: int = 0
    start_text: str = ""  # "21:00", for reasons
    end_text: str = ""
    reason: str = ""  # the sentence a decision by this rule carries

    def __post_init__(self) -> None:
        object.__setattr__(self, "start_min", self.start.hour * 60 + self.start.minute)
        object.__setattr__(self, "end_min", self.end.hour * 60 + self.end.minute)
        object.__setattr__(self, "start_text", self.start.strftime("%H:%M"))
        object.__setattr__(self, "end_text", self.end.strftime("%H:%M"))
        if self.start == self.end:
            reason = f"time rule '{self.name}' covers the whole day"
        else:
            reason = (
                f"time rule '{self.name}' ({self.start_text}-{self.end_text}), "
                f"until {self.end_text}"
            )
        object.__setattr__(self, "reason", reason)


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    name: str
    person: str | None
    groups: frozenset[str]
    inspect: Inspect


@dataclass(frozen=True, slots=True)
class StaticAllow:
    kind: Literal["device", "network", "mac", "user"]
    value: str
    reason: str | None
    network: Network | None = None


@dataclass(frozen=True, slots=True)
class OverrideSettings:
    master_pin_hash: str | None
    unlock_minutes: int
    max_attempts: int
    lockout_minutes: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    rules: Rules  # the validated document, for `rules show` and the API
    version: str  # short hash of the file's text
    observe: bool
    zone: ZoneInfo
    fail_open: bool
    default_action: Action
    default_inspect: Inspect
    unknown_groups: frozenset[str]
    devices: MappingProxyType[str, DeviceInfo]
    device_by_ip: MappingProxyType[str, str]
    device_by_mac: MappingProxyType[str, str]
    device_networks: tuple[tuple[Network, str], ...]
    person_groups: MappingProxyType[str, frozenset[str]]
    allowlist: tuple[StaticAllow, ...]
    time_rules: tuple[CompiledTimeRule, ...]
    policies: tuple[CompiledPolicy, ...]
    overrides: OverrideSettings
    prices: tuple[Price, ...] = ()
    unreadable_block: bool = True  # settings.unreadable: block
    # identity -> (time rules, policies) that can apply to it; filled on first use
    _by_identity: dict[
        IdentityKey, tuple[tuple[CompiledTimeRule, ...], tuple[CompiledPolicy, ...]]
    ] = field(default_factory=dict, compare=False, repr=False)
    _by_request: dict[tuple[object, ...], tuple[CompiledPolicy, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )
    # (start, end, days, the day an open window started) -> when access comes back, ISO, in
    # self.zone (None: never, for an all-day rule on every day)
    window_ends: dict[tuple[int, int, frozenset[int], date], str | None] = field(
        default_factory=dict, compare=False, repr=False
    )
    # (users?, device, mac, ip, user) -> the first rules-file allowlist entry naming it
    allow_cache: dict[tuple[object, ...], StaticAllow | None] = field(
        default_factory=dict, compare=False, repr=False
    )

    def rules_for(
        self, ident: Identity
    ) -> tuple[tuple[CompiledTimeRule, ...], tuple[CompiledPolicy, ...]]:
        """The time rules and policies whose who-conditions this identity meets, in order.

        Computed once per identity and snapshot, so a decision does not walk every rule of a
        large household; a reload builds a new snapshot with an empty index.
        """
        key = (ident.device, ident.person, ident.groups)
        found = self._by_identity.get(key)
        if found is None:
            if len(self._by_identity) > 4096:
                self._by_identity.clear()
            found = (
                tuple(r for r in self.time_rules if r.applies_to.covers(ident)),
                tuple(p for p in self.policies if p.concerns(ident)),
            )
            self._by_identity[key] = found
        return found

    def policies_for(self, facts: RequestFacts) -> tuple[CompiledPolicy, ...]:
        """The policies whose conditions readable without the body hold for this request
        (who, provider, category, host, endpoint), in order; what is left to check is the body.

        Cached per identity and request line: a household sends a handful of those.
        """
        ident = facts.identity
        key = (
            ident.device,
            ident.person,
            ident.groups,
            ident.inspect,
            facts.provider,
            facts.category,
            facts.host,
            facts.endpoint,
            facts.endpoint_known,
        )
        found = self._by_request.get(key)
        if found is None:
            if len(self._by_request) > 16384:
                self._by_request.clear()
            found = tuple(p for p in self.rules_for(ident)[1] if concerns_request(p, facts))
            self._by_request[key] = found
        return found


def compile_rules(rules: Rules, text: str = "") -> Snapshot:
    """The snapshot for validated rules; RulesError if names refer to nothing."""
    problems = check_references(rules)
    if problems:
        raise RulesError(problems)
    settings = rules.settings
    devices, by_ip, by_mac, networks = _compile_devices(rules)
    ov = rules.overrides
    return Snapshot(
        rules=rules,
        version=hashlib.sha256(text.encode()).hexdigest()[:12],
        observe=settings.mode == "observe",
        zone=ZoneInfo(settings.timezone),
        fail_open=settings.fail == "open",
        default_action=Action.BLOCK if settings.default == "block" else Action.ALLOW,
        default_inspect=Inspect(settings.inspect),
        unreadable_block=settings.unreadable == "block",
        unknown_groups=frozenset(settings.unknown_devices.groups),
        devices=MappingProxyType(devices),
        device_by_ip=MappingProxyType(by_ip),
        device_by_mac=MappingProxyType(by_mac),
        device_networks=tuple(networks),
        person_groups=MappingProxyType(
            {name: frozenset(p.groups) for name, p in rules.people.items()}
        ),
        allowlist=tuple(_compile_allow(rules)),
        time_rules=_compile_time_rules(rules),
        policies=tuple(
            sorted(
                (compile_policy(p, i) for i, p in enumerate(rules.policies)),
                key=lambda p: (p.priority, p.order),
            )
        ),
        prices=compile_prices((m, p.input, p.output) for p in rules.prices for m in p.models),
        overrides=OverrideSettings(
            ov.master_pin, ov.unlock_minutes, ov.max_attempts, ov.lockout_minutes
        ),
    )


def _compile_devices(
    rules: Rules,
) -> tuple[dict[str, DeviceInfo], dict[str, str], dict[str, str], list[tuple[Network, str]]]:
    devices: dict[str, DeviceInfo] = {}
    by_ip: dict[str, str] = {}
    by_mac: dict[str, str] = {}
    networks: list[tuple[Network, str]] = []
    default_inspect = Inspect(rules.settings.inspect)
    for name, dev in rules.devices.items():
        groups = set(dev.groups)
        if dev.person is not None:
            groups |= set(rules.people[dev.person].groups)
        inspect = Inspect(dev.inspect) if dev.inspect else default_inspect
        devices[name] = DeviceInfo(name, dev.person, frozenset(groups), inspect)
        for mac in dev.macs:
            by_mac[mac] = name
        for ip in dev.ips:
            if "/" in ip:
                networks.append((ipaddress.ip_network(ip), name))
            else:
                by_ip[ip] = name
    # most specific network first, so a /32 inside a /24 wins
    networks.sort(key=lambda item: -item[0].prefixlen)
    return devices, by_ip, by_mac, networks


def _compile_allow(rules: Rules) -> list[StaticAllow]:
    entries = []
    for e in rules.allowlist:
        if e.device:
            entries.append(StaticAllow("device", e.device, e.reason))
        elif e.mac:
            entries.append(StaticAllow("mac", e.mac, e.reason))
        elif e.user:
            entries.append(StaticAllow("user", e.user, e.reason))
        else:
            text = e.cidr or e.ip or ""
            entries.append(StaticAllow("network", text, e.reason, ipaddress.ip_network(text)))
    return entries


def _compile_time_rules(rules: Rules) -> tuple[CompiledTimeRule, ...]:
    compiled = [
        CompiledTimeRule(
            name=r.name,
            start=r.start_time(),
            end=r.end_time(),
            days=frozenset(DAY_NAMES.index(d) for d in r.days),
            action=Action(r.action),
            applies_to=Selector(
                *(
                    frozenset(getattr(r.applies_to, k)) if r.applies_to else frozenset()
                    for k in ("groups", "people", "devices")
                )
            ),
            priority=r.priority,
            message=r.message,
        )
        for r in rules.time_rules
    ]
    # lower priority number wins; ties keep file order (sorted is stable)
    return tuple(sorted(compiled, key=lambda r: r.priority))
