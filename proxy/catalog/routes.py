"""What a request's path says: endpoint kind, body shape, model, streaming.

The path is read as the service (and the CDN in front of it) would route it, not as it was
spelled: percent-encoding undone (``%2F`` and ``%2E`` included, and double encoding),
``\\`` taken for ``/``, ``;params`` dropped from segments, empty and ``.`` segments dropped,
``..`` resolved, and letter case ignored. A path that would reach the chat endpoint is
classified as chat however it is written; what is forwarded is never changed.

Pure: no I/O, never raises on traffic. ``requests.py`` reads the body the route names.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import parse_qs, unquote

from governance.facts import Endpoint


@dataclass(frozen=True, slots=True)
class Route:
    """What the path alone says about a request."""

    endpoint: Endpoint
    shape: str | None  # the body's shape for shapes.py; None: the body is not read
    model: str | None = None
    stream: bool = False
    reader: str | None = None  # a body read its own way (batches, assistants ...); see requests
    generates: bool = False  # it runs a model, so a model it does not name is unknown
    body_endpoint: bool = False  # the endpoint it runs is named in the body (batches)


OTHER = Route(Endpoint.OTHER, None)


def segments(path: str) -> tuple[list[str], str]:
    """The path's segments as a service routes them, and the query string."""
    path, _, query = path.partition("#")[0].partition("?")
    for _ in range(3):  # %252F is %2F once decoded, and some stacks decode twice
        decoded = unquote(path)
        if decoded == path:
            break
        path = decoded
    segs: list[str] = []
    for seg in path.replace("\\", "/").split("/"):
        seg = seg.partition(";")[0].strip()
        if seg in ("", "."):
            continue
        if seg == "..":
            if segs:
                segs.pop()
            continue
        segs.append(seg)
    return segs, query


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
# requests that run a model (POST to exactly these paths)
_OPENAI_RUNS = frozenset(
    {
        ("chat", "completions"),
        ("agents", "completions"),
        ("fim", "completions"),
        ("completions",),
        ("responses",),
        ("embeddings",),
        ("images", "generations"),
        ("images", "edits"),
        ("images", "variations"),
        ("audio", "speech"),
        ("audio", "transcriptions"),
        ("audio", "translations"),
    }
)
# Assistants, Conversations, Batches, realtime sessions: (path with "*" for an id) -> route
_OPENAI_SPECIAL: dict[tuple[str, ...], Route] = {
    ("assistants",): Route(Endpoint.CHAT, "openai", reader="assistant"),
    ("assistants", "*"): Route(Endpoint.CHAT, "openai", reader="assistant"),
    ("threads",): Route(Endpoint.CHAT, "openai", reader="thread"),
    ("threads", "runs"): Route(Endpoint.CHAT, "openai", reader="run", generates=True),
    ("threads", "*", "messages"): Route(Endpoint.CHAT, "openai", reader="message"),
    ("threads", "*", "messages", "*"): Route(Endpoint.CHAT, "openai", reader="message"),
    ("threads", "*", "runs"): Route(Endpoint.CHAT, "openai", reader="run", generates=True),
    ("threads", "*", "runs", "*", "submit_tool_outputs"): Route(
        Endpoint.CHAT, "openai", reader="tool_outputs", generates=True
    ),
    ("conversations",): Route(Endpoint.RESPONSES, "openai", reader="conversation"),
    ("conversations", "*", "items"): Route(Endpoint.RESPONSES, "openai", reader="conversation"),
    ("batches",): Route(
        Endpoint.OTHER, "openai", reader="batch", generates=True, body_endpoint=True
    ),  # fmt: skip
    ("files",): Route(Endpoint.FILES, "openai", reader="file", body_endpoint=True),
    ("uploads",): Route(Endpoint.FILES, "openai", reader="upload", body_endpoint=True),
    ("uploads", "*", "parts"): Route(Endpoint.FILES, "openai", reader="part", body_endpoint=True),
    ("realtime", "sessions"): Route(Endpoint.REALTIME, "openai", reader="session", generates=True),
    ("realtime", "client_secrets"): Route(
        Endpoint.REALTIME, "openai", reader="session", generates=True
    ),
    ("realtime", "transcription_sessions"): Route(
        Endpoint.REALTIME, "openai", reader="session", generates=True
    ),
    ("realtime", "calls"): Route(Endpoint.REALTIME, "openai", reader="call", generates=True),
}


def _special(rest: list[str], table: dict[tuple[str, ...], Route]) -> Route | None:
    """The table's route for *rest* (lower-case), where "*" stands for any one segment."""
    found = table.get(tuple(rest))
    if found is None and len(rest) > 1:
        found = table.get(tuple(s if i % 2 == 0 else "*" for i, s in enumerate(rest)))
    return found


def _kind(rest: list[str], kinds: dict[tuple[str, ...], Endpoint]) -> Endpoint:
    """The kind of the longest known leading segments of *rest* (OTHER when none)."""
    return kinds.get(tuple(rest[:2])) or kinds.get(tuple(rest[:1])) or Endpoint.OTHER


def openai_route(segs: list[str], query: str, method: str) -> Route:
    low = [s.lower() for s in segs]
    model: str | None = None
    if low[:2] == ["openai", "deployments"] and len(segs) > 2:  # Azure
        segs, low, model = segs[3:], low[3:], segs[2]
    else:
        prefix = next((p for p in _OPENAI_PREFIXES if tuple(low[: len(p)]) == p), ())
        segs, low = segs[len(prefix) :], low[len(prefix) :]
    if low[:1] == ["engines"] and len(segs) > 1:  # legacy /v1/engines/{model}/completions
        model, segs, low = segs[1], segs[2:], low[2:]
    post = method.upper() == "POST"
    special = _special(low, _OPENAI_SPECIAL) if post else None
    if special is not None:
        return replace(special, model=_query_model(query) or model)
    endpoint = _kind(low, _OPENAI_KINDS)
    if endpoint is Endpoint.REALTIME:  # a WebSocket: the model travels in the query
        named = _query_model(query) or model
        return Route(endpoint, "openai", named, generates=low == ["realtime"])
    return Route(endpoint, "openai", model, generates=post and tuple(low) in _OPENAI_RUNS)


def _query_model(query: str) -> str | None:
    if not query:
        return None
    params = parse_qs(query)
    named = params.get("model") or params.get("deployment")
    return named[0] if named else None


_ANTHROPIC_KINDS: dict[tuple[str, ...], Endpoint] = {
    ("messages",): Endpoint.CHAT,
    ("complete",): Endpoint.COMPLETIONS,
}


def anthropic_route(segs: list[str], method: str) -> Route:
    low = [s.lower() for s in segs]
    rest = low[1:] if low[:1] == ["v1"] else low
    post = method.upper() == "POST"
    if rest[:1] == ["files"]:
        return Route(Endpoint.FILES, None)
    if rest == ["messages", "batches"] and post:  # Message Batches: many requests in one
        return Route(Endpoint.CHAT, "anthropic", reader="anthropic_batch", generates=True)
    # count_tokens and reading batches are OTHER: the body names a model, but runs nothing
    endpoint = _ANTHROPIC_KINDS.get(tuple(rest), Endpoint.OTHER)
    return Route(endpoint, "anthropic", generates=post and endpoint is not Endpoint.OTHER)


_GEMINI_METHODS = {
    "generatecontent": (Endpoint.CHAT, False),
    "streamgeneratecontent": (Endpoint.CHAT, True),
    "embedcontent": (Endpoint.EMBEDDINGS, False),
    "batchembedcontents": (Endpoint.EMBEDDINGS, False),
    "batchgeneratecontent": (Endpoint.CHAT, False),  # the Gemini Batch API
    "asyncbatchembedcontent": (Endpoint.EMBEDDINGS, False),
    "rawpredict": (Endpoint.CHAT, False),  # Vertex partner models (Claude) in their own shape
    "streamrawpredict": (Endpoint.CHAT, True),
}


def gemini_route(segs: list[str], query: str, method: str) -> Route:
    low = [s.lower() for s in segs]
    for i, seg in enumerate(low):  # Gemini's and Vertex's OpenAI-compatible endpoints
        if (seg == "openai" and i == 1) or (seg == "openapi" and low[i - 1] == "endpoints"):
            return openai_route(segs[i + 1 :], query, method)
    if "files" in low[:3]:  # /v1beta/files, /upload/v1beta/files
        return Route(Endpoint.FILES, None)
    if low and "bidigeneratecontent" in low[-1]:  # the Live API WebSocket: model in a message
        return Route(Endpoint.REALTIME, None, generates=True)
    if not segs or ":" not in segs[-1]:
        return OTHER
    name, _, verb = segs[-1].rpartition(":")
    model = name if len(segs) > 1 and low[-2].endswith("models") else None
    endpoint, stream = _GEMINI_METHODS.get(verb.lower(), (Endpoint.OTHER, False))
    if endpoint is Endpoint.OTHER:
        return Route(endpoint, None, model)
    verb = verb.lower()
    shape = "gemini"
    if "rawpredict" in verb:  # Vertex serves partner models in their own body shape
        shape = "anthropic" if "anthropic" in low else "openai"
    reader = "gemini_batch" if verb == "batchgeneratecontent" else None
    return Route(endpoint, shape, model, stream, reader, generates=method.upper() == "POST")


_COHERE_KINDS: dict[tuple[str, ...], Endpoint] = {
    ("chat",): Endpoint.CHAT,
    ("generate",): Endpoint.COMPLETIONS,
    ("embed",): Endpoint.EMBEDDINGS,
}


def cohere_route(segs: list[str], query: str, method: str) -> Route:
    low = [s.lower() for s in segs]
    if low[:1] == ["compatibility"]:  # Cohere's OpenAI-compatible API
        return openai_route(segs[1:], query, method)
    rest = low[1:] if low[:1] in (["v1"], ["v2"]) else low
    endpoint = _kind(rest, _COHERE_KINDS)
    post = method.upper() == "POST"
    return Route(endpoint, "cohere", generates=post and endpoint is not Endpoint.OTHER)


_OLLAMA_KINDS: dict[tuple[str, ...], Endpoint] = {
    ("chat",): Endpoint.CHAT,
    ("generate",): Endpoint.COMPLETIONS,
    ("embed",): Endpoint.EMBEDDINGS,
    ("embeddings",): Endpoint.EMBEDDINGS,
}


def ollama_route(segs: list[str], query: str, method: str) -> Route:
    """Ollama's native API under /api/ (it streams unless the body says ``stream: false``);
    its OpenAI-compatible one under /v1/."""
    low = [s.lower() for s in segs]
    if low[:1] != ["api"]:
        return openai_route(segs, query, method)
    endpoint = _kind(low[1:], _OLLAMA_KINDS)
    if endpoint is Endpoint.OTHER:  # tags, pull, show ...: model management, no prompt
        return Route(Endpoint.OTHER, "ollama")
    post = method.upper() == "POST"
    return Route(endpoint, "ollama", stream=endpoint is not Endpoint.EMBEDDINGS, generates=post)


# chatgpt.com: signed in under /backend-api/, signed out (no account) under /backend-anon/;
# newer app versions add an /f/ segment. claude.ai: completion and retry_completion.
_CHATGPT_ROOTS = frozenset({"backend-api", "backend-anon", "public-api"})
_CLAUDE_VERBS = frozenset({"completion", "retry_completion"})


def web_route(provider_name: str, method: str, segs: list[str]) -> Route:
    low = [s.lower() for s in segs]
    if method.upper() != "POST":
        return Route(Endpoint.WEB_APP, None)
    if provider_name == "chatgpt" and low[:1] and low[0] in _CHATGPT_ROOTS:
        if low[-1:] == ["conversation"]:
            return Route(Endpoint.WEB_APP, "chatgpt")
    if provider_name == "claude" and len(low) == 6 and low[-1] in _CLAUDE_VERBS:
        if low[:2] == ["api", "organizations"] and low[3] == "chat_conversations":
            return Route(Endpoint.WEB_APP, "claude")
    return Route(Endpoint.WEB_APP, None)


def route(provider_name: str, api: str, method: str, path: str) -> Route:
    """The route of one request to a provider of API family *api*."""
    segs, query = segments(path)
    if api == "web":
        return web_route(provider_name, method, segs)
    if api == "anthropic":
        return anthropic_route(segs, method)
    if api == "gemini":
        return gemini_route(segs, query, method)
    if api == "cohere":
        return cohere_route(segs, query, method)
    if api == "ollama":
        return ollama_route(segs, query, method)
    return openai_route(segs, query, method)
