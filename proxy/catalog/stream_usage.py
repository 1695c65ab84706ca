"""Token usage read from any streamed answer as it passes: SSE, NDJSON, a JSON array, chunks.

``BodyUsage`` is what the addon feeds every chunk of an allowed LLM answer (decoded), whatever
its framing: server-sent events go to ``shapes.StreamUsage``; anything that starts like JSON
(Ollama's NDJSON, Gemini's ``streamGenerateContent`` without ``alt=sse`` — one JSON array
written element by element — and plain JSON answers sent in chunks) goes to ``JsonValues``,
which finds each top-level object as it closes, wherever the chunks are cut. Memory is
bounded: an object larger than ``LINE_CAP`` keeps only its head and tail, and its counts are
salvaged from those. Nothing here raises on traffic, and nothing changes the bytes: this
reads a copy.
"""

from __future__ import annotations

import re

from proxy.catalog.shapes import (
    LINE_CAP,
    SALVAGE_KEEP,
    StreamUsage,
    Usage,
    load_json,
    merge_usage,
    salvage_usage,
    usage_of,
    worth_parsing,
)

_STRUCTURE = re.compile(rb'[{}\[\]"]')
_IN_STRING = re.compile(rb'["\\]')
_SPACE = b" \t\r\n\xef\xbb\xbf"  # and a UTF-8 byte order mark


class JsonValues:
    """Incremental reader of JSON objects in a byte stream: NDJSON, ``[{...},{...}]``,
    concatenated objects or a single object. Each top-level object is parsed when it closes;
    brackets and commas between objects are skipped."""

    __slots__ = ("_depth", "_in_string", "_escape", "_object", "_head", "_big", "_usage",
                 "events")  # fmt: skip

    def __init__(self) -> None:
        self._depth = 0  # nesting inside the current top-level object (0: between objects)
        self._in_string = False
        self._escape = False  # the previous chunk ended on a backslash inside a string
        self._object = bytearray()  # the current object (or the tail of an oversized one)
        self._head = b""  # the start of an oversized object
        self._big = False
        self._usage = Usage()
        self.events = 0  # objects seen

    @property
    def usage(self) -> Usage:
        return self._usage

    def feed(self, chunk: bytes) -> None:
        i, n = 0, len(chunk)
        start = 0 if self._depth else -1  # where the current object's bytes begin in chunk
        while i < n:
            if self._in_string:
                i = self._skip_string(chunk, i)
                continue
            found = _STRUCTURE.search(chunk, i)
            if found is None:
                break
            at, i = found.start(), found.end()
            char = chunk[at]
            if char == 0x22:  # '"'
                self._in_string = True
            elif self._depth == 0:
                if char == 0x7B:  # '{' opens a top-level object; '[' and ']' frame them
                    self._depth, start = 1, at
            elif char in b"{[":
                self._depth += 1
            else:
                self._depth -= 1
                if self._depth == 0:
                    self._add(chunk[start:i])
                    self._close()
                    start = -1
        if self._depth and start != -1:
            self._add(chunk[start:])

    def _skip_string(self, chunk: bytes, i: int) -> int:
        if self._escape:
            self._escape = False
            return i + 1
        found = _IN_STRING.search(chunk, i)
        if found is None:
            return len(chunk)
        if chunk[found.start()] == 0x5C:  # a backslash escapes the next byte
            if found.end() >= len(chunk):
                self._escape = True
            return found.end() + 1
        self._in_string = False
        return found.end()

    def _add(self, piece: bytes) -> None:
        if not self._big and len(self._object) + len(piece) <= LINE_CAP:
            self._object += piece
            return
        if not self._big:
            self._big = True
            self._head = (bytes(self._object) + piece[:SALVAGE_KEEP])[:SALVAGE_KEEP]
        tail = bytes(self._object[-SALVAGE_KEEP:]) + piece[-SALVAGE_KEEP:]
        self._object = bytearray(tail[-SALVAGE_KEEP:])

    def _close(self) -> None:
        if self._big:
            found = salvage_usage(self._head, bytes(self._object))
        elif worth_parsing(self._usage, self._object):
            found = usage_of(load_json(bytes(self._object)))
        else:
            found = Usage()  # the same model again, and no counts: nothing to parse for
        self._usage = merge_usage(self._usage, found)
        self.events += 1
        self._object, self._head, self._big = bytearray(), b"", False


class BodyUsage:
    """Usage of one answer fed chunk by chunk; the framing is told by the content type, or
    by the first bytes when the type says neither SSE nor JSON."""

    __slots__ = ("_api", "_media", "_reader")

    def __init__(self, api: str, content_type: str | None) -> None:
        self._api = api
        self._media = (content_type or "").partition(";")[0].strip().lower()
        self._reader: StreamUsage | JsonValues | None = None
        if api == "web":
            self._reader = StreamUsage(api)  # reads nothing: web apps report no usage
        elif self._media == "text/event-stream":
            self._reader = StreamUsage(api)
        elif self._media.endswith(("json", "ndjson", "jsonl", "json-seq")):
            self._reader = JsonValues()

    def feed(self, chunk: bytes) -> None:
        if self._reader is None:
            start = chunk.lstrip(_SPACE)
            if not start:
                return  # nothing telling yet (whitespace is no usage either way)
            self._reader = JsonValues() if start[:1] in (b"{", b"[") else StreamUsage(self._api)
        self._reader.feed(chunk)

    @property
    def usage(self) -> Usage:
        return self._reader.usage if self._reader is not None else Usage()

    @property
    def sse(self) -> StreamUsage | None:
        """The SSE reader, once the answer is known to be server-sent events."""
        return self._reader if isinstance(self._reader, StreamUsage) else None

    @property
    def events(self) -> int:
        """Events (SSE) or objects (JSON) seen: one token each for an estimate."""
        return self._reader.events if self._reader is not None else 0
