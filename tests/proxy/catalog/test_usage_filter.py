from __future__ import annotations

import json

import pytest

from proxy.catalog.usage_filter import InjectedUsageFilter, add_include_usage


def chunk(content: str) -> str:
    return (
        "data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": content}}]}) + "\n\n"
    )


USAGE = (
    "data: "
    + json.dumps({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}})
    + "\n\n"
)
STREAM = (chunk("one") + chunk(" two") + USAGE + "data: [DONE]\n\n").encode()
EXPECTED = (chunk("one") + chunk(" two") + "data: [DONE]\n\n").encode()


def feed(strip: InjectedUsageFilter, pieces: list[bytes]) -> bytes:
    """Feed *pieces* then the end of the stream; every answer must be a list of non-empty
    pieces (an empty one would end mitmproxy's chunked body early)."""
    out = []
    for piece in [*pieces, b""]:
        answer = strip(piece)
        assert isinstance(answer, list), "never bytes: b'' would be sent as an empty chunk"
        assert all(isinstance(p, bytes) and p for p in answer), answer
        out += answer
    return b"".join(out)


@pytest.mark.parametrize("cut", range(len(STREAM) + 1))
def test_usage_chunk_removed_wherever_the_stream_is_cut(cut: int) -> None:
    strip = InjectedUsageFilter()
    assert feed(strip, [STREAM[:cut], STREAM[cut:]]) == EXPECTED
    assert strip.events == 2


@pytest.mark.parametrize("first", range(0, len(STREAM), 7))
@pytest.mark.parametrize("second", [1, 13, 40])
def test_cut_in_three_anywhere(first: int, second: int) -> None:
    pieces = [STREAM[:first], STREAM[first : first + second], STREAM[first + second :]]
    assert feed(InjectedUsageFilter(), pieces) == EXPECTED


def test_byte_by_byte_and_crlf() -> None:
    crlf = STREAM.replace(b"\n", b"\r\n")
    pieces = [crlf[i : i + 1] for i in range(len(crlf))]
    assert feed(InjectedUsageFilter(), pieces) == EXPECTED.replace(b"\n", b"\r\n")


def test_usage_event_alone_in_its_read_gives_no_piece() -> None:
    strip = InjectedUsageFilter()
    before, done = chunk("one").encode() + chunk(" two").encode(), b"data: [DONE]\n\n"
    assert strip(before) == [before]
    assert strip(USAGE.encode()) == []  # nothing to send: not an empty chunk
    assert strip(done) == [done]
    assert strip(b"") == []


def test_complete_events_are_not_held_back() -> None:
    strip = InjectedUsageFilter()
    assert strip(chunk("hi").encode()) == [chunk("hi").encode()]
    assert strip(b'data: {"cho') == []  # an incomplete event waits for its end
    assert strip(b'ices": []}\n\n') == [b'data: {"choices": []}\n\n']  # no usage: kept


def test_an_unfinished_event_goes_out_when_the_stream_ends() -> None:
    strip = InjectedUsageFilter()
    assert feed(strip, [b"data: [DONE]\n\n", b"data: {}"]) == b"data: [DONE]\n\ndata: {}"


def test_not_sse_is_passed_on_after_the_cap() -> None:
    strip = InjectedUsageFilter()
    blob = b"x" * (1024 * 1024 + 10)
    assert strip(blob) == [blob]


@pytest.mark.parametrize(
    ("body", "changed"),
    [
        ({"model": "m", "stream": True}, True),
        ({"model": "m", "stream": True, "stream_options": {"include_usage": False}}, True),
        ({"model": "m", "stream": True, "stream_options": {"include_usage": True}}, False),
        ({"model": "m", "stream": False}, False),
        ({"model": "m", "stream": True, "stream_options": "odd"}, False),
        (["not", "a", "dict"], False),
    ],
)
def test_add_include_usage(body: object, changed: bool) -> None:
    result = add_include_usage(body)
    assert (result is not None) is changed
    if result:
        assert json.loads(result)["stream_options"]["include_usage"] is True


def openai_chunk(content: str) -> bytes:
    """A chat chunk as OpenAI writes it once usage is asked for: ``"usage": null``."""
    body = {"id": "c1", "model": "gpt-4o-mini", "choices": [{"delta": {"content": content}}]}
    return b"data: " + json.dumps({**body, "usage": None}).encode() + b"\n\n"


OPENAI_USAGE = b'data: {"id":"c1","choices":[],"usage": {"prompt_tokens":3}}\n\n'


def test_null_usage_chunks_pass_one_read_each_as_they_came() -> None:
    strip = InjectedUsageFilter()
    reads = [openai_chunk("one"), openai_chunk(" two"), OPENAI_USAGE, b"data: [DONE]\n\n"]
    answers = [strip(read) for read in reads]
    assert answers == [[reads[0]], [reads[1]], [], [reads[3]]]
    assert all(a[0] is r for a, r in zip(answers, reads, strict=False) if a), "not copied"
    assert strip.events == 2


@pytest.mark.parametrize("cut", range(0, 200, 3))
def test_null_usage_stream_cut_anywhere(cut: int) -> None:
    stream = openai_chunk("one") + openai_chunk(" two") + OPENAI_USAGE + b"data: [DONE]\n\n"
    expected = openai_chunk("one") + openai_chunk(" two") + b"data: [DONE]\n\n"
    assert feed(InjectedUsageFilter(), [stream[:cut], stream[cut:]]) == expected
