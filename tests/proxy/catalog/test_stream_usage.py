from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.catalog.shapes import (
    LINE_CAP,
    StreamUsage,
    Usage,
    load_json,
    merge_usage,
    usage_of_json,
)
from proxy.catalog.stream_usage import BodyUsage, JsonValues


def gemini_chunk(text: str, last: bool) -> dict[str, object]:
    chunk: dict[str, object] = {
        "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}],
        "modelVersion": "gemini-2.5-flash",
    }
    if last:
        chunk["usageMetadata"] = {"promptTokenCount": 5, "candidatesTokenCount": 4}
    return chunk


# What generativelanguage.googleapis.com sends for streamGenerateContent without alt=sse:
# one JSON array, pretty-printed, each element written as it is ready.
GEMINI_ARRAY = (
    "[" + ",\r\n".join(json.dumps(gemini_chunk(t, i == 2), indent=2)
                       for i, t in enumerate(['a "{[quoted', " \\ two}", " three]"])) + "]"
).encode()  # fmt: skip
OLLAMA_NDJSON = b"".join(
    json.dumps(line).encode() + b"\n"
    for line in [
        {"model": "llama3.2", "message": {"role": "assistant", "content": "{hi"}, "done": False},
        {"model": "llama3.2", "message": {"role": "assistant", "content": "]"}, "done": False},
        {"model": "llama3.2", "done": True, "prompt_eval_count": 26, "eval_count": 2},
    ]
)
OPENAI_JSON = json.dumps(
    {
        "model": "gpt-4o-mini",
        "choices": [{"message": {"content": 'say "}"\\'}}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7},
    }
).encode()


@pytest.mark.parametrize(
    ("body", "usage", "events"),
    [
        (GEMINI_ARRAY, Usage(5, 4, "gemini-2.5-flash"), 3),
        (OLLAMA_NDJSON, Usage(26, 2, "llama3.2"), 3),
        (OPENAI_JSON, Usage(11, 7, "gpt-4o-mini"), 1),
    ],
    ids=["gemini-array", "ollama-ndjson", "openai-json"],
)
def test_json_streams_cut_anywhere(body: bytes, usage: Usage, events: int) -> None:
    for cut in range(len(body) + 1):
        reader = JsonValues()
        reader.feed(body[:cut])
        reader.feed(body[cut:])
        assert (reader.usage, reader.events) == (usage, events), cut
    reader = JsonValues()
    for i in range(len(body)):
        reader.feed(body[i : i + 1])
    assert (reader.usage, reader.events) == (usage, events)


def test_an_object_counts_as_soon_as_it_closes() -> None:
    reader = JsonValues()
    reader.feed(OLLAMA_NDJSON.rsplit(b"\n", 2)[0])  # the last line not yet complete
    assert reader.usage.tokens_in is None and reader.events == 2
    reader.feed(b"\n" + OLLAMA_NDJSON.rsplit(b"\n", 2)[1] + b"\n")
    assert reader.usage.tokens_in == 26


def test_an_oversized_object_is_salvaged_in_bounded_memory() -> None:
    image = b"A" * (LINE_CAP * 3)
    body = (
        b'{"model": "gpt-image-1", "data": [{"b64_json": "' + image + b'"}], '
        b'"usage": {"input_tokens": 50, "output_tokens": 4160}}'
    )
    reader = JsonValues()
    for i in range(0, len(body), 65536):
        reader.feed(body[i : i + 65536])
        assert len(reader._object) <= LINE_CAP
    assert reader.usage == Usage(50, 4160, "gpt-image-1")


def test_broken_json_reads_as_nothing() -> None:
    reader = JsonValues()
    for piece in (b"[{", b'"a": }', b"]]]", b"{not json}", b"\x00\xff"):
        reader.feed(piece)
    assert reader.usage == Usage()


@pytest.mark.parametrize(
    ("content_type", "body", "usage"),
    [
        ("application/x-ndjson", OLLAMA_NDJSON, Usage(26, 2, "llama3.2")),
        ("application/json; charset=UTF-8", GEMINI_ARRAY, Usage(5, 4, "gemini-2.5-flash")),
        (None, b"\n  " + GEMINI_ARRAY, Usage(5, 4, "gemini-2.5-flash")),
        (
            "application/octet-stream",
            b'data: {"usage": {"prompt_tokens": 3, "completion_tokens": 1}}\n\n',
            Usage(3, 1),
        ),
        (
            "text/event-stream",
            b'event: message-end\ndata: {"delta": {"usage": {"tokens": '
            b'{"input_tokens": 21, "output_tokens": 6}}}}\n\n',
            Usage(21, 6),
        ),
    ],
)
def test_body_usage_tells_the_framing(content_type: str | None, body: bytes, usage: Usage) -> None:
    reader = BodyUsage("openai", content_type)
    for i in range(0, len(body), 7):
        reader.feed(body[i : i + 7])
    assert reader.usage == usage


def test_web_apps_report_nothing() -> None:
    reader = BodyUsage("web", "application/json")
    reader.feed(OPENAI_JSON)
    assert reader.usage == Usage() and reader.events == 0


# --- SSE: parsing only the events that can carry usage finds what parsing all of them does


def _every_event(body: bytes) -> Usage:
    """The reference: every event parsed (what StreamUsage did before it skipped any)."""
    usage = Usage()
    for event in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        data = [line[5:].removeprefix(b" ") for line in event.split(b"\n") if line[:5] == b"data:"]
        if data and b"\n".join(data).strip() != b"[DONE]":
            usage = merge_usage(usage, usage_of_json(load_json(b"\n".join(data))))
    return usage


_EVENT_USAGES = st.sampled_from(
    [None, "absent", {"prompt_tokens": 4}, {"input_tokens": 9, "output_tokens": 2},
     {"completion_tokens": 5}]
)  # fmt: skip


@given(
    events=st.lists(
        st.tuples(_EVENT_USAGES, st.sampled_from([None, "gpt-4o-mini", "gpt-4o"]),
                  st.sampled_from(["usage", "usageMetadata", "meta", "x_groq"]),
                  st.booleans(), st.booleans()),
        min_size=1, max_size=6,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=4),
    crlf=st.booleans(),
)  # fmt: skip
def test_skipping_events_without_usage_loses_nothing(
    events: list[tuple[object, str | None, str, bool, bool]], cuts: list[int], crlf: bool
) -> None:
    body = b""
    for usage, model, key, spaced, split_lines in events:
        event: dict[str, object] = {"choices": [{"delta": {"content": "hi"}}]}
        if model:
            event["model"] = model
        if usage != "absent":
            event[key] = {"usage": usage} if key == "x_groq" else usage
        text = json.dumps(event, separators=(", ", " : ") if spaced else (",", ":"))
        lines = text.replace(", ", ",\n").split("\n") if split_lines else [text]
        body += b"".join(b"data: " + line.encode() + b"\n" for line in lines) + b"\n"
    body += b"data: [DONE]\n\n"
    if crlf:
        body = body.replace(b"\n", b"\r\n")
    reader = StreamUsage("openai")
    at = 0
    for cut in sorted(c % (len(body) + 1) for c in cuts):
        reader.feed(body[at:cut])
        at = max(at, cut)
    reader.feed(body[at:])
    assert reader.usage == _every_event(body)
    assert reader.events == len(events)
