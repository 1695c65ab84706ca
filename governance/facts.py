"""What a decision is made from and what it says.

``RequestFacts`` is everything the pipeline may look at for one request, gathered by the
proxy edge; ``Decision`` is what a stage answers. Both are frozen: a stage cannot change the
facts another stage sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAY_NAMES: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Stage(StrEnum):
    EMERGENCY = "emergency"
    ALLOWLIST = "allowlist"
    OVERRIDE = "override"
    TIME_RULE = "time_rule"
    POLICY = "policy"
    QUOTA = "quota"
    DEFAULT = "default"
    ERROR = "error"


class Action(StrEnum):
    ALLOW = "allow"
    ALERT = "alert"  # allow, and record an alert
    BLOCK = "block"
    LOG = "log"  # allow, and record that the rule matched

    @property
    def allows(self) -> bool:
        return self is not Action.BLOCK


class Endpoint(StrEnum):
    CHAT = "chat"
    COMPLETIONS = "completions"
    RESPONSES = "responses"
    EMBEDDINGS = "embeddings"
    IMAGES = "images"
    AUDIO = "audio"
    REALTIME = "realtime"
    FILES = "files"
    OTHER = "other"
    WEB_APP = "web-app"


# How request bodies of a provider are read (the catalog's and the rules' ``api``).
ApiName = Literal["openai", "anthropic", "gemini", "cohere", "ollama", "web"]


class Category(StrEnum):
    """The kinds of AI service parents think in; every catalog entry has one."""

    API = "api"  # developer APIs
    ASSISTANT = "assistant"  # general chat assistants
    COMPANION = "companion"  # AI friends and role-play
    HOMEWORK = "homework"  # homework and tutoring helpers
    SEARCH = "search"  # AI answer engines
    IMAGE = "image"  # image generators
    VIDEO = "video"  # video generators
    MUSIC = "music"  # music and voice generators
    CODING = "coding"  # coding assistants


class Inspect(StrEnum):
    TLS = "tls"  # the device trusts the CA: bodies can be read
    SNI = "sni"  # host-level decisions only


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is asking, resolved once per connection."""

    client_ip: str
    device: str  # a device name from the rules, or "ip:<address>"
    person: str | None = None
    groups: frozenset[str] = frozenset()
    mac: str | None = None
    user: str | None = None  # proxy-auth user name
    known: bool = False  # the device is named in the rules
    inspect: Inspect = Inspect.TLS


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """One request as the pipeline sees it."""

    request_id: str
    identity: Identity
    host: str
    provider: str | None = None
    method: str = "GET"
    path: str = "/"
    endpoint: Endpoint = Endpoint.OTHER
    model: str | None = None
    prompt: str | None = None  # text of every message, capped; None when not inspected
    prompt_chars: int = 0  # full length before the cap
    body_inspected: bool = False  # the body was parsed (tls device, LLM shape recognised)
    models: tuple[str, ...] = ()  # every model the request names (a batch names several)
    unreadable: str | None = None  # why the body could not be fully read, for a parent
    model_unknown: bool = False  # it runs a model it does not name (a run on an assistant)
    endpoint_known: bool = True  # False: the endpoint is named in a body that was unreadable
    pin: str | None = None  # X-Hearthgate-Pin presented with the request; never logged
    pin_request_id: str | None = None  # X-Hearthgate-Request-Id sent with the PIN
    category: str | None = None  # the provider's Category value; None for no provider

    @property
    def device(self) -> str:
        return self.identity.device


@dataclass(frozen=True, slots=True)
class Note:
    """An ``alert`` or ``log`` verdict recorded on the way to the final decision."""

    stage: Stage
    action: Action
    rule: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Decision:
    """A stage's verdict, with a sentence a parent understands."""

    stage: Stage
    action: Action
    reason: str
    rule: str | None = None
    message: str | None = None  # shown to the child on a block
    until: str | None = None  # ISO time the verdict lasts until, when known
    status: int = 403  # HTTP status of a block answer (429 for quotas)
    retry_after: int | None = None  # seconds, for 429
    enforced: bool = True  # False in observe mode: "would block"
    notes: tuple[Note, ...] = field(default=())  # alert/log verdicts met on the way

    @property
    def allowed(self) -> bool:
        return self.action.allows or not self.enforced

    @property
    def terminal(self) -> bool:
        """allow and block end the pipeline; alert and log let later stages decide."""
        return self.action in (Action.ALLOW, Action.BLOCK)

    def as_note(self) -> Note:
        return Note(self.stage, self.action, self.rule, self.reason)

    def with_notes(self, notes: tuple[Note, ...]) -> Decision:
        """This decision with ``notes`` in place of its own (``dataclasses.replace`` without
        the field-by-field introspection: this runs on most requests)."""
        return Decision(
            self.stage,
            self.action,
            self.reason,
            self.rule,
            self.message,
            self.until,
            self.status,
            self.retry_after,
            self.enforced,
            notes,
        )
