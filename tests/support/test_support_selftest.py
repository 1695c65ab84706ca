"""Self-test of tests/support: the real, bare ``mitmdump`` between the official SDKs and the fake
upstream, all over TLS on 127.0.0.1. No hearthgate code is involved.

Layout of every proxied test::

    SDK --(proxy http://127.0.0.1:P)--> mitmdump -s redirect_addon.py --TLS--> FakeLLM
          trusts the mitmproxy CA          verifies upstream with the test CA

Hosts matching ``allow_hosts`` (api.openai.com, api.anthropic.com) are decrypted; every other
host (example.org) is tunnelled as raw TCP, so its client sees the fake's own certificate.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from mitmproxy import connection
from mitmproxy.proxy import server_hooks

from tests.support import redirect_addon
from tests.support.clients import anthropic_client, http_client, openai_client
from tests.support.fake_llm import (
    ANTHROPIC_STREAM_TEXT,
    ANTHROPIC_USAGE,
    CHAT_STREAM_CHUNKS,
    CHAT_STREAM_USAGE,
    CHAT_USAGE,
    GEMINI_STREAM_TEXT,
    GEMINI_USAGE,
    RESPONSES_STREAM_TEXT,
    RESPONSES_USAGE,
    FakeLLM,
    reply_text,
)
from tests.support.pki import Pki, make_pki
from tests.support.proxyproc import MITMDUMP, ProxyProcess, ssl_context

pytestmark = pytest.mark.e2e

REDIRECT_ADDON = Path(__file__).with_name("redirect_addon.py")
GEMINI_HOST = "generativelanguage.googleapis.com"
HOSTS = ["api.openai.com", "api.anthropic.com", GEMINI_HOST, "example.org"]
ALLOW_HOSTS = [r"^api\.openai\.com(:\d+)?$", r"^api\.anthropic\.com(:\d+)?$"]
TIMEOUT = 20.0


@dataclass(frozen=True)
class Mitm:
    proc: ProxyProcess
    ca: Path
    """mitmproxy's CA certificate (what a decrypted client must trust)."""

    @property
    def url(self) -> str:
        return self.proc.url


def mitmdump_argv(confdir: Path, pki: Pki, *options: str) -> list[str]:
    """Bare mitmdump with the redirect addon; ``options`` are extra ``--set`` values."""
    argv = [
        MITMDUMP,
        "--listen-host",
        "127.0.0.1",
        "--listen-port",
        "0",
        "--set",
        f"confdir={confdir}",
        "--set",
        f"ssl_verify_upstream_trusted_ca={pki.ca_cert}",
    ]
    for regex in ALLOW_HOSTS:
        argv += ["--set", f"allow_hosts={regex}"]  # repeated --set appends to a list option
    for option in options:
        argv += ["--set", option]
    return [*argv, "-s", str(REDIRECT_ADDON)]


@contextlib.contextmanager
def running_mitmdump(confdir: Path, pki: Pki, upstream: str, *options: str) -> Iterator[Mitm]:
    """Start :func:`mitmdump_argv`, wait for its port and CA file, stop it on exit."""
    argv = mitmdump_argv(confdir, pki, *options)
    proc = ProxyProcess.start(argv, env={"HEARTHGATE_TEST_UPSTREAM": upstream}, timeout=TIMEOUT)
    with proc:  # stops the subprocess whatever happens below
        ca = proc.wait_for_file(confdir / "mitmproxy-ca-cert.pem", timeout=TIMEOUT)
        yield Mitm(proc, ca)


# --------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), HOSTS)


@pytest.fixture(scope="module")
def fake(pki: Pki) -> Iterator[FakeLLM]:
    with FakeLLM(pki) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_recordings(request: pytest.FixtureRequest) -> None:
    if "fake" in request.fixturenames:
        request.getfixturevalue("fake").clear()


@pytest.fixture(scope="module", params=["eager", "lazy"])
def mitm(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pki: Pki,
    fake: FakeLLM,
) -> Iterator[Mitm]:
    """Bare mitmdump, once per ``connection_strategy`` (the redirect must work in both)."""
    confdir = tmp_path_factory.mktemp(f"mitm-{request.param}")
    with running_mitmdump(
        confdir, pki, fake.address, f"connection_strategy={request.param}"
    ) as proxy:
        yield proxy


# --------------------------------------------------------------------------------------------
# pki.py


def test_pki_ca_and_leaf(pki: Pki) -> None:
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    leaf = x509.load_pem_x509_certificate(pki.cert.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    leaf.verify_directly_issued_by(ca)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {*HOSTS, "localhost"}
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    now = dt.datetime.now(dt.UTC)
    for cert in (ca, leaf):
        assert cert.not_valid_before_utc <= now - dt.timedelta(hours=23)
        assert cert.not_valid_after_utc >= now + dt.timedelta(days=29)
    assert b"PRIVATE KEY" in pki.key.read_bytes()


# --------------------------------------------------------------------------------------------
# fake_llm.py, directly (no proxy)


def test_fake_openai_responses_api(fake: FakeLLM, pki: Pki) -> None:
    client = openai_client(None, pki.ca_cert, base_url=f"https://localhost:{fake.port}/v1")
    with client:
        resp = client.responses.create(model="gpt-5-mini", input="what is a hearth gate?")
        assert resp.status == "completed"
        assert resp.output_text == reply_text("what is a hearth gate?")
        assert resp.usage is not None
        assert resp.usage.model_dump(include={"input_tokens", "output_tokens", "total_tokens"}) == (
            RESPONSES_USAGE
        )

        events = list(client.responses.create(model="gpt-5-mini", input="hi", stream=True))
        types = [e.type for e in events]
        assert types[0] == "response.created"
        assert types.count("response.output_text.delta") == 3
        assert types[-1] == "response.completed"
        completed = events[-1]
        assert completed.type == "response.completed"
        assert completed.response.usage is not None
        assert completed.response.usage.total_tokens == RESPONSES_USAGE["total_tokens"]
        assert completed.response.model == "gpt-5-mini"

        # The SDK's accumulating helper is stricter about the event sequence than create().
        with client.responses.stream(model="gpt-5-mini", input="hi") as stream:
            deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
            final = stream.get_final_response()
        assert "".join(deltas) == RESPONSES_STREAM_TEXT == final.output_text

    recorded = fake.snapshot()
    assert [r.path for r in recorded] == ["/v1/responses"] * 3
    assert recorded[0].host == f"localhost:{fake.port}"
    assert recorded[0].json()["input"] == "what is a hearth gate?"
    assert recorded[0].headers["authorization"] == "Bearer sk-test"


def test_fake_gemini(fake: FakeLLM, pki: Pki) -> None:
    base = f"https://127.0.0.1:{fake.port}/v1beta/models/gemini-2.5-flash"
    body = {"contents": [{"role": "user", "parts": [{"text": "hello gemini"}]}]}
    with http_client(None, pki.ca_cert) as client:
        r = client.post(f"{base}:generateContent", json=body)
        r.raise_for_status()
        data = r.json()
        assert data["candidates"][0]["content"]["parts"][0]["text"] == reply_text("hello gemini")
        assert data["usageMetadata"] == GEMINI_USAGE
        assert data["modelVersion"] == "gemini-2.5-flash"

        r = client.post(f"{base}:streamGenerateContent?alt=sse", json=body)
        r.raise_for_status()
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [e for e in r.text.split("\r\n\r\n") if e]
        chunks = [json.loads(e.removeprefix("data: ")) for e in events]
        text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
        assert text == GEMINI_STREAM_TEXT
        assert [("usageMetadata" in c) for c in chunks] == [False] * (len(chunks) - 1) + [True]
        assert chunks[-1]["usageMetadata"] == GEMINI_USAGE

    assert [r.path for r in fake.snapshot()] == [
        "/v1beta/models/gemini-2.5-flash:generateContent",
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
    ]


def test_fake_plain_http_without_pki() -> None:
    """``FakeLLM(None)``: the same routes over plain HTTP, as a home Ollama server answers."""
    with FakeLLM(None) as plain, httpx.Client(trust_env=False, timeout=10) as client:
        assert plain.url == f"http://127.0.0.1:{plain.port}"
        r = client.post(f"{plain.url}/api/chat", json={"model": "llama", "messages": []})
        lines = [json.loads(line) for line in r.text.splitlines()]
        assert r.headers["content-type"].startswith("application/x-ndjson")
        assert [line["done"] for line in lines] == [False, False, False, True]
        assert [r.path for r in plain.snapshot()] == ["/api/chat"]
        assert plain.streamed[0] == r.content and plain.server_names == []


def test_fake_status_header_and_fallback(fake: FakeLLM, pki: Pki) -> None:
    oa = openai_client(None, pki.ca_cert, base_url=f"https://localhost:{fake.port}/v1")
    with oa, pytest.raises(openai.InternalServerError) as oa_err:
        oa.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-fake-status": "503"},
        )
    assert oa_err.value.status_code == 503

    an = anthropic_client(None, pki.ca_cert, base_url=f"https://localhost:{fake.port}")
    with an, pytest.raises(anthropic.APIStatusError) as an_err:
        an.messages.create(
            model="claude-haiku-4-5",
            max_tokens=5,
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-fake-status": "529"},
        )
    assert an_err.value.status_code == 529

    with http_client(None, pki.ca_cert) as client:
        r = client.get(f"https://127.0.0.1:{fake.port}/any/path?q=1", headers={"host": "x.test"})
        assert (r.status_code, r.text) == (200, "hello from upstream x.test")
        r = client.post(f"https://127.0.0.1:{fake.port}/v1/messages", content=b"not json")
        assert r.text.startswith("hello from upstream")
    assert fake.snapshot()[-2].path == "/any/path?q=1"


# --------------------------------------------------------------------------------------------
# Through bare mitmdump (decrypted hosts)


def test_openai_chat_through_proxy(mitm: Mitm, fake: FakeLLM) -> None:
    client = openai.OpenAI(
        api_key="sk-test",
        base_url="https://api.openai.com/v1",
        max_retries=0,
        http_client=httpx.Client(
            proxy=mitm.url,
            verify=ssl_context(mitm.ca),
            trust_env=False,
            timeout=TIMEOUT,
        ),
    )
    with client:
        done = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "tell me a very long story about a dragon, please"},
            ],
        )
        assert done.model == "gpt-4o-mini"
        assert done.choices[0].message.content == reply_text(
            "tell me a very long story about a dragon, please"
        )
        assert done.usage is not None
        assert done.usage.model_dump(include=set(CHAT_USAGE)) == CHAT_USAGE

        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "count"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    texts = [c.choices[0].delta.content for c in chunks if c.choices]
    assert tuple(texts) == CHAT_STREAM_CHUNKS
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.model_dump(include=set(CHAT_STREAM_USAGE)) == CHAT_STREAM_USAGE

    recorded = fake.snapshot()
    assert [(r.method, r.host, r.path) for r in recorded] == [
        ("POST", "api.openai.com", "/v1/chat/completions")
    ] * 2
    assert recorded[0].headers["authorization"] == "Bearer sk-test"
    # mitmproxy sent the real host name as SNI and verified the fake's cert against it.
    assert set(fake.server_names) == {"api.openai.com"}
    # The addon restored server.address, so mitmproxy's flow has the real host, not 127.0.0.1.
    mitm.proc.wait_for_output(re.escape("POST https://api.openai.com/v1/chat/completions"))
    assert f"https://127.0.0.1:{fake.port}/" not in mitm.proc.output


def test_anthropic_through_proxy(mitm: Mitm, fake: FakeLLM) -> None:
    with anthropic_client(mitm.url, mitm.ca) as client:
        message = client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=64,
            messages=[{"role": "user", "content": "hello claude"}],
        )
        assert message.content[0].type == "text"
        assert message.content[0].text == reply_text("hello claude")
        assert message.stop_reason == "end_turn"
        assert message.usage.input_tokens == ANTHROPIC_USAGE["input_tokens"]
        assert message.usage.output_tokens == ANTHROPIC_USAGE["output_tokens"]

        events = list(
            client.messages.create(
                model="claude-haiku-4-5",
                max_tokens=64,
                messages=[{"role": "user", "content": "stream please"}],
                stream=True,
            )
        )
        assert [e.type for e in events] == [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]

        with client.messages.stream(
            model="claude-haiku-4-5",
            max_tokens=64,
            messages=[{"role": "user", "content": "stream please"}],
        ) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        assert text == ANTHROPIC_STREAM_TEXT
        assert final.usage.input_tokens == ANTHROPIC_USAGE["input_tokens"]
        assert final.usage.output_tokens == ANTHROPIC_USAGE["output_tokens"]

    recorded = fake.snapshot()
    assert {(r.host, r.path) for r in recorded} == {("api.anthropic.com", "/v1/messages")}
    # anthropic 2.x sends the API key as a bearer token, not as x-api-key.
    assert recorded[0].headers["authorization"] == "Bearer sk-ant-test"
    assert "x-api-key" not in recorded[0].headers


# --------------------------------------------------------------------------------------------
# Through bare mitmdump (tunnelled host)


def _peer_issuer_cn(response: httpx.Response) -> str:
    ssl_object = response.extensions["network_stream"].get_extra_info("ssl_object")
    der = ssl_object.getpeercert(True)  # binary form; a low-level _SSLSocket: no keywords
    issuer = x509.load_der_x509_certificate(der).issuer
    return str(issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_non_llm_host_is_tunnelled_not_decrypted(mitm: Mitm, fake: FakeLLM, pki: Pki) -> None:
    # Trusting ONLY the test CA: a mitmproxy-forged certificate would fail verification.
    with http_client(mitm.url, pki.ca_cert) as client:
        with client.stream("GET", "https://example.org/") as r:
            issuer = _peer_issuer_cn(r)
            r.read()
        assert (r.status_code, r.text) == (200, "hello from upstream example.org")
        assert issuer == "hearthgate test CA"

        # Converse: an allowed host IS decrypted, so the test CA alone does not verify it.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            client.get("https://api.openai.com/")

    # ... and the mitmproxy CA alone does not verify the tunnelled host.
    with http_client(mitm.url, mitm.ca) as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            client.get("https://example.org/")

    # The client's own SNI reached the fake server through the tunnel.
    assert "example.org" in fake.server_names
    assert [(r.host, r.path) for r in fake.snapshot()] == [("example.org", "/")]


def test_mitmdump_exits_without_upstream_setting(tmp_path: Path, pki: Pki) -> None:
    """An unset HEARTHGATE_TEST_UPSTREAM is logged as an error, and mitmdump's errorcheck addon
    exits on errors logged during startup: the proxy never serves."""
    argv = mitmdump_argv(tmp_path / "mitm", pki)
    with ProxyProcess.spawn(argv, env={"HEARTHGATE_TEST_UPSTREAM": ""}) as proc:
        assert proc.wait_exit(timeout=TIMEOUT) == 1
    assert "HEARTHGATE_TEST_UPSTREAM must look like 127.0.0.1:PORT" in proc.output


def _hook_data(host: str, port: int) -> server_hooks.ServerConnectionHookData:
    server = connection.Server(address=(host, port))
    client = connection.Client(
        peername=("127.0.0.1", 50000), sockname=("127.0.0.1", 8080), timestamp_start=0
    )
    return server_hooks.ServerConnectionHookData(client=client, server=server)


def test_redirect_addon_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The addon's hooks in isolation: swap, restore, and fail closed on a bad setting (which
    matters where no errorcheck addon stops the proxy, e.g. an embedded master)."""
    monkeypatch.setenv("HEARTHGATE_TEST_UPSTREAM", "127.0.0.1:4443")
    addon = redirect_addon.RedirectToFakeUpstream()
    addon.load(None)
    data = _hook_data("api.openai.com", 443)
    addon.server_connect(data)
    assert data.server.address == ("127.0.0.1", 4443)
    assert data.server.error is None
    data.server.state = connection.ConnectionState.OPEN
    addon.server_connected(data)
    assert data.server.address == ("api.openai.com", 443)  # restored despite the open state

    failed = _hook_data("example.org", 443)
    addon.server_connect(failed)
    addon.server_connect_error(failed)
    assert failed.server.address == ("example.org", 443)

    for bad in ("", "10.0.0.1:443", "localhost:1", "127.0.0.1:x"):
        monkeypatch.setenv("HEARTHGATE_TEST_UPSTREAM", bad)
        addon = redirect_addon.RedirectToFakeUpstream()
        addon.load(None)
        data = _hook_data("api.openai.com", 443)
        addon.server_connect(data)
        assert data.server.error is not None, bad  # killed before connecting
        assert data.server.address == ("api.openai.com", 443)


# --------------------------------------------------------------------------------------------
# Streaming through bare mitmdump
#
# Bare mitmdump BUFFERS every body: the `response` hook (and the flow dump) wants the whole
# body, so without help an SSE reply reaches the client in one piece when the upstream is done.
# Two ways to stream: an addon sets `flow.response.stream = True` in `responseheaders` (what the
# gate does itself), or the option `stream_large_bodies=N`. mitmproxy checks that option against
# Content-Length, or, for a chunked reply without one (SSE), against the bytes buffered so far on
# every chunk it receives; N=1 therefore switches to streaming on the first chunk. It applies to
# request bodies too (flows then show "(content missing)"), which is fine for a bare proxy.


def _chunk_arrivals(proxy: Mitm, delay_ms: int) -> tuple[float, list[float], list[str]]:
    """Send a streamed chat request; return (t_sent, arrival time per content chunk, texts)."""
    arrivals: list[float] = []
    texts: list[str] = []
    with openai_client(proxy.url, proxy.ca) as client:
        sent = time.monotonic()
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "slowly"}],
            stream=True,
            extra_headers={"x-fake-delay-ms": str(delay_ms)},
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append(time.monotonic())
                texts.append(chunk.choices[0].delta.content)
    return sent, arrivals, texts


def test_bare_mitmdump_buffers_sse(tmp_path: Path, pki: Pki, fake: FakeLLM) -> None:
    """Control for the test below: without a streaming option the chunks arrive together."""
    with running_mitmdump(tmp_path / "mitm", pki, fake.address) as proxy:
        sent, arrivals, texts = _chunk_arrivals(proxy, delay_ms=300)
    assert tuple(texts) == CHAT_STREAM_CHUNKS
    assert arrivals[0] - sent >= 1.0  # nothing before the upstream finished (4 x 300 ms)
    assert arrivals[-1] - arrivals[0] < 0.3


def test_sse_chunks_arrive_one_by_one_with_stream_large_bodies(
    tmp_path: Path, pki: Pki, fake: FakeLLM
) -> None:
    with running_mitmdump(tmp_path / "mitm", pki, fake.address, "stream_large_bodies=1") as proxy:
        _, arrivals, texts = _chunk_arrivals(proxy, delay_ms=300)
    assert tuple(texts) == CHAT_STREAM_CHUNKS
    # 4 gaps of 300 ms upstream; the spread survives only if nothing buffered the body.
    assert arrivals[-1] - arrivals[0] >= 0.8
    assert fake.snapshot()[0].headers["x-fake-delay-ms"] == "300"
