"""The bodies LLM APIs send and answer: prompt text, token usage, server-sent event streams.

Pure functions over bytes and parsed JSON, used by the catalog in ``providers.py``: it
decides which *shape* a request has (openai, anthropic, gemini, cohere, ollama, or a
consumer web app), and this module reads the text and the token counts out of it. Nothing
here raises on bad input: wrong types are skipped, broken JSON reads as nothing, and a stream
is read incrementally in bounded memory.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from governance.facts import Endpoint

JsonObject = dict[str, object]

TEXT_PART_TYPES = frozenset({"text", "input_text", "output_text"})
LINE_CAP = 1024 * 1024  # bytes of one SSE line / event kept; longer ones are salvaged, not kept
SALVAGE_KEEP = 64 * 1024  # bytes of head and tail kept from an oversized line or body
JSON_CAP = 8 * 1024 * 1024  # larger JSON answers (images) are salvaged, not parsed whole


@dataclass(frozen=True, slots=True)
class Usage:
    tokens_in: int | None = None
    tokens_out: int | None = None
    model: str | None = None


def load_json(data: bytes | str) -> object:
    """The JSON value in *data*; None when it is not JSON. Bad UTF-8 is replaced, not fatal."""
    try:
        return json.loads(data)
    except UnicodeDecodeError:
        if isinstance(data, bytes):
            return load_json(data.decode("utf-8", "replace"))
        return None
    except (ValueError, RecursionError):
        return None


# --- prompt text -------------------------------------------------------------------------


def _strings(value: object) -> list[str]:
    """A string, or the strings in a list (token-id lists and other items are skipped)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _each(value: object, key: str) -> list[object]:
    """``item[key]`` of every object in a list; nothing when *value* is not a list."""
    if not isinstance(value, list):
        return []
    return [item.get(key) for item in value if isinstance(item, dict)]


def _part_texts(content: object, nested: bool = False) -> list[str]:
    """Text of a message content: a string or a list of parts of any of the API shapes."""
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        return []
    texts: list[str] = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict):
            texts += _one_part(part, nested)
    return texts


def _one_part(part: JsonObject, nested: bool) -> list[str]:
    kind = part.get("type")
    if kind == "tool_result" and not nested:  # Anthropic: its content is blocks once more
        return _part_texts(part.get("content"), nested=True)
    text = part.get("text")
    if isinstance(text, str) and (kind is None or kind in TEXT_PART_TYPES):
        return [text]
    return []


def _messages(value: object) -> list[str]:
    """Text of chat messages / Responses input items (content, tool output)."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        return []
    texts: list[str] = []
    for item in value:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, dict):
            texts += _part_texts(item.get("content")) + _strings(item.get("output"))
    return texts


def _gemini_contents(value: object) -> list[str]:
    """Text of a Gemini ``Content`` ({role, parts}), a list of them, or a bare string."""
    items = value if isinstance(value, list) else [value]
    texts: list[str] = []
    for item in items:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, dict):
            texts += _part_texts(item.get("parts"))
    return texts


def _gemini_chat(body: JsonObject) -> list[str]:
    system = body.get("systemInstruction", body.get("system_instruction"))
    return _gemini_contents(system) + _gemini_contents(body.get("contents"))


def _gemini_embed(body: JsonObject) -> list[str]:
    requests = _each(body.get("requests"), "content")  # batchEmbedContents
    return _gemini_contents(body.get("content")) + _gemini_contents(requests)


def _cohere_chat(body: JsonObject) -> list[str]:
    """v2 ``messages`` like OpenAI; v1 ``preamble``, ``chat_history`` and ``message``."""
    return (
        _strings(body.get("preamble"))
        + _strings(_each(body.get("chat_history"), "message"))
        + _messages(body.get("messages"))
        + _strings(body.get("message"))
    )


def _chatgpt(body: JsonObject) -> list[str]:
    """chatgpt.com conversation posts: ``messages[].content.parts`` (strings)."""
    contents = _each(body.get("messages"), "content")
    return [text for parts in _each(contents, "parts") for text in _strings(parts)]


def _claude_web(body: JsonObject) -> list[str]:
    """claude.ai completion posts: ``prompt`` plus the text of pasted attachments."""
    pasted = _each(body.get("attachments"), "extracted_content")
    return _strings(body.get("prompt")) + _strings(pasted)


PromptReader = Callable[[JsonObject], list[str]]

_OPENAI: dict[Endpoint, PromptReader] = {
    Endpoint.CHAT: lambda b: _messages(b.get("messages")),
    Endpoint.RESPONSES: lambda b: _strings(b.get("instructions")) + _messages(b.get("input")),
    Endpoint.COMPLETIONS: lambda b: _strings(b.get("prompt")),
    Endpoint.EMBEDDINGS: lambda b: _strings(b.get("input")),
    Endpoint.IMAGES: lambda b: _strings(b.get("prompt")),
    Endpoint.AUDIO: lambda b: _strings(b.get("input")),  # text to speech
}

PROMPT_READERS: dict[str, dict[Endpoint, PromptReader]] = {
    "openai": _OPENAI,
    "anthropic": {
        Endpoint.CHAT: lambda b: _part_texts(b.get("system")) + _messages(b.get("messages")),
        Endpoint.COMPLETIONS: lambda b: _strings(b.get("prompt")),
    },
    "gemini": {Endpoint.CHAT: _gemini_chat, Endpoint.EMBEDDINGS: _gemini_embed},
    "cohere": {
        Endpoint.CHAT: _cohere_chat,
        Endpoint.COMPLETIONS: lambda b: _strings(b.get("prompt")),
        Endpoint.EMBEDDINGS: lambda b: _strings(b.get("texts")),
    },
    "ollama": {
        Endpoint.CHAT: lambda b: _messages(b.get("messages")),
        Endpoint.COMPLETIONS: lambda b: (
            _strings(b.get("system")) + _strings(b.get("prompt")) + _strings(b.get("suffix"))
        ),
        Endpoint.EMBEDDINGS: lambda b: _strings(b.get("input")) + _strings(b.get("prompt")),
    },
    "chatgpt": {Endpoint.WEB_APP: _chatgpt},
    "claude": {Endpoint.WEB_APP: _claude_web},
}


def prompt_texts(shape: str, endpoint: Endpoint, body: JsonObject) -> list[str] | None:
    """The non-empty texts of a request body; None when the shape/endpoint is not known."""
    reader = PROMPT_READERS.get(shape, {}).get(endpoint)
    if reader is None:
        return None
    return [text for text in reader(body) if text]


# --- token usage -------------------------------------------------------------------------

_IN_KEYS = ("prompt_tokens", "input_tokens", "promptTokenCount")
_OUT_KEYS = ("completion_tokens", "output_tokens", "candidatesTokenCount")
# Anthropic counts cached input apart from input_tokens; OpenAI's prompt_tokens includes it.
_IN_EXTRA = ("cache_creation_input_tokens", "cache_read_input_tokens")
_OUT_EXTRA = ("thoughtsTokenCount",)  # Gemini bills thinking as output, outside candidates


def _count(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _first_count(counts: JsonObject, keys: Iterable[str]) -> int | None:
    for key in keys:
        if (found := _count(counts.get(key))) is not None:
            return found
    return None


def _total(counts: JsonObject, keys: tuple[str, ...], extra: tuple[str, ...]) -> int | None:
    """The first of *keys* present, plus any *extra* counts; None when none is present."""
    base = _first_count(counts, keys)
    extras = [c for c in (_count(counts.get(key)) for key in extra) if c is not None]
    if base is None and not extras:
        return None
    return (base or 0) + sum(extras)


def _counts_usage(counts: object) -> Usage:
    """Token counts of one usage object; Cohere nests them in billed_units or tokens."""
    if not isinstance(counts, dict):
        return Usage()
    for inner in (_child(counts, "billed_units"), _child(counts, "tokens"), counts):
        usage = Usage(_total(inner, _IN_KEYS, _IN_EXTRA), _total(inner, _OUT_KEYS, _OUT_EXTRA))
        if usage.tokens_in is not None or usage.tokens_out is not None:
            return usage
    return Usage()


def _child(obj: JsonObject, key: str) -> JsonObject:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def _model(obj: JsonObject) -> str | None:
    for key in ("model", "modelVersion"):
        value = obj.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def usage_of(obj: object) -> Usage:
    """The usage one response object or stream event carries, whatever the API shape."""
    if not isinstance(obj, dict):
        return Usage()
    holders = [obj] + [_child(obj, key) for key in ("response", "message", "delta", "x_groq")]
    usage = Usage(_count(obj.get("prompt_eval_count")), _count(obj.get("eval_count")))  # Ollama
    for holder in filter(None, holders):
        usage = merge_usage(usage, _counts_usage(holder.get("usage")))
        usage = merge_usage(usage, _counts_usage(holder.get("meta")))  # Cohere v1
        usage = merge_usage(usage, _counts_usage(holder.get("usageMetadata")))  # Gemini
        usage = merge_usage(usage, Usage(model=_model(holder)))
    return usage


def merge_usage(old: Usage, new: Usage) -> Usage:
    """Later counts replace earlier ones field by field (stream counts are cumulative)."""
    return Usage(
        new.tokens_in if new.tokens_in is not None else old.tokens_in,
        new.tokens_out if new.tokens_out is not None else old.tokens_out,
        new.model if new.model is not None else old.model,
    )


def usage_of_json(value: object) -> Usage:
    """Usage of a parsed body: one object, or a list of them (a collected Gemini stream)."""
    usage = Usage()
    for item in value if isinstance(value, list) else [value]:
        usage = merge_usage(usage, usage_of(item))
    return usage


_SALVAGE_COUNT = re.compile(
    rb'"(prompt_tokens|completion_tokens|input_tokens|output_tokens|promptTokenCount'
    rb'|candidatesTokenCount)"\s*:\s*(\d{1,12})\b'
)
_SALVAGE_MODEL = re.compile(rb'"(?:model|modelVersion)"\s*:\s*"([^"\\]{1,200})"')


def salvage_usage(head: bytes, tail: bytes) -> Usage:
    """Usage from the two ends of JSON too big to keep, such as a response with an image.

    The counts sit at the end of such objects, the model usually near the start.
    """
    counts: JsonObject = {k.decode(): int(v) for k, v in _SALVAGE_COUNT.findall(tail)}
    models = _SALVAGE_MODEL.findall(head) or _SALVAGE_MODEL.findall(tail)[-1:]
    model = models[0].decode("utf-8", "replace") if models else None
    return Usage(_first_count(counts, _IN_KEYS), _first_count(counts, _OUT_KEYS), model)


_SSE_STARTS = (b"data:", b"event:", b":")


def parse_usage(api: str, content_type: str | None, body: bytes) -> Usage:
    """Usage of a complete response body: JSON, or SSE when it is an event stream."""
    if api == "web" or not body:
        return Usage()
    start = body[:64].lstrip()
    if _media_type(content_type) == "text/event-stream" or start.startswith(_SSE_STARTS):
        reader = StreamUsage(api)
        reader.feed(body)
        return reader.usage
    if len(body) > JSON_CAP:  # parsing it whole would stall the proxy; read its ends
        return salvage_usage(body[:SALVAGE_KEEP], body[-SALVAGE_KEEP:])
    return usage_of_json(load_json(body))


def _media_type(content_type: str | None) -> str:
    return (content_type or "").partition(";")[0].strip().lower()


# --- server-sent events ------------------------------------------------------------------


class StreamUsage:
    """Incremental SSE reader: feed the response body chunk by chunk, then read ``usage``.

    Chunks may split lines, events and UTF-8 sequences anywhere: bytes are kept until a
    newline, and an event is decoded only when it is parsed. Memory is bounded: only the
    current line (at most ``LINE_CAP`` bytes; a longer one keeps head and tail for
    ``salvage_usage``) and the data lines of the current event (at most ``LINE_CAP`` bytes)
    are held. Lines end with LF or CRLF; a lone CR is not a line end here. ``data:`` lines
    that are bare JSON (NDJSON streams) are read too.

    Parsing every event's JSON was most of the relay's cost per chunk. An event is parsed
    only when it may change what was read: while the answer's model is still unknown, when
    it names another model, or when its bytes hold a usage object (``_USAGE_HINT``: the
    usage keys ``usage_of`` reads, each followed by an object, or Ollama's counts). A key
    is never split across the lines of one event (JSON strings hold no raw newline), so each
    data line is checked on its own as it arrives.
    """

    __slots__ = (
        "_enabled",
        "_line",
        "_head",
        "_oversized",
        "_data",
        "_data_size",
        "_broken",
        "_wanted",
        "_usage",
        "events",
    )

    def __init__(self, api: str) -> None:
        self._enabled = api != "web"
        self._line = bytearray()  # the current partial line (or the tail of an oversized one)
        self._head = b""  # the start of an oversized line
        self._oversized = False
        self._data: list[bytes] = []  # data lines of the current event
        self._data_size = 0
        self._broken = False  # the current event outgrew LINE_CAP: its data is dropped
        self._wanted = False  # the current event is to be parsed (see the class docstring)
        self._usage = Usage()
        self.events = 0  # data events (and bare JSON lines) seen, [DONE] not counted

    def feed(self, chunk: bytes) -> None:
        if not self._enabled or not chunk:
            return
        if (
            chunk.find(b"\n") == len(chunk) - 2
            and chunk.endswith(b"\n\n")
            and chunk.startswith(b"data:")
            and len(chunk) <= LINE_CAP
            and not (self._line or self._oversized or self._data or self._broken)
        ):  # the usual read: one whole one-line event
            self._one_event(chunk)
            return
        start = 0
        find = chunk.find
        while (end := find(b"\n", start)) != -1:
            if self._line or self._oversized or end - start > LINE_CAP:
                self._append(chunk[start:end])
                self._end_line()
            else:  # the whole line is in this chunk: no copy into the line buffer
                self._line_done(chunk[start:end])
            start = end + 1
        if start < len(chunk):
            self._append(chunk[start:])

    def _one_event(self, chunk: bytes) -> None:
        """What ``_add_data`` and ``_dispatch`` do for ``data:...\n\n``, without the state.
        The checks read the chunk in place (its ``data:`` and line end hold no key); the
        value is cut out only to be parsed."""
        if chunk.find(b"[DONE]", 5, 16) != -1 and chunk[5:-2].strip() == b"[DONE]":
            return
        if worth_parsing(self._usage, chunk):
            value = chunk[5:-2].removesuffix(b"\r")
            value = value[1:] if value[:1] == b" " else value
            self._usage = merge_usage(self._usage, usage_of_json(load_json(value)))
        self.events += 1

    def resting_model(self) -> str | None:
        """The answer's model once known, while nothing is held (no partial line or event):
        then a one-line event that holds no usage key and names no other model changes
        nothing here but ``events`` (the relay's fast path, proxy/catalog/relay.py)."""
        if self._line or self._oversized or self._data or self._broken or not self._enabled:
            return None
        return self._usage.model

    @property
    def usage(self) -> Usage:
        """Usage so far, counting an event the stream has not closed with a blank line."""
        if self._broken:
            return self._usage
        partial = b"" if self._oversized else bytes(self._line)
        if partial.startswith(b"{"):
            return merge_usage(self._usage, _event_usage(partial))
        value = _data_value(partial)
        data = self._data + [value] if value is not None else self._data
        return merge_usage(self._usage, _event_usage(b"\n".join(data))) if data else self._usage

    def _append(self, piece: bytes) -> None:
        if not self._oversized and len(self._line) + len(piece) <= LINE_CAP:
            self._line += piece
            return
        if not self._oversized:
            self._oversized = True
            self._head = (bytes(self._line[:SALVAGE_KEEP]) + piece[:SALVAGE_KEEP])[:SALVAGE_KEEP]
        tail = bytes(self._line[-SALVAGE_KEEP:]) + piece[-SALVAGE_KEEP:]
        self._line = bytearray(tail[-SALVAGE_KEEP:])

    def _end_line(self) -> None:
        line, self._line = bytes(self._line), bytearray()
        if self._oversized:
            self._end_oversized(line.removesuffix(b"\r"))
            return
        self._line_done(line)

    def _line_done(self, line: bytes) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if line.startswith(_BOM):
            line = line[3:]
        if not line:
            self._dispatch()
        elif line[0] == 0x7B:  # "{": a bare JSON line
            if self._worth_parsing(line):
                self._usage = merge_usage(self._usage, _event_usage(line))
            self.events += 1
        else:
            value = _data_value(line)
            if value is not None and not self._broken:
                self._add_data(value)

    def _end_oversized(self, tail: bytes) -> None:
        if self._head.lstrip().startswith((b"data", b"{")):
            self._usage = merge_usage(self._usage, salvage_usage(self._head, tail))
        self._oversized, self._head = False, b""
        self._broken, self._data, self._data_size = True, [], 0

    def _add_data(self, value: bytes) -> None:
        self._data_size += len(value) + 1
        if self._data_size > LINE_CAP:
            self._broken, self._data = True, []
            return
        self._data.append(value)
        if not self._wanted and self._worth_parsing(value):
            self._wanted = True

    def _worth_parsing(self, data: bytes) -> bool:
        return worth_parsing(self._usage, data)

    def _dispatch(self) -> None:
        if self._data and not self._broken:
            data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
            if self._wanted:
                self._usage = merge_usage(self._usage, _event_usage(data))
            self.events += data.strip() != b"[DONE]"
        self._data, self._data_size, self._broken, self._wanted = [], 0, False, False


_BOM = b"\xef\xbb\xbf"
# Bytes that can hold counts ``usage_of`` reads: "usage", "usageMetadata" (Gemini) or "meta"
# (Cohere v1) followed by an object, or Ollama's eval counts. ``"usage": null`` (OpenAI's
# chunks before the last one) is not a hint.
_USAGE_HINT = re.compile(rb'"(?:usage|usageMetadata|meta)"\s*:\s*\{|eval_count"')
_MODEL_NAMED = re.compile(rb'"(?:model|modelVersion)"\s*:\s*"((?:[^"\\]|\\.)*)"')


def worth_parsing(known: Usage, data: bytes | bytearray) -> bool:
    """Whether the JSON in *data* may change the usage read so far (*known*): it holds a
    usage object, or names a model other than the known one (any model, while none is).

    This runs for every event of every stream. Substring counts (C speed) settle the usual
    event first: no usage key but OpenAI's ``"usage":null``, and the model named only in the
    known model's compact spelling. Anything else goes to the regular expressions, which
    give the same answer for those events.
    """
    if known.model is None or usage_hinted(data):
        return True
    named = data.count(b'"model')
    if not named:
        return False
    plain, version = compact_namings(known.model)
    if named == data.count(plain) + data.count(version):
        return False  # every "model... key names the known model
    model = _json_spelling(known.model)
    return any(name != model for name in _MODEL_NAMED.findall(data))


def usage_hinted(data: bytes | bytearray) -> bool:
    """``_USAGE_HINT.search(data)``, settled by substring counts where they can: each of its
    alternatives holds ``usage``, ``"meta"`` or ``eval_count"``, and ``"usage":null`` (every
    chunk of an OpenAI stream that asked for usage) is none of them."""
    usage = data.count(b"usage")
    if usage and usage != data.count(b'"usage":null'):
        return _USAGE_HINT.search(data) is not None
    if data.find(b'"meta"') != -1 or data.find(b'eval_count"') != -1:  # find: faster than in
        return _USAGE_HINT.search(data) is not None
    return False


@functools.lru_cache(maxsize=64)
def _json_spelling(text: str) -> bytes:
    """*text* as a JSON string's inside (a server's other spelling of it just parses)."""
    return json.dumps(text)[1:-1].encode()


@functools.lru_cache(maxsize=64)
def compact_namings(text: str) -> tuple[bytes, bytes]:
    """``"model":"TEXT"`` and ``"modelVersion":"TEXT"`` as a server writes them compactly."""
    spelling = _json_spelling(text)
    return b'"model":"' + spelling + b'"', b'"modelVersion":"' + spelling + b'"'


def _data_value(line: bytes) -> bytes | None:
    """The value of an SSE ``data`` line (one leading space dropped); None for any other
    field, a comment or an event name. A line ``data`` without a colon is empty data."""
    if line.startswith(b"data:"):
        value = line[5:]
        return value[1:] if value[:1] == b" " else value
    return b"" if line == b"data" else None


def _event_usage(data: bytes) -> Usage:
    if data.strip() == b"[DONE]":
        return Usage()
    return usage_of_json(load_json(data))
