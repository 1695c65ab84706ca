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


@pytest.mark.parametrize("cut", range(len(STREAM) + 1))
def test_usage_chunk_removed_wherever_the_stream_is_cut(cut: int) -> None:
    strip = InjectedUsageFilter()
    out = strip(STREAM[:cut]) + strip(STREAM[cut:]) + strip(b"")
    assert out == EXPECTED
    assert strip.events == 2


def test_byte_by_byte_and_crlf() -> None:
    crlf = STREAM.replace(b"\n", b"\r\n")
    strip = InjectedUsageFilter()
    out = b"".join(strip(crlf[i : i + 1]) for i in range(len(crlf))) + strip(b"")
    assert out == EXPECTED.replace(b"\n", b"\r\n")


def test_complete_events_are_not_held_back() -> None:
    strip = InjectedUsageFilter()
    assert strip(chunk("hi").encode()) == chunk("hi").encode()
    assert strip(b'data: {"cho') == b""  # an incomplete event waits for its end
    assert strip(b'ices": []}\n\n') == b'data: {"choices": []}\n\n'  # no usage: kept


def test_not_sse_is_passed_on_after_the_cap() -> None:
    strip = InjectedUsageFilter()
    blob = b"x" * (1024 * 1024 + 10)
    assert strip(blob) == blob


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
