"""The LLM catalog: which hosts are LLM services, and what one request to them asks for.

The proxy edge asks ``Catalog.match(host)`` for every flow, then ``parse_request`` for the
endpoint kind, model, prompt text and streaming wish that become ``RequestFacts``; after the
answer, ``parse_usage`` / ``StreamUsage`` (from ``llm_shapes``) give the token counts for
quotas. Everything here is pure and never raises on traffic: bad bodies give best-effort
facts. Consumer web apps are decided at host level; their bodies are read only
opportunistically, since their endpoints are undocumented and change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote

from governance.facts import Endpoint
from proxy.catalog.hosts import normalize_host
from proxy.catalog.services import Catalog, Provider, builtin_providers, catalog_for
from proxy.catalog.shapes import (
    JsonObject,
    StreamUsage,
    Usage,
    load_json,
    parse_usage,
    prompt_texts,
)

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

PROMPT_CAP = 100_000  # chars
BODY_CAP = 2 * 1024 * 1024  # bytes; larger bodies are decided from the path alone


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    endpoint: Endpoint
    model: str | None
    prompt: str | None  # every message's text, "\n"-joined, capped; None when not parsed
    prompt_chars: int  # length before the cap
    stream: bool  # the client asked for a streamed (SSE) answer
    inspected: bool  # the body was parsed as a known shape
    stream_usage_requested: bool = False  # OpenAI stream with stream_options.include_usage
    # the body's API family (a block answers in its error shape); derived from the path, so
    # two parses of one request are equal with or without it
    shape: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class _Route:
    """What the path alone says: endpoint kind, body shape, model, streaming."""

    endpoint: Endpoint
    shape: str | None  # the body's shape for llm_shapes; None: not read
    model: str | None = None
    stream: bool = False


_OTHER = _Route(Endpoint.OTHER, None)

_OPENAI_PREFIXES = (("openai", "v1"), ("api", "v1"), ("inference", "v1"), ("openai",),
                    ("v1",), ("beta",))  # fmt: skip
_OPENAI_KINDS: dict[tuple[str, ...], Endpoint] = {
    ("chat", "completions"): Endpoint.CHAT,
    ("agents", "completions"): Endpoint.CHAT,  # Mistral agents take chat messages
    ("fim", "completions"): Endpoint.COMPLETIONS,  # Mistral fill-in-the-middle
    ("completions",): Endpoint.COMPLETIONS,
    ("responses",): Endpoint.RESPONSES,
    ("embeddings",): Endpoint.EMBEDDINGS,
    ("images",): Endpoint.IMAGES,
    ("audio",): Endpoint.AUDIO,
    ("realtime",): Endpoint.REALTIME,
    ("files",): Endpoint.FILES,
    ("uploads",): Endpoint.FILES,
}
_ANTHROPIC_KINDS: dict[tuple[str, ...], Endpoint] = {
    ("messages",): Endpoint.CHAT,
    ("complete",): Endpoint.COMPLETIONS,
}
_COHERE_KINDS: dict[tuple[str, ...], Endpoint] = {
    ("chat",): Endpoint.CHAT,
    ("generate",): Endpoint.COMPLETIONS,
    ("embed",): Endpoint.EMBEDDINGS,
}
_GEMINI_METHODS = {
    "generatecontent": (Endpoint.CHAT, False),
    "streamgeneratecontent": (Endpoint.CHAT, True),
    "embedcontent": (Endpoint.EMBEDDINGS, False),
    "batchembedcontents": (Endpoint.EMBEDDINGS, False),
    "rawpredict": (Endpoint.CHAT, False),  # Vertex partner models (Claude) in their own shape
    "streamrawpredict": (Endpoint.CHAT, True),
}


def _kind(rest: list[str], kinds: dict[tuple[str, ...], Endpoint]) -> Endpoint:
    """The kind of the longest known leading segments of *rest* (OTHER when none)."""
    lowered = tuple(s.lower() for s in rest[:2])
    return kinds.get(lowered) or kinds.get(lowered[:1]) or Endpoint.OTHER


def _openai_route(segs: list[str], query: str) -> _Route:
    low = [s.lower() for s in segs]
    deployment: str | None = None
    if low[:2] == ["openai", "deployments"] and len(segs) > 2:  # Azure
        segs, deployment = segs[3:], segs[2]
    else:
        prefix = next((p for p in _OPENAI_PREFIXES if tuple(low[: len(p)]) == p), ())
        segs = segs[len(prefix) :]
    endpoint = _kind(segs, _OPENAI_KINDS)
    if endpoint is Endpoint.REALTIME:  # a WebSocket: the model travels in the query
        params = parse_qs(query)
        named = params.get("model") or params.get("deployment")
        deployment = named[0] if named else deployment
    return _Route(endpoint, "openai", deployment)


def _anthropic_route(segs: list[str]) -> _Route:
    rest = segs[1:] if segs[:1] == ["v1"] else segs
    if rest[:1] == ["files"]:
        return _Route(Endpoint.FILES, None)
    # count_tokens and batches are OTHER: the body still names the model, but is no prompt
    return _Route(_ANTHROPIC_KINDS.get(tuple(rest), Endpoint.OTHER), "anthropic")


def _gemini_route(segs: list[str], query: str) -> _Route:
    low = [s.lower() for s in segs]
    for i, seg in enumerate(low):  # Gemini's and Vertex's OpenAI-compatible endpoints
        if (seg == "openai" and i == 1) or (seg == "openapi" and low[i - 1] == "endpoints"):
            return _openai_route(segs[i + 1 :], query)
    if "files" in low[:3]:  # /v1beta/files, /upload/v1beta/files
        return _Route(Endpoint.FILES, None)
    if low and "bidigeneratecontent" in low[-1]:  # the Live API WebSocket
        return _Route(Endpoint.REALTIME, None)
    if not segs or ":" not in segs[-1]:
        return _OTHER
    name, _, method = segs[-1].rpartition(":")
    model = name if len(segs) > 1 and low[-2].endswith("models") else None
    endpoint, stream = _GEMINI_METHODS.get(method.lower(), (Endpoint.OTHER, False))
    shape = _gemini_shape(low, method.lower()) if endpoint is not Endpoint.OTHER else None
    return _Route(endpoint, shape, model, stream)


def _gemini_shape(low: list[str], method: str) -> str:
    """Vertex serves partner models in their own body shape through (stream)rawPredict."""
    if "rawpredict" not in method:
        return "gemini"
    return "anthropic" if "anthropic" in low else "openai"


def _cohere_route(segs: list[str], query: str) -> _Route:
    if segs[:1] == ["compatibility"]:  # Cohere's OpenAI-compatible API
        return _openai_route(segs[1:], query)
    rest = segs[1:] if segs[:1] in (["v1"], ["v2"]) else segs
    return _Route(_kind(rest, _COHERE_KINDS), "cohere")


_OLLAMA_KINDS: dict[tuple[str, ...], Endpoint] = {
    ("chat",): Endpoint.CHAT,
    ("generate",): Endpoint.COMPLETIONS,
    ("embed",): Endpoint.EMBEDDINGS,
    ("embeddings",): Endpoint.EMBEDDINGS,
}


def _ollama_route(segs: list[str], query: str) -> _Route:
    """Ollama's native API under /api/ (it streams unless the body says ``stream: false``);
    its OpenAI-compatible one under /v1/."""
    if segs[:1] != ["api"]:
        return _openai_route(segs, query)
    endpoint = _kind(segs[1:], _OLLAMA_KINDS)
    if endpoint is Endpoint.OTHER:  # tags, pull, show ...: model management, no prompt
        return _Route(Endpoint.OTHER, "ollama")
    return _Route(endpoint, "ollama", stream=endpoint is not Endpoint.EMBEDDINGS)


_CLAUDE_COMPLETION = re.compile(r"api/organizations/[^/]+/chat_conversations/[^/]+/completion")


def _web_route(provider: Provider, method: str, segs: list[str]) -> _Route:
    if method.upper() == "POST" and provider.name == "chatgpt":
        low = [s.lower() for s in segs]
        if low[:1] == ["backend-api"] and low[-1] == "conversation":
            return _Route(Endpoint.WEB_APP, "chatgpt")
    if method.upper() == "POST" and provider.name == "claude":
        if _CLAUDE_COMPLETION.fullmatch("/".join(segs)):
            return _Route(Endpoint.WEB_APP, "claude")
    return _Route(Endpoint.WEB_APP, None)


def _route(provider: Provider, method: str, path: str) -> _Route:
    path, _, query = path.partition("#")[0].partition("?")
    segs = [unquote(s) for s in path.split("/") if s]
    if provider.api == "web":
        return _web_route(provider, method, segs)
    if provider.api == "anthropic":
        return _anthropic_route(segs)
    if provider.api == "gemini":
        return _gemini_route(segs, query)
    if provider.api == "cohere":
        return _cohere_route(segs, query)
    if provider.api == "ollama":
        return _ollama_route(segs, query)
    return _openai_route(segs, query)


def _json_body(content_type: str | None, body: bytes | None) -> JsonObject | None:
    """The body as a JSON object, or None: absent, too large, not JSON, or not an object."""
    if not body or len(body) > BODY_CAP:
        return None
    media = (content_type or "").partition(";")[0].strip().lower()
    if media and not media.endswith("json") and media != "text/plain":
        return None  # multipart uploads, audio, forms
    data = load_json(body)
    return data if isinstance(data, dict) else None


def _body_model(body: JsonObject) -> str | None:
    model = body.get("model")
    return model if isinstance(model, str) and model else None


def _wants_stream_usage(route: _Route, body: JsonObject) -> bool:
    options = body.get("stream_options")
    return (
        route.shape == "openai"
        and route.endpoint in (Endpoint.CHAT, Endpoint.COMPLETIONS)
        and body.get("stream") is True
        and isinstance(options, dict)
        and options.get("include_usage") is True
    )


def parse_request(
    provider: Provider, method: str, path: str, content_type: str | None, body: bytes | None
) -> ParsedRequest:
    """Endpoint, model, prompt and streaming of one request; best effort, never raises."""
    route = _route(provider, method, path)
    data = _json_body(content_type, body) if route.shape else None
    texts = prompt_texts(route.shape, route.endpoint, data) if route.shape and data else None
    path_first = route.model if route.shape == "gemini" else None  # Gemini: the path names it
    model = path_first or (_body_model(data) if data else None) or route.model
    stream = route.stream or (data is not None and data.get("stream") is True)
    if route.shape == "ollama" and data is not None and data.get("stream") is False:
        stream = False
    if data is None or texts is None:
        return ParsedRequest(route.endpoint, model, None, 0, stream, False, shape=route.shape)
    prompt = "\n".join(texts)
    return ParsedRequest(
        endpoint=route.endpoint,
        model=model,
        prompt=prompt[:PROMPT_CAP],
        prompt_chars=len(prompt),
        stream=stream,
        inspected=True,
        stream_usage_requested=_wants_stream_usage(route, data),
        shape=route.shape,
    )


def __getattr__(name: str) -> tuple[Provider, ...]:
    if name == "BUILTIN_PROVIDERS":  # read from the data file on first use, not on import
        return builtin_providers()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
