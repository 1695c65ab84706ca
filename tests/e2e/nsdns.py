"""Run inside a test namespace as a device whose resolver is the gate (or on the host).

usage: nsdns.py query SERVER[:PORT] NAME TYPE        -> {"rcode", "answers": [...]}
       nsdns.py openai | openai-stream | anthropic  -> what the official SDK saw
       nsdns.py handshake NAME [ADDR]               -> {"certificate": bool, "error": ...}
       nsdns.py http NAME                           -> {"status", "body"} of a plain-HTTP chat
       nsdns.py resolve NAME                        -> {"addresses": [...]} (the system's way)

The SDK modes use no proxy at all: the name resolves through the namespace's resolv.conf
(the gate) and the connection goes where DNS sent it. CA file: $HEARTHGATE_TEST_CA.
"""

from __future__ import annotations

import json
import os
import random
import socket
import ssl
import sys
from typing import Any

from mitmproxy import dns
from mitmproxy.net.dns import classes, types

PROMPT = [{"role": "user", "content": "hi"}]


def query(server: str, name: str, qtype: str) -> dict[str, Any]:
    host, _, port = server.partition(":")
    message = dns.DNSMessage(
        random.randrange(1 << 16), True, 0, False, False, True, False, 0, 0,
        [dns.Question(name, types.from_str(qtype), classes.IN)], [], [], [],
    )  # fmt: skip
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(message.packed, (host, int(port or 53)))
        answer = dns.DNSMessage.unpack(s.recv(65535))
    return {
        "rcode": answer.response_code,
        "answers": [
            {
                "name": r.name,
                "type": types.to_str(r.type),
                "ttl": r.ttl,
                "data": r.to_json()["data"],
                "ech": r.https_ech if r.type == types.HTTPS else None,
                "alpn": [a.decode() for a in r.https_alpn or ()] if r.type == types.HTTPS else None,
            }
            for r in answer.answers
        ],
    }


def openai_chat(stream: bool) -> dict[str, Any]:
    import httpx
    import openai

    client = openai.OpenAI(
        api_key="sk-test-secret",
        max_retries=0,
        timeout=15,
        http_client=httpx.Client(verify=os.environ["HEARTHGATE_TEST_CA"], trust_env=False),
    )
    try:
        if stream:
            chunks = client.chat.completions.create(
                model="gpt-4o-mini", messages=PROMPT, stream=True
            )
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            return {"allowed": True, "text": text}
        done = client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
        return {"allowed": True, "text": done.choices[0].message.content}
    except openai.PermissionDeniedError as exc:
        return {"allowed": False, "error": type(exc).__name__, "message": str(exc)}


def anthropic_chat() -> dict[str, Any]:
    import anthropic
    import httpx2

    client = anthropic.Anthropic(
        api_key="sk-ant-test-secret",
        max_retries=0,
        http_client=httpx2.Client(verify=os.environ["HEARTHGATE_TEST_CA"], trust_env=False),
    )
    try:
        done = client.messages.create(
            model="claude-3-5-haiku-latest", max_tokens=50, messages=PROMPT
        )
        return {"allowed": True, "text": done.content[0].text}  # type: ignore[union-attr]
    except anthropic.PermissionDeniedError as exc:
        return {"allowed": False, "error": type(exc).__name__, "message": str(exc)}


def plain_http(name: str) -> dict[str, Any]:
    import httpx

    try:
        r = httpx.post(
            f"http://{name}/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": PROMPT},
            timeout=15,
            trust_env=False,
        )
    except httpx.HTTPError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"status": r.status_code, "body": r.text[:500]}


def handshake(name: str, address: str | None = None) -> dict[str, Any]:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    try:
        with (
            socket.create_connection((address or name, 443), timeout=10) as raw,
            ctx.wrap_socket(raw, server_hostname=name) as tls,
        ):
            return {"certificate": tls.getpeercert(binary_form=True) is not None}
    except (OSError, ssl.SSLError) as exc:
        return {"certificate": False, "error": f"{type(exc).__name__}: {exc}"}


def main(argv: list[str]) -> dict[str, Any]:
    match argv:
        case ["query", server, name, qtype]:
            return query(server, name, qtype)
        case ["openai"]:
            return openai_chat(stream=False)
        case ["openai-stream"]:
            return openai_chat(stream=True)
        case ["anthropic"]:
            return anthropic_chat()
        case ["handshake", name, *address]:
            return handshake(name, *address[:1])
        case ["http", name]:
            return plain_http(name)
        case ["resolve", name]:
            infos = socket.getaddrinfo(name, 443, type=socket.SOCK_STREAM)
            return {"addresses": sorted({info[4][0] for info in infos})}
    raise SystemExit(__doc__)


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
