"""Run inside a test namespace as a device behind a transparent gate (no proxy settings):
connect straight to the "service" address, with the real host name as SNI.

usage: nsprobe.py https ADDRESS CA_FILE [SNI HOST TAG]
                                          -> {"status": ..., "body": ...} or {"error": ...}
       nsprobe.py handshake ADDRESS       -> {"certificate": bool, "error": ...}

With SNI and HOST the TLS name and the Host header differ, as when a browser reuses an
HTTP/2 connection opened for one name (SNI) for another name its certificate covers (HOST);
TAG goes out as the ``x-test-id`` header.
"""

from __future__ import annotations

import json
import socket
import ssl
import sys

import httpx

HOST = "api.openai.com"


def https(
    address: str, ca: str, sni: str = HOST, host: str = HOST, tag: str = ""
) -> dict[str, object]:
    try:
        with httpx.Client(verify=ca, trust_env=False, timeout=10) as client:
            r = client.post(
                f"https://{address}/v1/chat/completions",
                headers={"host": host, "x-test-id": tag},
                extensions={"sni_hostname": sni},
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            )
        return {"status": r.status_code, "body": r.text[:500]}
    except httpx.HTTPError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def handshake(address: str) -> dict[str, object]:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    try:
        with (
            socket.create_connection((address, 443), timeout=10) as raw,
            ctx.wrap_socket(raw, server_hostname=HOST) as tls,
        ):
            return {"certificate": tls.getpeercert(binary_form=True) is not None}
    except (OSError, ssl.SSLError) as exc:
        return {"certificate": False, "error": f"{type(exc).__name__}: {exc}"}


if __name__ == "__main__":
    mode, address = sys.argv[1], sys.argv[2]
    print(json.dumps(https(address, *sys.argv[3:]) if mode == "https" else handshake(address)))
