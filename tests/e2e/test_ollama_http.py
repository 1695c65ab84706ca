"""A household's own Ollama server on plain HTTP (``http://ollama.lan:11434``), through the gate
as a device's HTTP proxy: the official ``ollama`` library sends absolute-form requests to the
gate, which forwards them, unencrypted, to a plain-HTTP fake on loopback.

The redirect addon plays the household's DNS here: ``ollama.lan:11434`` is opened to the
plain-HTTP fake (it is the only upstream of this module's gate).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
import ollama
import pytest

from tests.e2e.conftest import (
    OLLAMA_PROVIDER,
    PARENT,
    Gate,
    household,
    proxied_transport,
    start_gate,
)
from tests.e2e.test_streaming import CHAT, arrivals, assert_spread, delayed
from tests.support.fake_llm import OLLAMA_EMBED_TOKENS, OLLAMA_STREAM_TEXT, FakeLLM, reply_text
from tests.support.pki import Pki

pytestmark = pytest.mark.e2e
HOME_OLLAMA = "http://ollama.lan:11434"
RULES = household(
    bedtime=False,
    extra=OLLAMA_PROVIDER
    + """policies:
  - name: no-huge-models
    when: {models: ["llama-huge*"]}
    message: That model is too big for this house.
  - name: no-hacking
    when: {prompt: {regex: ['\\bhack\\b']}}
    message: Not that.
""",
)


@pytest.fixture(scope="module")
def plain_fake() -> Iterator[FakeLLM]:
    with FakeLLM(None) as server:
        yield server


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory, pki: Pki, plain_fake: FakeLLM) -> Iterator[Gate]:
    tmp = tmp_path_factory.mktemp("ollama-http")
    proc = start_gate(tmp, RULES, pki, plain_fake)
    try:
        yield Gate(proc, tmp / "state", tmp / "household.yaml", pki)
    finally:
        proc.stop()


def home_ollama(gate: Gate, sent: list[bytes] | None = None, **headers: str) -> ollama.Client:
    """The ollama library with the gate as its HTTP proxy; *sent* collects each request body
    as the library wrote it."""
    hooks: list[Callable[[httpx.Request], None]] = []
    if sent is not None:
        hooks.append(lambda request: sent.append(request.read()))
    return ollama.Client(
        host=HOME_OLLAMA,
        transport=proxied_transport(gate.url, PARENT, gate.ca),
        headers=headers,
        event_hooks={"request": hooks},
    )


def reached(fake: FakeLLM, marker: str) -> bool:
    return any(marker.encode() in r.body for r in fake.snapshot())


def test_streamed_chats_arrive_chunk_by_chunk_and_are_counted(
    gate: Gate, plain_fake: FakeLLM
) -> None:
    client = home_ollama(gate, **delayed())
    for _ in range(2):  # in a row, on the library's one keep-alive connection to the gate
        parts, times = arrivals(client.chat(model="llama-plain-stream", messages=CHAT, stream=True))
        assert "".join(p.message.content or "" for p in parts) == OLLAMA_STREAM_TEXT
        assert parts[-1].done and (parts[-1].prompt_eval_count, parts[-1].eval_count) == (26, 3)
        assert_spread(times)
    rows = gate.rows("model = 'llama-plain-stream'", expect=2)
    for row in rows:
        assert (row["provider"], row["endpoint"], row["status"]) == ("home-ollama", "chat", 200)
        assert (row["tokens_in"], row["tokens_out"], row["usage_source"]) == (26, 3, "reported")
    seen = [r for r in plain_fake.snapshot() if b"llama-plain-stream" in r.body]
    assert [(r.host, r.path) for r in seen] == [("ollama.lan:11434", "/api/chat")] * 2
    assert plain_fake.server_names == [], "the fake spoke TLS"


def test_generate_not_streamed_reaches_the_upstream_byte_for_byte(
    gate: Gate, plain_fake: FakeLLM
) -> None:
    sent: list[bytes] = []
    prompt = "Why is the sky blue? caf\u00e9"
    answer = home_ollama(gate, sent).generate(model="llama-plain-gen", prompt=prompt, stream=False)
    assert answer.response == reply_text(prompt) and answer.eval_count == 3
    [seen] = [r for r in plain_fake.snapshot() if b"llama-plain-gen" in r.body]
    assert seen.path == "/api/generate"
    assert [seen.body] == sent, "the gate changed an allowed request"
    [row] = gate.rows("model = 'llama-plain-gen'")
    assert (row["endpoint"], row["tokens_in"], row["tokens_out"]) == ("completions", 26, 3)


BLOCKED = {
    "model rule, chat": (
        "no-huge-models",
        lambda c, m: c.chat(model=f"llama-huge-{m}", messages=CHAT),
    ),
    "prompt rule, generate": (
        "no-hacking",
        lambda c, m: c.generate(model=f"llama-small-{m}", prompt=f"how to hack {m}", stream=False),
    ),
    "prompt rule, embed": (
        "no-hacking",
        lambda c, m: c.embed(model=f"llama-small-{m}", input=["fine", f"hack {m}"]),
    ),
}


@pytest.mark.parametrize("case", BLOCKED)
def test_block_never_reaches_the_upstream_and_is_a_response_error_in_text(
    gate: Gate, plain_fake: FakeLLM, case: str
) -> None:
    rule, call = BLOCKED[case]
    marker = uuid.uuid4().hex[:12]
    with pytest.raises(ollama.ResponseError) as caught:
        call(home_ollama(gate), marker)
    [row] = gate.rows("model LIKE ?", (f"%{marker}",))
    error = caught.value.error
    assert caught.value.status_code == 403 and (row["rule"], row["action"]) == (rule, "block")
    assert isinstance(error, str) and not error.startswith("{"), error
    assert row["reason"] in error and f"Request id {row['request_id']}." in error
    assert not reached(plain_fake, marker), "a blocked request reached the upstream"


def test_embed_is_recognised_and_counted(gate: Gate, plain_fake: FakeLLM) -> None:
    answer = home_ollama(gate).embed(model="llama-plain-embed", input=["a", "b"])
    assert len(answer.embeddings) == 2
    [row] = gate.rows("model = 'llama-plain-embed'")
    assert (row["endpoint"], row["tokens_in"], row["usage_source"]) == (
        "embeddings",
        OLLAMA_EMBED_TOKENS,
        "reported",
    )
    assert plain_fake.snapshot()[-1].path == "/api/embed"
