"""The LLM catalog: which hosts are LLM services, and what one request to them asks for.

The proxy edge asks ``Catalog.match(host)`` for every flow, then ``parse_request`` (from
``requests.py``, routes from ``routes.py``) for the endpoint kind, models, prompt text and
streaming wish that become ``RequestFacts``; after the answer, ``parse_usage`` /
``StreamUsage`` (from ``shapes.py``) give the token counts for quotas. Everything here is
pure and never raises on traffic: bad bodies give best-effort facts. Consumer web apps are
decided at host level; their bodies are read only
opportunistically, since their endpoints are undocumented and change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from proxy.catalog.requests import BODY_CAP, PROMPT_CAP, ParsedRequest, parse_request
from proxy.catalog.shapes import StreamUsage, Usage, parse_usage

if TYPE_CHECKING:
    from governance.snapshot import Snapshot

__all__ = [
    "BODY_CAP",
    "BUILTIN_PROVIDERS",
    "PROMPT_CAP",
    "Catalog",
    "ParsedRequest",
    "Provider",
    "StreamUsage",
    "Usage",
    "normalize_host",
    "parse_request",
    "parse_usage",
]


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    hosts: tuple[str, ...]  # exact names or "*.suffix" (one or more labels), lower-case
    api: str  # "openai" | "anthropic" | "gemini" | "cohere" | "web"


# A wildcard stands for whole labels, so "{region}-aiplatform.googleapis.com" cannot be one;
# these are the regions households' tools commonly use. Add others in the rules file.
_VERTEX_REGIONS = (
    "us-central1", "us-east1", "us-east4", "us-east5", "us-south1", "us-west1", "us-west4",
    "northamerica-northeast1", "southamerica-east1", "europe-west1", "europe-west2",
    "europe-west3", "europe-west4", "europe-west9", "europe-north1", "asia-northeast1",
    "asia-northeast3", "asia-south1", "asia-southeast1", "australia-southeast1",
)  # fmt: skip

BUILTIN_PROVIDERS: tuple[Provider, ...] = (
    Provider("openai", ("api.openai.com",), "openai"),
    Provider("azure-openai", ("*.openai.azure.com",), "openai"),
    Provider("anthropic", ("api.anthropic.com",), "anthropic"),
    Provider("gemini", ("generativelanguage.googleapis.com",), "gemini"),
    Provider(
        "vertex-ai",
        ("aiplatform.googleapis.com",)
        + tuple(f"{region}-aiplatform.googleapis.com" for region in _VERTEX_REGIONS),
        "gemini",
    ),
    Provider("mistral", ("api.mistral.ai",), "openai"),
    Provider("deepseek", ("api.deepseek.com",), "openai"),
    Provider("groq", ("api.groq.com",), "openai"),
    Provider("xai", ("api.x.ai",), "openai"),
    Provider("perplexity", ("api.perplexity.ai",), "openai"),
    Provider("openrouter", ("openrouter.ai",), "openai"),
    Provider("together", ("api.together.xyz",), "openai"),
    Provider("fireworks", ("api.fireworks.ai",), "openai"),
    Provider("cohere", ("api.cohere.com", "api.cohere.ai"), "cohere"),
    Provider("chatgpt", ("chatgpt.com", "chat.openai.com"), "web"),
    Provider("claude", ("claude.ai",), "web"),
    Provider("gemini-app", ("gemini.google.com", "aistudio.google.com"), "web"),
    Provider("copilot", ("copilot.microsoft.com",), "web"),
    Provider("perplexity-app", ("www.perplexity.ai", "perplexity.ai"), "web"),
    Provider("grok", ("grok.com",), "web"),
    Provider("mistral-app", ("chat.mistral.ai",), "web"),
    Provider("deepseek-app", ("chat.deepseek.com",), "web"),
    Provider("meta-ai", ("meta.ai", "www.meta.ai"), "web"),
    Provider("poe", ("poe.com",), "web"),
    Provider("character-ai", ("character.ai",), "web"),
)

_HOST_PATTERN = re.compile(r"(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*")


def normalize_host(host: str | None) -> str:
    """A host as the catalog keys it: lower-case, no port, brackets or trailing dot."""
    if not isinstance(host, str):
        return ""
    name = host.strip().lower()
    if name.startswith("["):  # [IPv6]:port
        return name[1 : name.find("]")] if "]" in name else ""
    if name.count(":") == 1:
        name = name.partition(":")[0]
    return name.rstrip(".")


def _checked_hosts(provider: Provider) -> Provider:
    """*provider* with normalised hosts; ValueError naming a host that is no host pattern."""
    hosts = tuple(host.strip().lower().rstrip(".") for host in provider.hosts)
    for host in hosts:
        if not _HOST_PATTERN.fullmatch(host):
            raise ValueError(
                f"provider {provider.name!r}: host {host!r} is not a host name or "
                "'*.suffix' wildcard (no port, scheme, path or inner '*')"
            )
    return replace(provider, hosts=hosts)


def _allow_pattern(host: str) -> str:
    # mitmproxy re.search()es these against "host:port" strings (SNI, Host header, address).
    if host.startswith("*."):
        return r"^(?:[^.:/\s]+\.)+" + re.escape(host[2:]) + r"\.?(?::\d+)?\Z"
    return "^" + re.escape(host) + r"\.?(?::\d+)?\Z"


class Catalog:
    """Built-in providers plus the rules file's; an extra replaces a built-in of its name."""

    __slots__ = ("_providers", "_exact", "_wildcard")

    def __init__(self, extra: Iterable[Provider] = ()) -> None:
        extras = {p.name: p for p in extra}  # the last one of a name wins
        kept = [p for p in BUILTIN_PROVIDERS if p.name not in extras]
        self._providers = tuple(_checked_hosts(p) for p in kept + list(extras.values()))
        self._exact: dict[str, Provider] = {}
        self._wildcard: dict[str, Provider] = {}  # "*.suffix" keyed by suffix
        for provider in self._providers:  # extras come last, so they win a shared host
            for host in provider.hosts:
                if host.startswith("*."):
                    self._wildcard[host[2:]] = provider
                else:
                    self._exact[host] = provider

    @property
    def providers(self) -> tuple[Provider, ...]:
        return self._providers

    def match(self, host: str | None) -> Provider | None:
        """The provider serving *host*: an exact name first, then the longest wildcard."""
        name = normalize_host(host)
        found = self._exact.get(name)
        dot = name.find(".")
        while found is None and dot != -1:
            found = self._wildcard.get(name[dot + 1 :])
            dot = name.find(".", dot + 1)
        return found

    def allow_hosts_patterns(self) -> list[str]:
        """Regexes for mitmproxy's ``allow_hosts``: exactly the catalog hosts, any port."""
        return sorted({_allow_pattern(h) for p in self._providers for h in p.hosts})


def catalog_for(snap: Snapshot) -> Catalog:
    """The built-in catalog plus the rules file's ``providers:``."""
    extra = [
        Provider(p.name, tuple(h.lower() for h in p.hosts), p.api) for p in snap.rules.providers
    ]
    return Catalog(extra)
