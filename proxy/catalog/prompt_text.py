"""Prompt text: every string of a request body that the model reads.

Not a list of the fields each API documents (a new field, or one the gate did not know,
would hide a prompt: tool descriptions, tool results, a message's ``name``, JSON-schema
descriptions, predicted outputs, ``suffix``, document blocks ...), but a walk over every
string value of the body, minus a short list of keys whose strings the model does not read
as text: ids, roles, the model, types, media types, links, and base64 data that is not text.

- Where the keys themselves are written for the model (the properties of a JSON schema, a
  tool call's arguments, a function's response), keys and every value below are text.
- Base64 data is decoded when it is text (a ``text/plain`` document, Gemini ``inlineData``,
  a ``data:text/...`` URL); images, audio and PDFs are data the gate cannot read.

Pure: never raises, walks iteratively (no recursion limit), keeps document order.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator

JsonObject = dict[str, object]

# strings under these keys are not read by the model as prompt text
NOT_TEXT = frozenset(
    {
        "model", "role", "type", "object", "id", "ids", "user", "metadata", "modelVersion",
        "mime_type", "mimeType", "media_type", "mediaType", "content_type", "encoding_format",
        "url", "image_url", "file_url", "fileUri", "file_uri", "uri", "detail", "voice",
        "service_tier", "safety_identifier", "prompt_cache_key", "cache_control",
        "stream_options", "responseMimeType", "response_mime_type", "status", "format",
        "signature", "anthropic_version", "input_type", "action", "asset_pointer", "timezone",
        "locale",
    }
)  # fmt: skip
# nothing under these keys is read as text (Ollama's "images" are base64 pictures)
SKIPPED_TREES = frozenset({"metadata", "cache_control", "images"})
# under these keys the keys are text too (written for the model, or by it)
FREE_FORM = frozenset(
    {
        "properties", "patternProperties", "$defs", "definitions", "args", "arguments",
        "input", "response", "output", "outputs", "result", "structuredContent",
    }
)  # fmt: skip
BASE64_KEYS = frozenset({"data", "b64_json", "bytes", "file_data", "base64"})
_MIME_KEYS = ("media_type", "mime_type", "mimeType", "mediaType", "content_type")
_TEXT_MEDIA = ("text/", "application/json", "application/xml", "application/x-ndjson")
# bytes that are no part of text (controls other than tab, newline, carriage return)
_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 13)) + b"\x7f"
_NOT_CONTROL = bytes(b for b in range(256) if b not in _CONTROL)


def prompt_strings(body: object) -> list[str]:
    """The non-empty texts of a request body the model reads, in document order."""
    return [text for text in _walk(body) if text]


def _walk(body: object) -> Iterator[str]:
    stack: list[tuple[object, bool]] = [(body, False)]
    while stack:
        value, free = stack.pop()
        if isinstance(value, str):
            yield value
        elif isinstance(value, list):
            stack.extend((item, free) for item in reversed(value))
        elif isinstance(value, dict):
            stack.extend(reversed(list(_members(value, free))))


def _members(obj: JsonObject, free: bool) -> Iterator[tuple[object, bool]]:
    for key, value in obj.items():
        if free:
            yield key, True
            yield value, True
        elif isinstance(value, str):
            text = _string(obj, key, value)
            if text is not None:
                yield text, False
        elif key in SKIPPED_TREES:
            continue
        else:
            yield value, key in FREE_FORM and isinstance(value, dict)


def _string(obj: JsonObject, key: str, value: str) -> str | None:
    """The text one string member gives the model, or None."""
    if value.startswith("data:"):
        return _data_url(value)
    if key in NOT_TEXT or key.endswith(("_id", "Id", "_ids")):
        return None
    if key in BASE64_KEYS:
        return _base64_member(obj, value)
    return value


def _data_url(url: str) -> str | None:
    """The text of a ``data:`` URL with a text media type; None for anything else."""
    head, comma, payload = url.partition(",")
    if not comma:
        return None
    media = head[5:].partition(";")[0].strip().lower()
    if not _is_text_media(media or "text/plain"):
        return None
    if head.endswith(";base64"):
        return _decoded_text(payload)
    return payload


def _base64_member(obj: JsonObject, value: str) -> str | None:
    """``data``-like members: the text they carry, or None for data that is not text."""
    if obj.get("type") == "text":  # Anthropic's plain-text document source: the text itself
        return value
    media = next((obj[k] for k in _MIME_KEYS if isinstance(obj.get(k), str)), None)
    if isinstance(media, str) and not _is_text_media(media.strip().lower()):
        return None  # an image, audio, a PDF: not text the gate can read
    if obj.get("type") == "base64":  # declared base64: its decoded text, or nothing
        return _decoded_text(value)
    raw = _decoded(value)
    if raw is None:  # not base64: read as written
        return value
    return _text_of(raw)  # None: bytes that are not text, data the gate cannot read


def _is_text_media(media: str) -> bool:
    return media.startswith(_TEXT_MEDIA) or media.endswith(("+json", "+xml"))


def _decoded_text(payload: str) -> str | None:
    raw = _decoded(payload)
    return None if raw is None else _text_of(raw)


def _text_of(raw: bytes) -> str | None:
    """Decoded bytes as text when they are UTF-8 without control characters."""
    if raw.translate(None, _NOT_CONTROL):
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _decoded(payload: str) -> bytes | None:
    try:
        return base64.b64decode(payload.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
