"""What the gate reads is what the service reads (issue 14, classes 1, 2 and 6).

Each trick is tried by the kid through the real gate with raw sockets or the official SDKs,
against the fake upstream that records what reaches it. Every test asserts that the forbidden
request never arrives upstream, and that its legitimate twin still does.
"""

from __future__ import annotations

import gzip
import json
import socket
import ssl
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import KID, PARENT, Gate, household, start_gate
from tests.support.fake_llm import FakeLLM
from tests.support.pki import Pki
from tests.support.proxyproc import ssl_context

pytestmark = pytest.mark.e2e

POLICIES = """\
policies:
  - name: kids-small-models
    when: {groups: [kids], models_not: ["gpt-4o-mini*", "claude-*haiku*"]}
    action: block
  - name: kids-no-casino
    when: {groups: [kids], prompt: {keywords: [casino]}}
    action: block
"""
SMALL, BIG = "gpt-4o-mini", "gpt-4o"


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory, pki: Pki, fake_llm: FakeLLM) -> Iterator[Gate]:
    tmp = tmp_path_factory.mktemp("reading")
    proc = start_gate(tmp, household(bedtime=False, extra=POLICIES), pki, fake_llm)
    try:
        yield Gate(proc, tmp / "state", tmp / "household.yaml", pki)
    finally:
        proc.stop()


def chat(model: str, text: str = "hello") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


def reached(fake: FakeLLM, tag: str) -> bool:
    return any(r.headers.get("x-test-id") == tag for r in fake.requests)


def send(
    gate: Gate,
    content: bytes | Iterator[bytes],
    *,
    source: str = KID,
    path: str = "/v1/chat/completions",
    host: str = "api.openai.com",
    headers: dict[str, str] | None = None,
) -> tuple[httpx.Response, str]:
    """POST through the gate with a fresh ``x-test-id``; an iterator is sent chunked."""
    tag = uuid.uuid4().hex
    sent = {"content-type": "application/json", "x-test-id": tag, **(headers or {})}
    with gate.http(source) as client:
        response = client.post(f"https://{host}{path}", content=content, headers=sent)
    return response, tag


def raw(gate: Gate, head: bytes, body: bytes = b"", host: bytes = b"api.openai.com") -> bytes:
    """One HTTP/1.1 request written byte for byte through a CONNECT tunnel; the whole answer."""
    sock = socket.create_connection(
        ("127.0.0.1", gate.proc.port), timeout=15, source_address=(KID, 0)
    )
    sock.sendall(b"CONNECT " + host + b":443 HTTP/1.1\r\nHost: " + host + b":443\r\n\r\n")
    assert b" 200 " in sock.recv(4096)
    tls = ssl_context(gate.ca).wrap_socket(sock, server_hostname=host.decode())
    tls.sendall(head + body)
    answer = b""
    try:
        while chunk := tls.recv(65536):
            answer += chunk
    except (TimeoutError, ssl.SSLError, ConnectionError):
        pass
    tls.close()
    return answer


def request_head(path: bytes, tag: str, length: int | None, extra: bytes = b"") -> bytes:
    framing = b"Content-Length: %d\r\n" % length if length is not None else b""
    return (
        b"POST " + path + b" HTTP/1.1\r\nHost: api.openai.com\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nx-test-id: " + tag.encode() + b"\r\n"
        + framing + extra + b"\r\n"
    )  # fmt: skip


# --- class 1: bodies the gate did not read ---------------------------------------------------


def chunks(data: bytes, size: int = 7) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_chunked_body_is_read_like_any_other(gate: Gate, fake_llm: FakeLLM) -> None:
    r, tag = send(gate, chunks(json.dumps(chat(BIG)).encode()))
    assert r.status_code == 403 and "kids-small-models" in r.json()["error"]["message"]
    assert not reached(fake_llm, tag)
    r, tag = send(gate, chunks(json.dumps(chat(SMALL, "a casino tip")).encode()))
    assert r.status_code == 403 and not reached(fake_llm, tag)
    body = json.dumps(chat(SMALL)).encode()
    r, tag = send(gate, chunks(body))
    assert r.status_code == 200 and reached(fake_llm, tag)
    assert [q.body for q in fake_llm.requests if q.headers.get("x-test-id") == tag] == [body]


@pytest.mark.parametrize(
    ("encoding", "pack"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("gzip, gzip", lambda b: gzip.compress(gzip.compress(b))),
    ],
)
def test_compressed_body_is_read(gate: Gate, fake_llm: FakeLLM, encoding: str, pack: Any) -> None:
    headers = {"content-encoding": encoding}
    r, tag = send(gate, pack(json.dumps(chat(BIG)).encode()), headers=headers)
    assert r.status_code == 403 and not reached(fake_llm, tag)
    packed = pack(json.dumps(chat(SMALL)).encode())
    r, tag = send(gate, packed, headers=headers)
    assert reached(fake_llm, tag)
    forwarded = [q for q in fake_llm.requests if q.headers.get("x-test-id") == tag][0]
    assert forwarded.body == packed  # forwarded as sent, still compressed


def test_bodies_it_cannot_read_are_blocked_not_waved_through(gate: Gate, fake_llm: FakeLLM) -> None:
    bomb = gzip.compress(b'{"model": "gpt-4o", "messages": [], "x": "' + b" " * 40_000_000)
    tricks: list[tuple[bytes, dict[str, str]]] = [
        (bomb, {"content-encoding": "gzip"}),  # 40 KB on the wire, 40 MB decoded
        (json.dumps(chat(BIG)).encode(), {"content-encoding": "x-teen"}),
        (b'{"model": "gpt-4o", "messages": [],}', {}),  # trailing comma
        (b'{"model": "gpt-4o", "n": 1' + b"0" * 5000 + b', "messages": []}', {}),  # huge int
        (b'{"model": "gpt-4o", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", {}),  # deep nesting
        (json.dumps(chat(BIG)).encode(), {"content-type": "text/x-anything"}),
    ]
    for body, headers in tricks:
        r, tag = send(gate, body, headers=headers)
        assert r.status_code == 403, (headers, body[:60], r.text)
        assert not reached(fake_llm, tag)
        if "x-anything" not in headers.get("content-type", ""):
            assert "could not read this request" in r.json()["error"]["message"]
    # the parent's device has no body rule: the same bytes go through untouched
    r, tag = send(gate, bomb, source=PARENT, headers={"content-encoding": "gzip"})
    assert reached(fake_llm, tag)
    row = gate.rows("device = 'alice-laptop' AND reason LIKE '%could not read%'", expect=5)[-1]
    assert row["stage"] == "policy" and row["rule"] == "kids-small-models"


def test_body_over_the_cap_is_decided_unread(gate: Gate, fake_llm: FakeLLM) -> None:
    big = json.dumps(chat(SMALL, "x" * (3 * 1024 * 1024))).encode()
    for content in (big, chunks(big, 256 * 1024)):  # chunked: buffered up to the cap only
        r, tag = send(gate, content)
        assert r.status_code == 403 and "could not read this request" in r.text
        assert "larger than the 2 MiB" in r.json()["error"]["message"]
        assert not reached(fake_llm, tag)
    for content in (big, chunks(big, 256 * 1024)):  # the parent's: streamed through whole
        r, tag = send(gate, content, source=PARENT)
        assert r.status_code == 200 and reached(fake_llm, tag)
        got = [q for q in fake_llm.requests if q.headers.get("x-test-id") == tag][0]
        assert got.body == big


def test_unreadable_allow_lets_such_requests_through(make_gate: Any, fake_llm: FakeLLM) -> None:
    rules = household(bedtime=False, extra=POLICIES).replace(
        "settings: {", "settings: {unreadable: allow, "
    )
    g = make_gate(rules)
    r, tag = send(g, b'{"model": "gpt-4o", "messages": [],}')
    assert r.status_code == 200 and reached(fake_llm, tag)
    r, tag = send(g, json.dumps(chat(BIG)).encode())  # what it can read is still decided
    assert r.status_code == 403 and not reached(fake_llm, tag)


# --- class 2: paths as the service routes them, APIs that carry the model elsewhere ----------


@pytest.mark.parametrize(
    "path",
    [
        b"/v1/./chat/completions",
        b"/v1/x/../chat/completions",
        b"//v1///chat//completions",
        b"/v1/chat%2Fcompletions",
        b"/v1/chat/%63ompletions",
        b"/v1/%2E/chat/completions",
        b"/v1/chat/completions;x=1",
        b"/V1/Chat/Completions",
        b"/v1/engines/gpt-4o/chat/completions",
    ],
)
def test_path_spellings_reach_the_same_rules(gate: Gate, fake_llm: FakeLLM, path: bytes) -> None:
    tag = uuid.uuid4().hex
    body = json.dumps(chat(BIG if b"engines" not in path else SMALL)).encode()
    answer = raw(gate, request_head(path, tag, len(body)), body)
    assert answer.startswith(b"HTTP/1.1 403"), answer[:200]
    assert not reached(fake_llm, tag)
    small = json.dumps(chat(SMALL)).encode()
    tag = uuid.uuid4().hex
    answer = raw(gate, request_head(b"/v1/chat/completions", tag, len(small)), small)
    assert answer.startswith(b"HTTP/1.1 200") and reached(fake_llm, tag)


def test_batch_apis_are_read_line_by_line(gate: Gate, fake_llm: FakeLLM) -> None:
    def jsonl(model: str) -> bytes:
        lines = [
            {"custom_id": str(i), "method": "POST", "url": "/v1/chat/completions",
             "body": chat(SMALL if i else model)}
            for i in range(3)
        ]  # fmt: skip
        return b"\n".join(json.dumps(line).encode() for line in lines)

    client = gate.openai(KID)
    with pytest.raises(openai.PermissionDeniedError):
        client.files.create(file=("in.jsonl", jsonl(BIG)), purpose="batch")
    assert not any(b'"gpt-4o"' in q.body for q in fake_llm.requests if q.path == "/v1/files")
    client.files.create(file=("in.jsonl", jsonl(SMALL)), purpose="batch")
    assert any(q.path == "/v1/files" for q in fake_llm.requests)
    # creating the batch: its requests are in the upload, so the model cannot be read here
    with pytest.raises(openai.PermissionDeniedError, match="could not read"):
        client.batches.create(
            input_file_id="file-1", endpoint="/v1/chat/completions", completion_window="24h"
        )
    # Anthropic Message Batches carry every request's model and prompt
    kid = gate.anthropic(KID)
    request = {"max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    import anthropic

    with pytest.raises(anthropic.PermissionDeniedError):
        kid.messages.batches.create(
            requests=[
                {"custom_id": "a", "params": {"model": "claude-3-5-haiku-latest", **request}},
                {"custom_id": "b", "params": {"model": "claude-opus-4-1", **request}},
            ]
        )
    assert not any(b"claude-opus-4-1" in q.body for q in fake_llm.requests)
    kid.messages.batches.create(
        requests=[{"custom_id": "a", "params": {"model": "claude-3-5-haiku-latest", **request}}]
    )
    assert any(q.path == "/v1/messages/batches" for q in fake_llm.requests)


def test_assistant_runs_and_sessions_are_read(gate: Gate, fake_llm: FakeLLM) -> None:
    client = gate.openai(KID)
    with pytest.raises(openai.PermissionDeniedError, match="does not say which model"):
        client.beta.threads.runs.create(thread_id="thread_1", assistant_id="asst_1")
    with pytest.raises(openai.PermissionDeniedError):
        client.beta.threads.runs.create(thread_id="thread_1", assistant_id="asst_1", model=BIG)
    with pytest.raises(openai.PermissionDeniedError):
        client.beta.threads.messages.create("thread_1", role="user", content="casino odds")
    with pytest.raises(openai.PermissionDeniedError):
        client.beta.realtime.sessions.create(model="gpt-4o-realtime-preview")
    client.beta.threads.runs.create(thread_id="thread_2", assistant_id="asst_1", model=SMALL)
    client.beta.threads.messages.create("thread_2", role="user", content="homework help")
    paths = [q.path for q in fake_llm.requests]
    assert "/v1/threads/thread_2/runs" in paths and "/v1/threads/thread_2/messages" in paths
    assert "/v1/threads/thread_1/runs" not in paths
    assert "/v1/realtime/sessions" not in paths


def test_chatgpt_signed_out_conversation_is_read(gate: Gate, fake_llm: FakeLLM) -> None:
    for root in ("backend-anon", "backend-api/f"):
        post = {
            "action": "next",
            "model": "auto",
            "messages": [{"content": {"content_type": "text", "parts": ["casino tricks"]}}],
        }
        r, tag = send(
            gate, json.dumps(post).encode(), host="chatgpt.com", path=f"/{root}/conversation"
        )
        assert r.status_code == 403 and not reached(fake_llm, tag)
        post["messages"] = [{"content": {"content_type": "text", "parts": ["fractions"]}}]
        post["model"] = SMALL  # "auto" is no model on the kid's list
        r, tag = send(
            gate, json.dumps(post).encode(), host="chatgpt.com", path=f"/{root}/conversation"
        )
        assert r.status_code == 200 and reached(fake_llm, tag)


# --- class 6: answers every client can read, and the status it got ----------------------------


def test_control_characters_never_reach_a_header(gate: Gate, fake_llm: FakeLLM) -> None:
    client = gate.openai(KID)
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client.chat.completions.create(model="gpt-4o\x00\r\nx-evil: 1", messages=[])
    reason = caught.value.response.headers["x-hearthgate-reason"]
    assert reason.isprintable() and "x-evil" not in caught.value.response.headers
    import h2.config
    import h2.connection
    import h2.events

    sock = socket.create_connection(
        ("127.0.0.1", gate.proc.port), timeout=10, source_address=(KID, 0)
    )
    sock.sendall(b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n")
    assert b" 200 " in sock.recv(4096)
    ctx = ssl_context(gate.ca)
    ctx.set_alpn_protocols(["h2"])
    tls = ctx.wrap_socket(sock, server_hostname="api.openai.com")
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(1, [(":method", "POST"), (":path", "/v1/chat/completions"),
                          (":scheme", "https"), (":authority", "api.openai.com")])  # fmt: skip
    conn.send_data(1, json.dumps(chat("gpt-4o\x00\x07\x1b")).encode(), end_stream=True)
    tls.sendall(conn.data_to_send())
    status = None
    while status is None:
        for event in conn.receive_data(tls.recv(65536)):  # h2 raises on a bad header value
            if isinstance(event, h2.events.ResponseReceived):
                status = dict(event.headers)[b":status"]
        tls.sendall(conn.data_to_send())
    tls.close()
    assert status == b"403"


def test_logged_status_is_what_the_client_received(gate: Gate, fake_llm: FakeLLM) -> None:
    tag = uuid.uuid4().hex
    big = b"9" * 10
    head = request_head(
        b"/v1/chat/completions", tag, 3 * 1024 * 1024, b"Transfer-Encoding: chunked\r\n"
    )
    answer = raw(gate, head, big)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:100]
    assert not reached(fake_llm, tag)
    rows = gate.sql("SELECT status FROM decisions WHERE status = 502")
    assert not rows, "a 400 sent by the proxy is logged as what it was"
