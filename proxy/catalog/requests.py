"""One request to an LLM service -> endpoint, models, prompt text, and what could not be read.

``routes.py`` says what the path asks for; this module reads the body that path takes. A body
the gate cannot read where it needs one (over the cap, in an unknown encoding, JSON Python
refuses, a batch whose requests live in an earlier upload) is never read as "nothing there":
``ParsedRequest.unreadable`` says why, and ``settings.unreadable`` decides. APIs that carry
their model or prompts elsewhere are read where they carry them: OpenAI Batches (JSONL lines
of an uploaded file), Anthropic Message Batches, Gemini batches, Assistants threads and runs,
Conversations, realtime sessions, multipart forms (audio, images).

Pure; never raises on traffic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy as email_policy
from email.message import Message
from email.parser import BytesParser
from typing import Protocol

from governance.facts import Endpoint
from proxy.catalog.routes import Route, openai_route, route, segments
from proxy.catalog.shapes import JsonObject, load_json, prompt_texts

PROMPT_CAP = 100_000  # chars
BODY_CAP = 2 * 1024 * 1024  # bytes; larger bodies are not read (settings.unreadable decides)
NOT_JSON = "its body is not JSON the gate can read"
OVER_CAP = "its body is larger than the 2 MiB the gate reads"


class ProviderLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def api(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    endpoint: Endpoint
    model: str | None
    prompt: str | None  # every message's text, "\n"-joined, capped; None when not parsed
    prompt_chars: int  # length before the cap
    stream: bool  # the client asked for a streamed (SSE) answer
    inspected: bool  # the body was parsed as a known shape
    stream_usage_requested: bool = False  # OpenAI stream with stream_options.include_usage
    models: tuple[str, ...] = ()  # every model named (a batch names several)
    unreadable: str | None = None  # why a body the gate needed could not be read
    model_unknown: bool = False  # it runs a model it does not name
    endpoint_known: bool = True  # False: the endpoint is named in a body it could not read
    # the body's API family (a block answers in its error shape); derived from the path, so
    # two parses of one request are equal with or without it
    shape: str | None = field(default=None, compare=False)


@dataclass(slots=True)
class _Read:
    """What a body reader found."""

    models: list[str]
    texts: list[str]
    endpoint: Endpoint | None = None  # the body names the endpoint it runs (batches)
    unreadable: str | None = None
    data: object = None  # the parsed JSON body, for its stream flags


def parse_request(
    provider: ProviderLike,
    method: str,
    path: str,
    content_type: str | None,
    body: bytes | None,
    unreadable: str | None = None,
) -> ParsedRequest:
    """Endpoint, models, prompt and streaming of one request; best effort, never raises.

    *body* is the decoded body, or None when it was not read (*unreadable* then says why,
    when the edge knows: over the cap, an encoding it cannot undo ...).
    """
    found = route(provider.name, provider.api, method, path)
    if found.shape is None:
        return _parsed(found, None, None)
    if unreadable is not None or not body or not body.strip():
        return _parsed(found, None, unreadable)  # nothing sent, or nothing the gate could read
    if len(body) > BODY_CAP:
        return _parsed(found, None, OVER_CAP)
    read = _read_body(found, content_type, body)
    return _parsed(found, read, read.unreadable)


def _parsed(found: Route, read: _Read | None, unreadable: str | None) -> ParsedRequest:
    endpoint = found.endpoint
    if read is not None and read.endpoint is not None:
        endpoint = read.endpoint
    models = tuple(dict.fromkeys(_models(found, read)))
    model = models[0] if models else found.model
    data = read.data if read is not None else None
    stream = found.stream or (isinstance(data, dict) and data.get("stream") is True)
    if found.shape == "ollama" and isinstance(data, dict) and data.get("stream") is False:
        stream = False  # Ollama's native API streams unless the body says otherwise
    readable = read is not None and unreadable is None
    prompt = "\n".join(read.texts) if readable and read is not None else None
    return ParsedRequest(
        endpoint=endpoint,
        model=model,
        prompt=prompt[:PROMPT_CAP] if prompt is not None else None,
        prompt_chars=len(prompt) if prompt is not None else 0,
        stream=stream,
        inspected=readable and found.reader != "batch",
        stream_usage_requested=readable and _wants_stream_usage(found, data),
        models=models,
        unreadable=unreadable,
        model_unknown=found.generates and not models and found.shape != "chatgpt",
        endpoint_known=not (found.body_endpoint and unreadable is not None),
        shape=found.shape,
    )


def _models(found: Route, read: _Read | None) -> list[str]:
    """Every model named: the path's first for Gemini (it decides there), else the body's
    first; an Azure deployment or a legacy engine in the path counts as well."""
    named = read.models if read is not None else []
    if not found.model:
        return named
    return [found.model, *named] if found.shape == "gemini" else [*named, found.model]


def _read_body(found: Route, content_type: str | None, body: bytes) -> _Read:
    media = (content_type or "").partition(";")[0].strip().lower()
    if media == "multipart/form-data":
        return _read_form(found, content_type or "", body)
    if found.reader in ("part", "call") and not body.lstrip().startswith(b"{"):
        return _read_opaque(found)
    data = load_json(body)  # whatever the Content-Type says: services parse JSON anyway
    if not isinstance(data, dict):
        return _Read([], [], unreadable=NOT_JSON)
    reader = _READERS.get(found.reader or "", _plain)
    read = reader(found, data)
    read.data = data
    return read


def _plain(found: Route, data: JsonObject) -> _Read:
    texts = prompt_texts(found.shape or "", found.endpoint, data) or []
    return _Read(_model_of(data), texts)


def _model_of(data: object) -> list[str]:
    model = data.get("model") if isinstance(data, dict) else None
    return [model] if isinstance(model, str) and model else []


def _chat_texts(messages: object, *extra: object) -> list[str]:
    """Prompt text of chat-shaped messages plus loose strings (instructions ...)."""
    texts = prompt_texts("openai", Endpoint.CHAT, {"messages": messages}) or []
    return [s for s in extra if isinstance(s, str) and s] + texts


def _assistant(found: Route, data: JsonObject) -> _Read:
    return _Read(_model_of(data), _chat_texts([], data.get("instructions")))


def _thread(found: Route, data: JsonObject) -> _Read:
    return _Read([], _chat_texts(data.get("messages")))


def _message(found: Route, data: JsonObject) -> _Read:
    return _Read([], _chat_texts([data]))


def _run(found: Route, data: JsonObject) -> _Read:
    thread = data.get("thread")
    thread_messages = thread.get("messages") if isinstance(thread, dict) else None
    messages = _list(thread_messages) + _list(data.get("additional_messages"))
    texts = _chat_texts(messages, data.get("instructions"), data.get("additional_instructions"))
    return _Read(_model_of(data), texts)


def _tool_outputs(found: Route, data: JsonObject) -> _Read:
    outputs = _list(data.get("tool_outputs"))
    return _Read([], [text for o in outputs if isinstance(text := o.get("output"), str)])


def _conversation(found: Route, data: JsonObject) -> _Read:
    texts = prompt_texts("openai", Endpoint.RESPONSES, {"input": data.get("items")}) or []
    return _Read([], texts)


def _session(found: Route, data: JsonObject) -> _Read:
    session = data.get("session")
    inner = session if isinstance(session, dict) else data  # client_secrets nest it
    texts = _chat_texts([], inner.get("instructions"))
    return _Read(_model_of(inner), texts)


def _batch(found: Route, data: JsonObject) -> _Read:
    """Batch creation: the requests it runs are in a file uploaded earlier."""
    target = data.get("endpoint")
    kind = None
    if isinstance(target, str):
        segs, query = segments(target)
        kind = openai_route(segs, query, "POST").endpoint
    why = "the requests it runs are in a file uploaded earlier"
    return _Read([], [], endpoint=kind, unreadable=why)


def _upload(found: Route, data: JsonObject) -> _Read:
    if data.get("purpose") == "batch":
        return _Read([], [], unreadable="it starts a batch file uploaded in parts")
    return _Read([], [], endpoint=Endpoint.FILES)


def _read_opaque(found: Route) -> _Read:
    if found.reader == "part":
        return _Read([], [], unreadable="it is one part of a larger upload")
    return _Read([], [])  # a realtime call's SDP offer: the model is in the query


def _anthropic_batch(found: Route, data: JsonObject) -> _Read:
    models: list[str] = []
    texts: list[str] = []
    for item in _list(data.get("requests")):
        params = item.get("params")
        if isinstance(params, dict):
            models += _model_of(params)
            texts += prompt_texts("anthropic", Endpoint.CHAT, params) or []
    return _Read(models, texts)


def _gemini_batch(found: Route, data: JsonObject) -> _Read:
    batch = data.get("batch")
    config = batch.get("input_config") if isinstance(batch, dict) else None
    holder = config.get("requests") if isinstance(config, dict) else None
    items = holder.get("requests") if isinstance(holder, dict) else None
    if isinstance(config, dict) and "file_name" in config:
        return _Read([], [], unreadable="the requests it runs are in a file uploaded earlier")
    texts: list[str] = []
    for item in _list(items):
        request = item.get("request")
        if isinstance(request, dict):
            texts += prompt_texts("gemini", Endpoint.CHAT, request) or []
    return _Read([], texts)


_READERS: dict[str, Callable[[Route, JsonObject], _Read]] = {
    "assistant": _assistant,
    "thread": _thread,
    "message": _message,
    "run": _run,
    "tool_outputs": _tool_outputs,
    "conversation": _conversation,
    "session": _session,
    "batch": _batch,
    "file": lambda found, data: _Read([], [], unreadable=NOT_JSON),
    "upload": _upload,
    "anthropic_batch": _anthropic_batch,
    "gemini_batch": _gemini_batch,
}


def _list(value: object) -> list[JsonObject]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


# --- multipart forms: audio and image uploads, batch files ---------------------------------


def form_fields(content_type: str, body: bytes) -> dict[str, bytes] | None:
    """The fields of a multipart/form-data body (the first of a repeated name), byte for
    byte; None when it is no such form."""
    head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
    try:
        message = BytesParser(policy=email_policy.HTTP).parsebytes(head + body)
    except Exception:  # noqa: BLE001 - any broken form reads as unreadable
        return None
    if not message.is_multipart() or message.defects:
        return None
    form: dict[str, bytes] = {}
    for part in message.iter_parts() if hasattr(message, "iter_parts") else []:
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) if isinstance(part, Message) else None
        if isinstance(name, str) and isinstance(payload, bytes):
            form.setdefault(name, payload)
    return form or None


def _read_form(found: Route, content_type: str, body: bytes) -> _Read:
    form = form_fields(content_type, body)
    if form is None:
        return _Read([], [], unreadable="its form data is broken")
    if found.reader == "file":
        return _read_file_form(form)
    model = form.get("model", b"").decode("utf-8", "replace")
    prompt = form.get("prompt", b"").decode("utf-8", "replace")
    return _Read([model] if model else [], [prompt] if prompt else [])


def _read_file_form(form: dict[str, bytes]) -> _Read:
    """A file upload; one for a batch is read line by line as the requests it will run."""
    purpose = form.get("purpose", b"").decode("utf-8", "replace").strip().lower()
    if purpose != "batch":
        return _Read([], [], endpoint=Endpoint.FILES)
    return batch_lines(form.get("file", b""))


def batch_lines(jsonl: bytes) -> _Read:
    """The models, prompts and endpoint of an OpenAI batch input file (JSONL)."""
    models: list[str] = []
    texts: list[str] = []
    kinds: set[Endpoint] = set()
    for line in jsonl.splitlines():
        if not line.strip():
            continue
        item = load_json(line)
        body = item.get("body") if isinstance(item, dict) else None
        url = item.get("url") if isinstance(item, dict) else None
        if not isinstance(body, dict) or not isinstance(url, str):
            return _Read([], [], unreadable="a line of its batch file is not one the gate reads")
        segs, query = segments(url)
        line_route = openai_route(segs, query, "POST")
        kinds.add(line_route.endpoint)
        models += _model_of(body)
        texts += prompt_texts("openai", line_route.endpoint, body) or []
    if len(kinds) > 1:
        return _Read([], [], unreadable="its batch file mixes several endpoints")
    return _Read(models, texts, endpoint=next(iter(kinds), Endpoint.FILES))


def _wants_stream_usage(found: Route, body: object) -> bool:
    if not isinstance(body, dict):
        return False
    options = body.get("stream_options")
    return (
        found.shape == "openai"
        and found.endpoint in (Endpoint.CHAT, Endpoint.COMPLETIONS)
        and found.reader is None
        and body.get("stream") is True
        and isinstance(options, dict)
        and options.get("include_usage") is True
    )
