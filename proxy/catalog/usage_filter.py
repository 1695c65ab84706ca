"""Asking an OpenAI chat completions stream for its token usage without the client noticing.

A chat stream reports usage only when the request says ``stream_options.include_usage``.
This is the one change the gate makes to an allowed request, and only for OpenAI's own chat
completions (``INCLUDE_USAGE_HOSTS``), where the option is documented.
When a client did not ask, the gate adds the option so quotas can count real tokens — and
removes the extra usage-only chunk (``"choices": []``) from what the client receives, so code
that reads ``chunk.choices[0]`` keeps working. The filter holds back at most one incomplete
event; complete events pass at once.

The filter answers each chunk with a list of pieces, never with ``b""`` and never with an
empty piece: mitmproxy writes whatever a stream callable returns as one HTTP/1 chunk, and an
empty chunk is the chunked body's terminator. A read that held only the usage event (or only
part of an event) would otherwise end the body early, and ``data: [DONE]`` would then reach
the client as stray bytes on its keep-alive connection. Bytes are never reordered or lost:
what comes out is what went in, less the usage-only event.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_PENDING = 1024 * 1024
# Where the option is documented: OpenAI's own chat completions. Other OpenAI-compatible
# services may reject a field they do not know, so their requests are never changed.
INCLUDE_USAGE_HOSTS = frozenset({"api.openai.com"})


def add_include_usage(body: Any) -> bytes | None:
    """The request body with ``stream_options.include_usage`` set, or None to leave it."""
    if not isinstance(body, dict) or body.get("stream") is not True:
        return None
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        return None
    if options and options.get("include_usage") is True:
        return None
    return json.dumps(
        {**body, "stream_options": {**(options or {}), "include_usage": True}}
    ).encode()


class InjectedUsageFilter:
    """Callable over response chunks: drops the usage-only event the gate asked for."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self.events = 0  # data events seen, for an estimate when no usage arrives

    @property
    def holding(self) -> bool:
        """Whether part of an event waits for its end."""
        return bool(self._pending)

    def __call__(self, chunk: bytes) -> list[bytes]:
        """The bytes to send on for *chunk* (``b""``: the upstream's body ended)."""
        if not chunk:  # end of the stream: whatever is left goes out as it is
            rest = bytes(self._pending)
            self._pending.clear()
            return [rest] if rest else []
        if not self._pending and _one_line_event(chunk) and not _usage_object(chunk):
            # The usual read: one whole event, not the usage one. It passes as it came.
            self.events += chunk.startswith(b"data:") and not _DONE.match(chunk)
            return [chunk]
        self._pending += chunk
        out = bytearray()
        while (end := _event_end(self._pending)) != -1:
            event = bytes(self._pending[:end])
            del self._pending[:end]
            if not _usage_only(event):
                out += event
                if b"data:" in event and b"[DONE]" not in event:
                    self.events += 1
        if len(self._pending) > MAX_PENDING:  # not SSE after all: stop holding anything back
            out += self._pending
            self._pending.clear()
        return [bytes(out)] if out else []


def _one_line_event(chunk: bytes) -> bool:
    """The usual read of a stream: one event of one line, ended by a blank line (memchr
    finds the first LF at once; CRLF framing and longer reads take the general path)."""
    return chunk.find(b"\n") == len(chunk) - 2 and chunk.endswith(b"\n\n")


def _event_end(buffer: bytes | bytearray) -> int:
    ends = [i + len(sep) for sep in (b"\n\n", b"\r\n\r\n") if (i := buffer.find(sep)) != -1]
    return min(ends) if ends else -1


# The usage-only event carries a usage object; every other chunk of a stream that asked for
# usage carries ``"usage": null``.
_USAGE_OBJECT = re.compile(rb'"usage"\s*:\s*\{')
_DONE = re.compile(rb"data: ?\[DONE\]\r?\n")


def _usage_object(data: bytes) -> bool:
    """``_USAGE_OBJECT.search(data)``; a chunk with no ``"usage"`` key, or only
    ``"usage":null`` ones, is settled by substring counts."""
    keys = data.count(b'"usage"')
    return bool(keys) and keys != data.count(b'"usage":null') and bool(_USAGE_OBJECT.search(data))


def _usage_only(event: bytes) -> bool:
    if not _usage_object(event):
        return False
    data = b"".join(line[5:].strip() for line in event.splitlines() if line.startswith(b"data:"))
    if not data.startswith(b"{") or b'"usage"' not in data:
        return False
    try:
        parsed = json.loads(data)
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("choices") == [] and bool(parsed.get("usage"))
