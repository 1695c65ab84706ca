"""Compiled policy conditions and the test of whether a request meets them.

Every condition present in ``when`` must hold (AND); a list inside one condition matches if
any element does (OR). Conditions that need the request body (models, prompt, prompt size)
never match a device inspected at host level only (``inspect: sni``). A request that names
several models (a batch) meets ``models``/``models_not`` of a restricting policy when any of
them does, and of an ``allow`` policy only when all of them do. When a body condition cannot
be checked because the gate could not read the body, ``unreadable_reason`` says why and
``settings.unreadable`` decides (see ``policy.py``).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from governance.facts import Action, Endpoint, Identity, Inspect, RequestFacts
from governance.keywords import find_keyword
from governance.pii import find_pii
from governance.prompt_regex import PromptRegex, compile_prompt_regex
from governance.textnorm import fold_keyword, folded, lowered, normalised
from governance.topics import find_topic

if TYPE_CHECKING:  # annotations only: a snapshot read back from the CLI cache has no pydantic
    from governance.schema import Policy, Quota

TOPIC_FINDING = "the prompt may be about"

# endpoints whose requests name a model; an unknown model there fails `models_not` safe
_MODEL_ENDPOINTS = frozenset(
    {
        Endpoint.CHAT,
        Endpoint.COMPLETIONS,
        Endpoint.RESPONSES,
        Endpoint.EMBEDDINGS,
        Endpoint.IMAGES,
        Endpoint.AUDIO,
    }
)


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    name: str
    order: int
    priority: int
    action: Action
    message: str | None
    quota: Quota | None
    devices: frozenset[str]
    people: frozenset[str]
    groups: frozenset[str]
    providers: frozenset[str]
    categories: frozenset[str]
    hosts: tuple[str, ...]
    endpoints: frozenset[Endpoint]
    models: re.Pattern[str] | None
    models_not: re.Pattern[str] | None
    pii: tuple[str, ...]
    keywords: tuple[str, ...]  # lower-cased as written, for the reason
    regexes: tuple[PromptRegex, ...]
    max_prompt_chars: int | None
    topics: tuple[str, ...] = ()
    # each keyword folded (textnorm): found by substring search in the prompt's folded view
    folded_keywords: tuple[bytes, ...] = ()
    needs_body: bool = False  # set from the conditions below; see __post_init__
    reads_body: bool = False  # a condition reads the body itself, not only the path

    def __post_init__(self) -> None:
        reads = bool(
            self.models
            or self.models_not
            or self.pii
            or self.keywords
            or self.regexes
            or self.topics
            or self.max_prompt_chars is not None
        )
        # conditions that need the decrypted request: its path (endpoint) or its body
        object.__setattr__(self, "reads_body", reads)
        object.__setattr__(self, "needs_body", reads or bool(self.endpoints))

    def concerns(self, ident: Identity) -> bool:
        """The who-conditions (devices, people, groups) hold for this identity."""
        return (
            (not self.devices or ident.device in self.devices)
            and (not self.people or ident.person in self.people)
            and (not self.groups or bool(self.groups & ident.groups))
        )


def compile_policy(policy: Policy, order: int) -> CompiledPolicy:
    w = policy.when
    prompt = w.prompt
    # a keyword that folds to nothing (only invisible characters) would match every prompt
    keywords = [k for k in (prompt.keywords if prompt else []) if k and fold_keyword(k)]

    return CompiledPolicy(
        name=policy.name,
        order=order,
        priority=policy.priority,
        action=Action(policy.action),
        message=policy.message,
        quota=policy.quota,
        devices=frozenset(w.devices),
        people=frozenset(w.people),
        groups=frozenset(w.groups),
        providers=frozenset(p.lower() for p in w.providers),
        categories=frozenset(w.categories),
        hosts=tuple(h.lower() for h in w.hosts),
        endpoints=frozenset(Endpoint(e) for e in w.endpoints),
        models=_globs(w.models),
        models_not=_globs(w.models_not),
        pii=tuple(prompt.pii) if prompt else (),
        keywords=tuple(k.lower() for k in keywords),
        regexes=tuple(compile_prompt_regex(r) for r in (prompt.regex if prompt else [])),
        max_prompt_chars=w.max_prompt_chars,
        topics=tuple(prompt.topics) if prompt else (),
        folded_keywords=tuple(fold_keyword(k) for k in keywords),
    )


def matches(policy: CompiledPolicy, facts: RequestFacts) -> tuple[bool, str]:
    """Whether every condition holds, and a short account of what matched."""
    if not concerns_request(policy, facts):
        return False, ""
    return body_matches(policy, facts) if policy.needs_body else (True, "")


def concerns_request(policy: CompiledPolicy, facts: RequestFacts) -> bool:
    """The conditions readable without the body hold: who, provider, category, host,
    endpoint; and a device that is not decrypted (``inspect: sni``) is never held to body
    conditions."""
    ident = facts.identity
    return (
        policy.concerns(ident)
        and (not policy.providers or (facts.provider or "") in policy.providers)
        and (not policy.categories or (facts.category or "") in policy.categories)
        and (not policy.hosts or _host_matches(facts.host, policy.hosts))
        and (not policy.endpoints or facts.endpoint in policy.endpoints or not facts.endpoint_known)
        and not (policy.needs_body and ident.inspect is Inspect.SNI)
    )


def unreadable_reason(policy: CompiledPolicy, facts: RequestFacts) -> str | None:
    """Why a body condition of *policy* cannot be checked on this request; None if it can."""
    if facts.unreadable is not None and (
        policy.reads_body or (policy.endpoints and not facts.endpoint_known)
    ):
        return facts.unreadable
    if facts.model_unknown and (policy.models is not None or policy.models_not is not None):
        return "it does not say which model it runs"
    return None


def body_matches(policy: CompiledPolicy, facts: RequestFacts) -> tuple[bool, str]:
    models = facts.models or ((facts.model,) if facts.model else ())
    every = policy.action is Action.ALLOW  # an allow must hold for every model named
    notes = []
    if policy.models is not None:
        hits = [m for m in models if policy.models.match(m)]
        if not hits or (every and len(hits) < len(models)):
            return False, ""
        notes.append(f"model {hits[0]}")
    if policy.models_not is not None:
        outside = [m for m in models if not policy.models_not.match(m)]
        if not models:  # a body read in full that names none runs none (a thread message)
            if facts.body_inspected or facts.endpoint not in _MODEL_ENDPOINTS:
                return False, ""
            notes.append("model could not be read")
        elif not outside or (every and len(outside) < len(models)):
            return False, ""
        else:
            notes.append(f"model {outside[0]} is not on the allowed list")
    if policy.max_prompt_chars is not None:
        if facts.prompt_chars <= policy.max_prompt_chars:
            return False, ""
        notes.append(f"prompt of {facts.prompt_chars} characters")
    if policy.pii or policy.keywords or policy.regexes or policy.topics:
        found = _prompt_finding(policy, facts.prompt or "")
        if not found:
            return False, ""
        notes.append(found)
    return True, "; ".join(notes)


def _prompt_finding(policy: CompiledPolicy, text: str) -> str:
    """What in the prompt met the policy, read as the model reads it: normalised for
    regexes and PII, folded for keywords (textnorm). The words are the rule's own (a keyword,
    a pattern, a kind of personal data, a topic), never the prompt's: the reason goes to the
    log, the alerts table and notifications."""
    if policy.topics:
        topic = find_topic(text, policy.topics)
        if topic is not None:
            return f"{TOPIC_FINDING} {topic}"
    keywords, regexes = _memo(text)
    if policy.keywords:
        wanted = policy.folded_keywords
        if wanted in keywords:
            index = keywords[wanted]
        else:
            index = keywords[wanted] = find_keyword(folded(text), wanted)
        if index is not None:
            return f"prompt contains {policy.keywords[index][:40]!r}"
    if policy.regexes:
        clean = normalised(text)
        for regex in policy.regexes:
            source = regex.fallback.pattern
            if source in regexes:
                found = regexes[source]
            else:
                found = regexes[source] = regex.search(clean, lowered(clean))
            if found is not None:  # the rule's own pattern: the reason never quotes the prompt
                return f"prompt matches the pattern {source[:40]!r}"
    kinds = find_pii(text, policy.pii, first=True)
    return f"prompt contains personal data ({', '.join(kinds)})" if kinds else ""


@lru_cache(maxsize=4)
def _memo(text: str) -> tuple[dict[tuple[bytes, ...], int | None], dict[str, str | None]]:
    """What one prompt has been found to contain, by keyword list (the index of one found)
    and by regex source, filled as policies ask: however many policies share a keyword list
    or a regex, it is searched once."""
    return {}, {}


def _globs(patterns: list[str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(fnmatch.translate(p.lower()) for p in patterns), re.IGNORECASE)


def _host_matches(host: str, patterns: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    for pattern in patterns:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):
                return True
        elif host == pattern:
            return True
    return False
