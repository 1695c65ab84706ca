"""Streams through the real gate: never cut short, chunk by chunk, counted, forwarded as sent."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import PARENT, Gate
from tests.support.clients import RawHttps
from tests.support.fake_llm import CHAT_STREAM_CHUNKS, FakeLLM

pytestmark = pytest.mark.e2e
CHAT = [{"role": "user", "content": "What is a prime number?"}]
CALLS = 4


def without_usage_event(sent: bytes) -> bytes:
    """The fake's stream less the usage-only event the gate asked for and strips again."""
    events = [e + b"\n\n" for e in sent.split(b"\n\n") if e]
    return b"".join(e for e in events if b'"choices":[]' not in e)


def last_streamed(fake: FakeLLM, path: str) -> bytes:
    requests = fake.snapshot()
    index = max(i for i, r in enumerate(requests) if r.path == path)
    with_body = fake.streamed.get(index)
    assert with_body is not None, "the fake did not finish streaming"
    return with_body


def test_streams_in_a_row_on_one_keep_alive_connection_raw(gate: Gate, fake_llm: FakeLLM) -> None:
    """The usage event arrives in a read of its own (the fake writes each event apart): the
    body must still end with ``[DONE]`` and the connection must carry the next request."""
    conn = RawHttps(("127.0.0.1", gate.proc.port), "api.openai.com", gate.ca, PARENT)
    try:
        for call in range(CALLS):
            body = json.dumps({"model": "gpt-4o-mini", "messages": CHAT, "stream": True})
            status, head, data, chunks = conn.request(
                "POST",
                "/v1/chat/completions",
                body.encode(),
                {"content-type": "application/json", "x-fake-delay-ms": "20"},
            )
            assert status == 200, (call, data)
            assert head["content-type"].startswith("text/event-stream")
            assert data.endswith(b"data: [DONE]\n\n"), (call, data[-80:])
            assert all(chunks), "an empty chunk would have ended the body"
            assert data == without_usage_event(last_streamed(fake_llm, "/v1/chat/completions"))
            assert len(chunks) >= len(CHAT_STREAM_CHUNKS), "events arrived coalesced"
    finally:
        conn.close()
    rows = gate.rows("device = 'mom-laptop' AND usage_source = 'added'", expect=CALLS)
    assert all((r["tokens_in"], r["tokens_out"]) == (11, 5) for r in rows[-CALLS:])


def test_streams_in_a_row_on_one_keep_alive_connection_openai_sdk(
    gate: Gate, fake_llm: FakeLLM
) -> None:
    """Odd calls read the SDK's raw bytes (``with_streaming_response``), even ones its parsed
    chunks; all on the SDK's one pooled connection."""
    client = gate.openai(PARENT)
    for call in range(CALLS):
        if call % 2:
            with client.chat.completions.with_streaming_response.create(
                model="gpt-4.1-mini", messages=CHAT, stream=True
            ) as answer:
                data = b"".join(answer.iter_bytes())
            assert data.endswith(b"data: [DONE]\n\n"), data[-80:]
            assert data == without_usage_event(last_streamed(fake_llm, "/v1/chat/completions"))
        else:
            stream = client.chat.completions.create(
                model="gpt-4.1-mini", messages=CHAT, stream=True
            )
            texts = [c.choices[0].delta.content for c in stream]
            assert "".join(t or "" for t in texts) == "".join(CHAT_STREAM_CHUNKS)
    rows = gate.rows("model = 'gpt-4.1-mini'", expect=CALLS)
    assert len(rows) == CALLS and all(r["status"] == 200 for r in rows)
    assert all((r["tokens_in"], r["tokens_out"]) == (11, 5) for r in rows)
