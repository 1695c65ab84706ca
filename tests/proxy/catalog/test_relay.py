"""The stream relay: its fast path gives what the usage reader and the filter give."""

from __future__ import annotations

import json
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.catalog.relay import make_relay
from proxy.catalog.stream_usage import BodyUsage
from proxy.catalog.usage_filter import InjectedUsageFilter
from proxy.decoding import chunk_decoder

SSE = "text/event-stream"


def event(payload: object, crlf: bool = False, space: bool = True) -> bytes:
    end = b"\r\n\r\n" if crlf else b"\n\n"
    body = (
        payload
        if isinstance(payload, bytes)
        else json.dumps(payload, separators=(",", ":")).encode()
    )
    return (b"data: " if space else b"data:") + body + end


def openai(content: str, model: str = "gpt-4o-mini", usage_null: bool = False) -> dict[str, object]:
    chunk: dict[str, object] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}],
    }
    if usage_null:
        chunk["usage"] = None
    return chunk


USAGE_ONLY = {
    "id": "chatcmpl-1",
    "model": "gpt-4o-mini",
    "choices": [],
    "usage": {"prompt_tokens": 9, "completion_tokens": 50, "total_tokens": 59},
}


def relay_for(usage, encoding, strip, on_error):  # type: ignore[no-untyped-def]
    """The relay as the addon makes it for a Content-Encoding."""
    plain = (encoding or "identity") == "identity"
    return make_relay(usage, chunk_decoder(encoding), plain, strip, on_error)


def reference(chunks: list[bytes], strip: bool, encoding: str | None = None) -> tuple:
    """What the relay did before its fast path: every chunk through reader and filter."""
    usage = BodyUsage("openai", SSE)
    filt = InjectedUsageFilter() if strip else None
    decode = chunk_decoder(encoding)
    out: list[bytes] = []
    for chunk in [*chunks, b""]:
        if chunk and decode is not None:
            usage.feed(decode(chunk))
        out += filt(chunk) if filt is not None else ([chunk] if chunk else [])
    return b"".join(out), usage.usage, usage.events, filt.events if filt else None


def relayed(chunks: list[bytes], strip: bool, encoding: str | None = None) -> tuple:
    usage = BodyUsage("openai", SSE)
    filt = InjectedUsageFilter() if strip else None
    errors: list[int] = []
    relay = relay_for(usage, encoding, filt, lambda: errors.append(1))
    out: list[bytes] = []
    for chunk in [*chunks, b""]:
        pieces = relay(chunk)
        pieces = [pieces] if isinstance(pieces, bytes) else list(pieces)
        assert all(pieces), "an empty piece would end the client's body"
        out += pieces
    assert not errors
    return b"".join(out), usage.usage, usage.events, filt.events if filt else None


def openai_stream(n: int = 50, usage_null: bool = False, with_usage: bool = True) -> list[bytes]:
    chunks = [event(openai(f"tok{i} ", usage_null=usage_null)) for i in range(n)]
    if with_usage:
        chunks.append(event(USAGE_ONLY))
    return [*chunks, b"data: [DONE]\n\n"]


def test_usual_openai_stream_same_bytes_usage_and_counts() -> None:
    for strip in (False, True):
        for usage_null in (False, True):
            chunks = openai_stream(usage_null=usage_null)
            assert relayed(chunks, strip) == reference(chunks, strip)
    body, usage, events, _ = relayed(openai_stream(), strip=True)
    assert b'"choices":[]' not in body and body.endswith(b"data: [DONE]\n\n")
    assert (usage.model, usage.tokens_in, usage.tokens_out) == ("gpt-4o-mini", 9, 50)
    assert events == 51


def test_the_usual_chunk_skips_the_reader() -> None:
    """The point of the fast path: after the first event, a plain chunk is not read again."""
    fed: list[bytes] = []

    class Watched(BodyUsage):
        def feed(self, chunk: bytes) -> None:
            fed.append(chunk)
            super().feed(chunk)

    usage = Watched("openai", SSE)
    relay = relay_for(usage, None, InjectedUsageFilter(), lambda: None)
    chunks = openai_stream(usage_null=True)
    for chunk in chunks:
        relay(chunk)
    assert fed == [chunks[0], chunks[-2], chunks[-1]]  # the first, the usage event, [DONE]
    assert usage.usage.tokens_out == 50 and usage.events == 51


def test_chunks_that_may_change_the_reading_go_the_long_way() -> None:
    """Another model, a usage object, other providers' usage keys, escapes, CRLF, comments,
    several events in one read, [DONE] with odd spacing: each agrees with the reference."""
    odd = [
        event(openai("a")),
        event(openai("b", model="gpt-4o")),  # another model
        event(openai('say "model":"x"')),  # a quoted key inside the text
        event({"model": "gpt-4o-mini", "usageMetadata": {"promptTokenCount": 3}}),
        event({"type": "message_delta", "usage": {"output_tokens": 7}}),
        event({"meta": {"billed_units": {"input_tokens": 2, "output_tokens": 4}}}),
        event({"model": "gpt-4o-mini", "eval_count": 5, "prompt_eval_count": 1}),
        event({"modelVersion": "gemini-2.0-flash", "candidates": []}),
        event({"model": "gpt-4o-mini"}.__repr__().encode()),  # not JSON at all
        event(openai("c"), crlf=True),
        b": keep-alive comment\n\n",
        event(openai("d")) + event(openai("e")),
        event(openai("f"), space=False),
        b"data:  [DONE] \n\n",
        event(openai("g", usage_null=True)),
        event(USAGE_ONLY),
        b"data: [DONE]\n\n",
    ]
    for strip in (False, True):
        assert relayed(odd, strip) == reference(odd, strip)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                event(openai("x")),
                event(openai("y", usage_null=True)),
                event(openai("z", model="o3")),
                event(USAGE_ONLY),
                event({"type": "ping"}),
                event({"usage": {"prompt_tokens": 1, "completion_tokens": 2}}),
                event(openai("w"), crlf=True),
                b'event: message\ndata: {"model":"gpt-4o-mini"}\n\n',
                b"data: [DONE]\n\n",
                b": comment\n\n",
            ]
        ),
        max_size=12,
    ),
    st.lists(st.integers(min_value=0, max_value=4000), max_size=8),
    st.booleans(),
)
def test_any_stream_cut_anywhere(events: list[bytes], cuts: list[int], strip: bool) -> None:
    whole = b"".join(events)
    points = sorted({c % (len(whole) + 1) for c in cuts} | {0, len(whole)})
    chunks = [whole[a:b] for a, b in zip(points, points[1:], strict=False) if b > a]
    by_event = [e for e in events if e]
    assert relayed(chunks, strip) == reference(chunks, strip)
    assert relayed(by_event, strip) == reference(by_event, strip)


def test_compressed_answer_is_read_the_long_way_and_passed_as_sent() -> None:
    raw = b"".join(openai_stream(5))
    packer = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
    packed = packer.compress(raw) + packer.flush()
    chunks = [packed[i : i + 40] for i in range(0, len(packed), 40)]
    got = relayed(chunks, strip=False, encoding="gzip")
    assert got == reference(chunks, strip=False, encoding="gzip")
    assert got[0] == packed and got[1].tokens_out == 50


def test_a_chunk_that_fails_to_decode_stops_the_count_not_the_stream() -> None:
    usage = BodyUsage("openai", SSE)
    errors: list[int] = []
    relay = relay_for(usage, "gzip", None, lambda: errors.append(1))
    assert relay(b"not gzip at all") in (b"not gzip at all", [b"not gzip at all"])
    assert relay(event(openai("a"))) in (event(openai("a")), [event(openai("a"))])
    assert errors == [1]
