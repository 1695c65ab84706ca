"""The LLM catalog: which hosts are LLM services, and what one request to them asks for.

The proxy edge asks ``Catalog.match(host)`` for every flow (``services.py``), then
``parse_request`` (``requests.py``, on the route ``routes.py`` reads from the path) for the
endpoint kind, models, prompt text and streaming wish that become ``RequestFacts``; after the
answer, ``parse_usage`` / ``StreamUsage`` (from ``shapes.py``) give the token counts for
quotas. Everything here is pure and never raises on traffic: bad bodies give best-effort
facts. Consumer web apps are decided at host level; their bodies are read only
opportunistically, since their endpoints are undocumented and change.
"""

from __future__ import annotations

from proxy.catalog.hosts import normalize_host
from proxy.catalog.requests import BODY_CAP, PROMPT_CAP, ParsedRequest, parse_request
from proxy.catalog.services import Catalog, Provider, builtin_providers, catalog_for
from proxy.catalog.shapes import StreamUsage, Usage, parse_usage

__all__ = [
    "BODY_CAP",
    "PROMPT_CAP",
    "Catalog",
    "ParsedRequest",
    "Provider",
    "StreamUsage",
    "Usage",
    "builtin_providers",
    "catalog_for",
    "normalize_host",
    "parse_request",
    "parse_usage",
]


def __getattr__(name: str) -> tuple[Provider, ...]:
    if name == "BUILTIN_PROVIDERS":  # read from the data file on first use, not on import
        return builtin_providers()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
