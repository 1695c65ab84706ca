"""The rules file as parents write it: a pydantic model of SPEC section 3.

Structure and value checks live here; names that refer to other entries (a device's person,
a rule's groups ...) are checked in ``references.py``. ``snapshot.compile_rules`` turns a
validated ``Rules`` into the immutable snapshot the pipeline reads.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import time
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from governance.addresses import normalize_mac
from governance.facts import DAY_NAMES, ApiName, Day

__all__ = ["DAY_NAMES", "Day"]  # and the models below; the days live in facts

EndpointName = Literal[
    "chat",
    "completions",
    "responses",
    "embeddings",
    "images",
    "audio",
    "realtime",
    "files",
    "other",
    "web-app",
]
CategoryName = Literal[
    "api", "assistant", "companion", "homework", "search", "image", "video", "music", "coding"
]  # fmt: skip  (governance.facts.Category; a test keeps the two the same)
PiiKind = Literal["email", "phone", "card", "address", "national_id"]
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$")
_LABEL_RE = re.compile(_LABEL)
_STAR_LABEL = re.compile(r"[A-Za-z0-9*_-]+")
_HHMM = re.compile(r"^([01]?\d|2[0-3]):[0-5]\d$")


class Strict(BaseModel):
    # defer_build: a model's validator is built when it first validates, not at import, so a
    # CLI command reading the compiled rules from proxy.rules.cache never pays for it (the
    # defaults below are made with model_construct() for the same reason: all their fields
    # have defaults, so there is nothing to validate)
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class UnknownDevices(Strict):
    groups: list[Name] = []


class Settings(Strict):
    mode: Literal["enforce", "observe"] = "enforce"
    timezone: str = "UTC"
    fail: Literal["closed", "open"] = "closed"
    default: Literal["allow", "block"] = "allow"
    inspect: Literal["tls", "sni"] = "tls"
    unreadable: Literal["block", "allow"] = "block"
    log_prompts: bool = False
    retention_days: int = Field(default=90, ge=1, le=3650)
    unknown_devices: UnknownDevices = UnknownDevices.model_construct()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as "
                "Europe/Berlin or America/New_York)"
            ) from None
        return value


class Group(Strict):
    description: str | None = None


class Person(Strict):
    groups: list[Name] = []


class Device(Strict):
    person: Name | None = None
    groups: list[Name] = []
    ips: list[str] = []
    macs: list[str] = []
    inspect: Literal["tls", "sni"] | None = None

    @field_validator("ips")
    @classmethod
    def _valid_ips(cls, values: list[str]) -> list[str]:
        return [_normalize_network(v) for v in values]

    @field_validator("macs")
    @classmethod
    def _valid_macs(cls, values: list[str]) -> list[str]:
        return [normalize_mac(v) for v in values]


class AllowEntry(Strict):
    device: Name | None = None
    cidr: str | None = None
    ip: str | None = None
    mac: str | None = None
    user: str | None = None
    reason: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> AllowEntry:
        chosen = [k for k in ("device", "cidr", "ip", "mac", "user") if getattr(self, k)]
        if len(chosen) != 1:
            raise ValueError(
                "an allowlist entry names exactly one of device, cidr, ip, mac, "
                f"user (found {', '.join(chosen) or 'none'})"
            )
        return self

    @field_validator("cidr", "ip")
    @classmethod
    def _valid_network(cls, value: str | None) -> str | None:
        return None if value is None else _normalize_network(value)

    @field_validator("mac")
    @classmethod
    def _valid_mac(cls, value: str | None) -> str | None:
        return None if value is None else normalize_mac(value)


class AppliesTo(Strict):
    groups: list[Name] = []
    people: list[Name] = []
    devices: list[Name] = []


class TimeRule(Strict):
    name: Name
    start: str
    end: str
    days: list[Day] = list(DAY_NAMES)
    action: Literal["block", "alert", "log"] = "block"
    applies_to: AppliesTo | None = None
    priority: int = 100
    message: str | None = None

    @field_validator("start", "end", mode="before")
    @classmethod
    def _hhmm(cls, value: object) -> str:
        return parse_hhmm(value)

    def start_time(self) -> time:
        return time.fromisoformat(self.start)

    def end_time(self) -> time:
        return time.fromisoformat(self.end)


class PromptCheck(Strict):
    pii: list[PiiKind] = []
    topics: list[Literal["self_harm"]] = Field(
        default=[], description="built-in phrase lists (English, German, French, Spanish)"
    )
    keywords: list[str] = []
    regex: list[str] = []

    @field_validator("regex")
    @classmethod
    def _compiles(cls, values: list[str]) -> list[str]:
        for pattern in values:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"regex {pattern!r} does not compile: {exc}") from None
        return values


class When(Strict):
    devices: list[Name] = []
    people: list[Name] = []
    groups: list[Name] = []
    providers: list[str] = []
    categories: list[CategoryName] = []
    hosts: list[str] = []
    endpoints: list[EndpointName] = []
    models: list[str] = []
    models_not: list[str] = []
    prompt: PromptCheck | None = None
    max_prompt_chars: int | None = Field(default=None, ge=0)


class Quota(Strict):
    per: Literal["person", "device"] = "person"
    requests_per_day: int | None = Field(default=None, ge=0)
    tokens_per_day: int | None = Field(default=None, ge=0)
    requests_per_week: int | None = Field(default=None, ge=0)
    tokens_per_week: int | None = Field(default=None, ge=0)
    cost_per_day: float | None = Field(default=None, ge=0)
    cost_per_week: float | None = Field(default=None, ge=0)
    minutes_per_day: int | None = Field(
        default=None, ge=0, le=1440, description="minutes of use: a minute with a request"
    )
    minutes_per_week: int | None = Field(default=None, ge=0, le=10080)


class Policy(Strict):
    name: Name
    priority: int = 100
    when: When = When.model_construct()
    action: Literal["allow", "alert", "block", "log"] = "block"
    quota: Quota | None = None
    message: str | None = None


class Overrides(Strict):
    master_pin: str | None = None
    unlock_minutes: int = Field(default=15, ge=1, le=1440)
    max_attempts: int = Field(default=5, ge=1, le=100)
    lockout_minutes: int = Field(default=15, ge=1, le=1440)

    @field_validator("master_pin")
    @classmethod
    def _hashed(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("scrypt$"):
            raise ValueError(
                "master_pin must be a hash made by `hearthgate pin hash` "
                "(it starts with scrypt$); never write the PIN itself here"
            )
        return value


class Consent(Strict):
    approvers: int = Field(default=1, ge=1, le=10)
    actions: list[Literal["emergency", "allowlist", "unlock", "time_rule", "pause", "bonus"]] = []
    expire_hours: int = Field(default=24, ge=1, le=720)


class ProviderDef(Strict):
    """A service added to the built-in catalog, or replacing the built-in of its name.

    Left out, ``api`` and ``category`` keep the built-in entry's values when the name is a
    built-in one; for a new name they are ``openai`` and ``api`` (``assistant`` for ``web``).
    """

    name: Name
    hosts: list[str] = Field(min_length=1)
    api: ApiName | None = None
    category: CategoryName | None = None
    display: str | None = Field(default=None, min_length=1, max_length=80)
    note: str | None = Field(default=None, max_length=500)

    @field_validator("hosts")
    @classmethod
    def _host_names(cls, values: list[str]) -> list[str]:
        for host in values:
            if not _host_or_pattern(host):
                raise ValueError(
                    f"{host!r} is not a host name or pattern; write just the name, such as "
                    "ollama.lan, *.example.com (any name below example.com) or "
                    "llm-*.example.com (a '*' inside a label, two literal labels after it); "
                    "no scheme, port or path"
                )
        return [h.lower() for h in values]


def _host_or_pattern(host: str) -> bool:
    """A host name, ``*.suffix``, or labels with ``*`` before at least two literal labels."""
    if _HOST.match(host):
        return True
    labels = host.split(".")
    starred = [i for i, label in enumerate(labels) if "*" in label]
    literal = labels[starred[-1] + 1 :] if starred else labels
    return (
        len(literal) >= 2
        and all(_LABEL_RE.fullmatch(label) for label in literal)
        and all(_STAR_LABEL.fullmatch(labels[i]) and "**" not in labels[i] for i in starred)
        and all(_LABEL_RE.fullmatch(labels[i]) for i in range(starred[-1]) if i not in starred)
    )


class Smtp(Strict):
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    user: str | None = None
    password_env: str | None = Field(
        default=None, description="the environment variable holding the SMTP password"
    )
    password_file: str | None = Field(default=None, description="a file holding the password")
    sender: str | None = Field(default=None, description="From: (default: user)")

    @model_validator(mode="after")
    def _one_password(self) -> Smtp:
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")
        return self


class DnsSettings(Strict):
    """Used only by ``hearthgate run --dns``."""

    block_doh: bool = Field(
        default=False,
        description="answer NXDOMAIN for well-known public DNS-over-HTTPS resolvers",
    )


class Notification(Strict):
    url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    format: Literal["json", "ntfy", "gotify", "email"] = "json"
    token: str | None = None  # ntfy access token (Bearer) or Gotify application token
    on: list[Literal["alert", "block", "report"]] = ["alert"]
    throttle_minutes: int = Field(default=10, ge=0, le=1440)
    to: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = []
    smtp: Smtp | None = None

    @model_validator(mode="after")
    def _where(self) -> Notification:
        if self.format == "email":
            if not self.to or self.smtp is None:
                raise ValueError("format: email needs `to` (addresses) and `smtp` (the server)")
        elif self.url is None:
            raise ValueError(f"format: {self.format} needs a `url`")
        return self


class WeeklyReport(Strict):
    day: Day = "sun"
    at: str = "18:00"

    @field_validator("at", mode="before")
    @classmethod
    def _hhmm(cls, value: object) -> str:
        return parse_hhmm(value)


class Reports(Strict):
    weekly: WeeklyReport = WeeklyReport()


class PriceDef(Strict):
    models: list[str] = Field(min_length=1)
    input: float = Field(ge=0, description="US dollars per million input tokens")
    output: float = Field(ge=0, description="US dollars per million output tokens")


class Rules(Strict):
    version: Literal[1]
    settings: Settings = Settings.model_construct()
    groups: dict[Name, Group | None] = {}
    people: dict[Name, Person] = {}
    devices: dict[Name, Device] = {}
    allowlist: list[AllowEntry] = []
    time_rules: list[TimeRule] = []
    policies: list[Policy] = []
    overrides: Overrides = Overrides.model_construct()
    consent: Consent = Consent.model_construct()
    providers: list[ProviderDef] = []
    dns: DnsSettings = DnsSettings()
    prices: list[PriceDef] = []
    notifications: list[Notification] = []
    reports: Reports = Reports()


def parse_hhmm(value: object) -> str:
    """ "21:00" from "21:00", "7:00" or the number YAML 1.1 makes of an unquoted 21:00."""
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 21:00 as the sexagesimal number 1260
        value = f"{value // 60:02d}:{value % 60:02d}"
    if not isinstance(value, str) or not _HHMM.match(value):
        raise ValueError(f'expected a time like "21:00" (24-hour HH:MM), got {value!r}')
    return value.zfill(5)


def _normalize_network(value: str) -> str:
    """An IP or CIDR in canonical form (IPv6 compressed, host bits rejected)."""
    try:
        if "/" in value:
            return str(ipaddress.ip_network(value.strip(), strict=True))
        return str(ipaddress.ip_address(value.strip()))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IP address or CIDR network ({exc})") from None
