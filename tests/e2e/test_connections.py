"""Connections the gate would not otherwise read (issue 14, class 7).

A tunnel to an address where the gate itself reached an LLM service, naming no site, is
decided like any connection to that service; in transparent mode, a connection under a name
the service's certificate also covers is decrypted for a device that trusts the CA, so a
request for the service sent over it (HTTP/2 connection reuse) is decided by its own host.
"""

from __future__ import annotations

import socket
import ssl
import uuid

import pytest

from tests.e2e.conftest import KID, PARENT, household
from tests.e2e.netns import netns
from tests.e2e.test_transparent import probe, redirect_443
from tests.support.fake_llm import FakeLLM

pytestmark = pytest.mark.e2e
CHAT_MSG = [{"role": "user", "content": "hi"}]


def bare_tunnel(port: int, source: str, target: bytes) -> socket.socket:
    """CONNECT to a bare address; the TLS that follows names no site (no SNI)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    sock.sendall(b"CONNECT " + target + b" HTTP/1.1\r\nHost: " + target + b"\r\n\r\n")
    assert b" 200 " in sock.recv(4096)
    return sock


def test_a_bare_address_of_a_service_is_decided(make_gate, fake_llm: FakeLLM) -> None:  # type: ignore[no-untyped-def]
    gate = make_gate(household())  # bedtime for the kid
    # the parent's ordinary request: the gate reaches api.openai.com (at the fake's address)
    gate.openai(PARENT).chat.completions.create(model="gpt-4o-mini", messages=CHAT_MSG)
    target = fake_llm.address.encode()
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # the kid's own client
    seen = len(fake_llm.server_names)
    with pytest.raises((ssl.SSLError, OSError)):
        with ctx.wrap_socket(bare_tunnel(gate.proc.port, KID, target)) as tls:
            tls.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\n\r\n")
            assert not tls.recv(4096)
            raise ConnectionError("closed")
    assert len(fake_llm.server_names) == seen, "the kid's tunnel never reached the service"
    tag = uuid.uuid4().hex
    with ctx.wrap_socket(bare_tunnel(gate.proc.port, PARENT, target)) as tls:
        tls.sendall(
            b"GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\nConnection: close\r\n"
            b"x-test-id: " + tag.encode() + b"\r\n\r\n"
        )
        assert tls.recv(4096).startswith(b"HTTP/1.1 200")
    assert any(r.headers.get("x-test-id") == tag for r in fake_llm.requests)
    kid, parent = (
        gate.rows("device = ? AND method = 'CONNECT'", (device,))[-1]
        for device in ("alice-laptop", "mom-laptop")
    )
    assert (kid["provider"], kid["host"], kid["allowed"], kid["stage"]) == (
        "openai",
        "127.0.0.1",
        0,
        "time_rule",
    )
    assert (parent["provider"], parent["allowed"]) == ("openai", 1)


POLICY = """\
policies:
  - {name: kids-no-chatgpt, when: {groups: [kids], providers: [chatgpt]}, action: block}
"""


def test_certificate_siblings_are_decrypted_and_decided_per_request(  # type: ignore[no-untyped-def]
    make_gate, fake_llm: FakeLLM
) -> None:
    with netns() as ns:
        rules = household(bedtime=False, extra=POLICY).replace(
            "  mom-laptop:",
            f"  alice-pc: {{person: alice, ips: [{ns.client_ip}], inspect: tls}}\n  mom-laptop:",
        )
        gate = make_gate(rules, "--mode", "transparent", listen_host=ns.host_ip)
        ca = str(gate.ca)
        with redirect_443(ns, gate.proc.port):
            # an allowed request: the gate sees the certificate api.openai.com is served with
            # (the test certificate also covers example.org, as Google's covers many names)
            assert probe(ns, "https", ns.host_ip, ca).get("status") == 200
            hidden, plain = uuid.uuid4().hex, uuid.uuid4().hex
            # a connection opened for example.org, then used for chatgpt.com
            answer = probe(ns, "https", ns.host_ip, ca, "example.org", "chatgpt.com", hidden)
            assert answer.get("status") == 403, answer
            assert "kids-no-chatgpt" in str(answer["body"])
            answer = probe(ns, "https", ns.host_ip, ca, "example.org", "example.org", plain)
            assert answer.get("status") == 200, answer
        tags = {r.headers.get("x-test-id") for r in fake_llm.requests}
        assert plain in tags and hidden not in tags
        row = gate.rows("device = 'alice-pc' AND host = 'chatgpt.com'")[-1]
        assert (row["rule"], row["allowed"]) == ("kids-no-chatgpt", 0)
