"""Streams through the real gate: never cut short, chunk by chunk whatever the framing,
counted for quotas, forwarded as sent; the official SDKs of each family as clients."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterable, Iterator
from typing import Any

import ollama
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from tests.e2e.conftest import (
    KID,
    OLLAMA_PROVIDER,
    PARENT,
    Gate,
    household,
    proxied_transport,
    start_gate,
)
from tests.support.clients import RawHttps
from tests.support.fake_llm import (
    ANTHROPIC_STREAM_TEXT,
    CHAT_STREAM_CHUNKS,
    GEMINI_STREAM_TEXT,
    OLLAMA_STREAM_TEXT,
    FakeLLM,
)
from tests.support.pki import Pki
from tests.support.proxyproc import ssl_context

pytestmark = pytest.mark.e2e
CHAT = [{"role": "user", "content": "What is a prime number?"}]
CALLS = 4
DELAY_MS = 250  # between the fake's events: a buffered answer arrives all at once
SPREAD = 0.5 * 2 * DELAY_MS / 1000  # at least this from the first to the last (buffered: ~0)


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory, pki: Pki, fake_llm: FakeLLM) -> Iterator[Gate]:
    tmp = tmp_path_factory.mktemp("streams")
    proc = start_gate(tmp, household(extra=OLLAMA_PROVIDER), pki, fake_llm)
    try:
        yield Gate(proc, tmp / "state", tmp / "household.yaml", pki)
    finally:
        proc.stop()


def arrivals(items: Iterable[Any]) -> tuple[list[Any], list[float]]:
    """The items of a stream and when each arrived."""
    got, times = [], []
    for item in items:
        got.append(item)
        times.append(time.monotonic())
    return got, times


def assert_spread(times: list[float], count: int = 3) -> None:
    assert len(times) >= count, times
    assert times[-1] - times[0] >= SPREAD, f"chunks arrived together: {times}"


def delayed() -> dict[str, str]:
    return {"x-fake-delay-ms": str(DELAY_MS)}


def ollama_client(gate: Gate, source: str, **headers: str) -> ollama.Client:
    transport = proxied_transport(gate.url, source, gate.ca)
    return ollama.Client(host="https://ollama.lan", transport=transport, headers=headers)


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


# --- every SDK, streamed chunk by chunk and counted -------------------------------------------


def test_openai_sdk_stream_spread_and_tokens(gate: Gate) -> None:
    stream = gate.openai(PARENT).chat.completions.create(
        model="gpt-4o-2024-spread", messages=CHAT, stream=True, extra_headers=delayed()
    )
    chunks, times = arrivals(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "".join(CHAT_STREAM_CHUNKS)
    assert_spread(times)
    [row] = gate.rows("model = 'gpt-4o-2024-spread'")
    assert (row["tokens_in"], row["tokens_out"], row["usage_source"]) == (11, 5, "added")


def test_anthropic_sdk_stream_spread_and_tokens(gate: Gate) -> None:
    client = gate.anthropic(PARENT)
    with client.messages.stream(
        model="claude-spread", max_tokens=20, messages=CHAT, extra_headers=delayed()
    ) as stream:
        texts, times = arrivals(stream.text_stream)
    assert "".join(texts) == ANTHROPIC_STREAM_TEXT
    assert_spread(times)
    [row] = gate.rows("model = 'claude-spread'")
    assert (row["tokens_in"], row["tokens_out"], row["usage_source"]) == (17, 8, "reported")


def genai_client(gate: Gate, source: str, **headers: str) -> genai.Client:
    return genai.Client(
        api_key="AIza-test-secret",
        http_options=genai_types.HttpOptions(
            base_url="https://generativelanguage.googleapis.com",
            headers=headers,
            httpx_client=gate.http(source),
        ),
    )


def test_google_genai_sdk_stream_spread_and_tokens(gate: Gate) -> None:
    client = genai_client(gate, PARENT, **delayed())
    chunks, times = arrivals(
        client.models.generate_content_stream(model="gemini-spread", contents="Hi there")
    )
    assert "".join(c.text or "" for c in chunks) == GEMINI_STREAM_TEXT
    assert_spread(times)
    [row] = gate.rows("model = 'gemini-spread'")
    assert (row["tokens_in"], row["tokens_out"], row["usage_source"]) == (5, 4, "reported")


def test_google_genai_block_is_a_client_error_with_the_reason(gate: Gate) -> None:
    with pytest.raises(genai_errors.ClientError) as caught:
        list(genai_client(gate, KID).models.generate_content_stream(model="g", contents="Hi"))
    assert caught.value.code == 403 and "Bedtime, Alice." in str(caught.value.message)


def test_ollama_sdk_stream_spread_and_tokens(gate: Gate) -> None:
    client = ollama_client(gate, PARENT, **delayed())
    parts, times = arrivals(
        client.chat(model="llama-spread", messages=CHAT, stream=True)  # NDJSON
    )
    assert "".join(p.message.content or "" for p in parts) == OLLAMA_STREAM_TEXT
    assert parts[-1].done and parts[-1].eval_count == 3
    assert_spread(times)
    [row] = gate.rows("model = 'llama-spread'")
    assert (row["endpoint"], row["tokens_in"], row["tokens_out"]) == ("chat", 26, 3)
    assert row["usage_source"] == "reported"


def test_ollama_sdk_every_native_endpoint_is_counted(gate: Gate) -> None:
    client = ollama_client(gate, PARENT)
    assert client.chat(model="llama-once", messages=CHAT, stream=False).eval_count == 3
    assert "".join(g.response for g in client.generate(model="llama-gen", prompt="Hi", stream=True))
    assert client.embed(model="llama-embed", input=["a", "b"]).embeddings
    assert client.embeddings(model="llama-embeddings", prompt="c").embedding
    rows = {r["model"]: r for r in gate.rows("model LIKE 'llama-%'", expect=5)}
    assert (rows["llama-once"]["tokens_in"], rows["llama-once"]["tokens_out"]) == (26, 3)
    assert (rows["llama-gen"]["endpoint"], rows["llama-gen"]["tokens_out"]) == ("completions", 3)
    assert (rows["llama-embed"]["endpoint"], rows["llama-embed"]["tokens_in"]) == ("embeddings", 4)
    assert rows["llama-embeddings"]["usage_source"] == "estimated"  # it reports no counts


def test_ollama_block_is_a_response_error_with_the_reason_as_text(gate: Gate) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        ollama_client(gate, KID).chat(model="llama-bed", messages=CHAT)
    assert caught.value.status_code == 403
    assert isinstance(caught.value.error, str) and "Bedtime, Alice." in caught.value.error


def test_gemini_json_array_stream_without_alt_sse_arrives_chunk_by_chunk(gate: Gate) -> None:
    """streamGenerateContent without ``alt=sse``: one JSON array written element by element."""
    url = (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-array:streamGenerateContent"
    )
    with gate.http(PARENT) as client:
        with client.stream("POST", url, json={"contents": [{"parts": [{"text": "Hi"}]}]},
                           headers=delayed()) as answer:  # fmt: skip
            pieces, times = arrivals(answer.iter_raw())
    assert answer.headers["content-type"].startswith("application/json")
    assert [c["candidates"][0]["content"]["parts"][0]["text"]
            for c in json.loads(b"".join(pieces))] == ["one", " two", " three"]  # fmt: skip
    assert_spread(times)
    [row] = gate.rows("model = 'gemini-array'")
    assert (row["tokens_in"], row["tokens_out"]) == (5, 4)


# --- forwarded byte for byte ------------------------------------------------------------------

# Odd spacing, key order and escapes a re-serialisation would change; each family's own path.
AS_SENT = [
    ("api.openai.com", "/v1/responses",
     b'{ "model":"gpt-as-sent-responses",  "input": "caf\\u00e9 \xc3\xa9", "stream": true }'),
    ("api.openai.com", "/v1/chat/completions",
     b'{"stream": true, "model": "gpt-as-sent-usage", "messages": [{"role": "user", '
     b'"content": "x"}], "stream_options": {"include_usage": true}}'),
    ("api.openai.com", "/v1/chat/completions",
     b'{"model":"gpt-as-sent-plain","messages":[{"role":"user","content":"\xc3\xa9"}]}'),
    ("api.mistral.ai", "/v1/chat/completions",
     b'{"model": "mistral-as-sent", "stream": true,\n "messages": [{"role": "user", '
     b'"content": "x"}]}'),
    ("api.groq.com", "/openai/v1/chat/completions",
     b'{"model": "groq-as-sent", "stream": true, "messages": []}'),
    ("api.anthropic.com", "/v1/messages",
     b'{"model": "claude-as-sent", "max_tokens": 5, "stream": true,  "messages": []}'),
    ("generativelanguage.googleapis.com",
     "/v1beta/models/gemini-as-sent:streamGenerateContent?alt=sse",
     b'{"contents": [ {"parts": [{"text": "x"}]} ]}'),
    ("api.cohere.com", "/v2/chat",
     b'{"model": "cohere-as-sent", "stream": true, "messages": [{"role": "user", '
     b'"content": "x"}]}'),
    ("ollama.lan", "/api/chat", b'{"model": "llama-as-sent", "messages": []}'),
]  # fmt: skip


@pytest.mark.parametrize(
    ("host", "path", "body"), AS_SENT, ids=[a[1] + " " + a[0] for a in AS_SENT]
)
def test_allowed_request_reaches_the_upstream_byte_for_byte(
    gate: Gate, fake_llm: FakeLLM, host: str, path: str, body: bytes
) -> None:
    with gate.http(PARENT) as client:
        answer = client.post(f"https://{host}{path}", content=body,
                             headers={"content-type": "application/json"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    sent = [r for r in fake_llm.snapshot() if r.path == path][-1]
    assert sent.body == body, "the gate changed an allowed request"
    assert "stream_options" not in json.loads(sent.body) or b"include_usage" in body


def test_compatible_stream_without_usage_is_estimated_not_changed(
    gate: Gate, fake_llm: FakeLLM
) -> None:
    client = openai.OpenAI(api_key="sk-test", base_url="https://api.mistral.ai/v1",
                           max_retries=0, http_client=gate.http(PARENT))  # fmt: skip
    stream = client.chat.completions.create(model="mistral-estimate", messages=CHAT, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream) == "".join(CHAT_STREAM_CHUNKS)
    assert "stream_options" not in fake_llm.snapshot()[-1].json()
    [row] = gate.rows("model = 'mistral-estimate'")
    assert (row["usage_source"], row["tokens_out"]) == ("estimated", len(CHAT_STREAM_CHUNKS))
    assert row["tokens_in"] == -(-len(CHAT[0]["content"]) // 4)


def test_openai_chat_stream_gets_only_the_documented_include_usage(
    gate: Gate, fake_llm: FakeLLM
) -> None:
    body = {"model": "gpt-documented", "messages": CHAT, "stream": True, "n": 1}
    with gate.http(PARENT) as client:
        client.post("https://api.openai.com/v1/chat/completions", json=body).read()
    [sent] = [r for r in fake_llm.snapshot() if b"gpt-documented" in r.body]
    assert sent.json() == {**body, "stream_options": {"include_usage": True}}


def test_cohere_block_has_cohere_error_shape(gate: Gate) -> None:
    with gate.http(KID) as client:
        answer = client.post("https://api.cohere.com/v2/chat",
                             json={"model": "command-a", "messages": CHAT})  # fmt: skip
    assert answer.status_code == 403
    assert set(answer.json()) == {"message"} and "Bedtime, Alice." in answer.json()["message"]


# --- HTTP/2 clients (browsers) ----------------------------------------------------------------


def h2_streams(
    gate: Gate, host: str, requests: list[tuple[str, bytes]]
) -> list[tuple[bytes, list[float]]]:
    """Each request on one HTTP/2 connection in turn: its body and when each DATA frame came."""
    import h2.config
    import h2.connection
    import h2.events

    raw = socket.create_connection(("127.0.0.1", gate.proc.port), 20, source_address=(PARENT, 0))
    raw.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
    assert b" 200 " in raw.recv(4096)
    ctx = ssl_context(gate.ca)
    ctx.set_alpn_protocols(["h2"])
    tls = ctx.wrap_socket(raw, server_hostname=host)
    assert tls.selected_alpn_protocol() == "h2"
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    answers = []
    for index, (path, body) in enumerate(requests):
        stream_id = 1 + 2 * index
        head = [(":method", "POST"), (":path", path), (":scheme", "https"), (":authority", host),
                ("content-type", "application/json"), *delayed().items()]  # fmt: skip
        conn.send_headers(stream_id, head)
        conn.send_data(stream_id, body, end_stream=True)
        tls.sendall(conn.data_to_send())
        data, times, ended = b"", [], False
        while not ended:
            for event in conn.receive_data(tls.recv(65536)):
                if isinstance(event, h2.events.DataReceived) and event.stream_id == stream_id:
                    data += event.data
                    times.append(time.monotonic())
                    conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
                ended |= isinstance(event, h2.events.StreamEnded | h2.events.StreamReset)
            tls.sendall(conn.data_to_send())
        answers.append((data, times))
    tls.close()
    return answers


def test_http2_sse_streams_in_a_row_arrive_chunk_by_chunk_and_whole(gate: Gate) -> None:
    body = json.dumps({"model": "gpt-h2", "messages": CHAT, "stream": True}).encode()
    answers = h2_streams(gate, "api.openai.com", [("/v1/chat/completions", body)] * 2)
    for data, times in answers:
        assert data.endswith(b"data: [DONE]\n\n") and b'"choices":[]' not in data
        assert_spread(times)
    rows = gate.rows("model = 'gpt-h2'", expect=2)
    assert all((r["tokens_out"], r["usage_source"]) == (5, "added") for r in rows)


def test_http2_ndjson_stream_arrives_chunk_by_chunk(gate: Gate) -> None:
    body = json.dumps({"model": "llama-h2", "messages": CHAT}).encode()
    [(data, times)] = h2_streams(gate, "ollama.lan", [("/api/chat", body)])
    assert json.loads(data.splitlines()[-1])["done"] is True
    assert_spread(times)
    [row] = gate.rows("model = 'llama-h2'")
    assert (row["tokens_in"], row["tokens_out"]) == (26, 3)
