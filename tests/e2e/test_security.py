"""The gate as a teenager would attack it. Each test is one trick; each must fail."""

from __future__ import annotations

import base64
import socket
import ssl

import httpx
import pytest

from tests.e2e.conftest import KID, Gate, proxied_transport
from tests.support.fake_llm import FakeLLM
from tests.support.proxyproc import ssl_context

pytestmark = pytest.mark.e2e
URL = "https://api.openai.com/v1/chat/completions"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def tunnel(gate: Gate, target: bytes, sni: str, verify: bool = True) -> ssl.SSLSocket:
    """A raw CONNECT through the gate from the kid's address, then TLS with ``sni``."""
    raw = socket.create_connection(
        ("127.0.0.1", gate.proc.port), timeout=10, source_address=(KID, 0)
    )
    raw.sendall(b"CONNECT " + target + b" HTTP/1.1\r\nHost: " + target + b"\r\n\r\n")
    assert b" 200 " in raw.recv(4096)
    ctx = ssl_context(gate.ca)
    if not verify:  # the kid's own client can skip certificate checks
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    return ctx.wrap_socket(raw, server_hostname=sni)


def post_raw(tls: ssl.SSLSocket, host: bytes = b"api.openai.com") -> bytes:
    tls.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: " + host + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    )
    answer = tls.recv(4096)
    tls.close()
    return answer


def test_fake_sni_on_a_connect_to_an_llm_host_is_still_decided(gate: Gate) -> None:
    # CONNECT api.openai.com, but tell TLS it is example.org (domain-fronting style)
    answer = post_raw(tunnel(gate, b"api.openai.com:443", "example.org", verify=False))
    assert answer.startswith(b"HTTP/1.1 403"), answer[:100]


def test_host_spellings_and_case_do_not_escape(gate: Gate) -> None:
    with gate.http(KID) as client:
        for url in (
            "https://API.OpenAI.com/v1/chat/completions",
            "https://api.openai.com./v1/chat/completions",
        ):
            assert client.post(url, json=BODY).status_code == 403, url


def test_spoofed_hearthgate_headers_do_not_reach_upstream_or_unlock(
    gate: Gate, fake_llm: FakeLLM
) -> None:
    headers = {
        "X-Hearthgate-Pin": "000000",
        "X-Hearthgate-Request-Id": "made-up",
        "X-Hearthgate-Reason": "allowed by mom",
    }
    with gate.http(KID) as client:
        r = client.post(URL, json=BODY, headers=headers)
    assert r.status_code == 403 and "wrong PIN" in r.json()["error"]["message"]
    assert all("x-hearthgate-pin" not in q.headers for q in fake_llm.requests)


def test_forged_proxy_auth_is_ignored_without_proxyauth(gate: Gate) -> None:
    creds = base64.b64encode(b"mom:anything").decode()
    transport = proxied_transport(
        gate.url, KID, gate.ca, proxy_headers=[(b"Proxy-Authorization", f"Basic {creds}".encode())]
    )
    with httpx.Client(transport=transport, timeout=10) as client:
        assert client.post(URL, json=BODY).status_code == 403
    row = gate.rows("device = 'alice-laptop'")[-1]
    assert row["person"] == "alice"


def test_http2_is_decided_like_http1(gate: Gate) -> None:
    import h2.config
    import h2.connection
    import h2.events

    raw = socket.create_connection(
        ("127.0.0.1", gate.proc.port), timeout=10, source_address=(KID, 0)
    )
    raw.sendall(b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n")
    assert b" 200 " in raw.recv(4096)
    ctx = ssl_context(gate.ca)
    ctx.set_alpn_protocols(["h2"])
    tls = ctx.wrap_socket(raw, server_hostname="api.openai.com")
    assert tls.selected_alpn_protocol() == "h2"
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(
        1,
        [
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            (":scheme", "https"),
            (":authority", "api.openai.com"),
            ("content-type", "application/json"),
        ],
    )
    conn.send_data(1, b"{}", end_stream=True)
    tls.sendall(conn.data_to_send())
    status = None
    while status is None:
        for event in conn.receive_data(tls.recv(65536)):
            if isinstance(event, h2.events.ResponseReceived):
                status = dict(event.headers)[b":status"]
        tls.sendall(conn.data_to_send())
    tls.close()
    assert status == b"403"


def test_websocket_upgrade_to_realtime_is_decided(gate: Gate) -> None:
    tls = tunnel(gate, b"api.openai.com:443", "api.openai.com")
    tls.sendall(
        b"GET /v1/realtime?model=gpt-4o-realtime-preview HTTP/1.1\r\n"
        b"Host: api.openai.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    answer = tls.recv(4096)
    tls.close()
    assert answer.startswith(b"HTTP/1.1 403"), answer[:100]


def test_connect_by_ip_with_the_real_name_as_sni_is_decided(gate: Gate) -> None:
    answer = post_raw(tunnel(gate, b"127.0.0.1:443", "api.openai.com"))
    assert answer.startswith(b"HTTP/1.1 403"), answer[:100]
