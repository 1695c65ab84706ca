"""A small authoritative-looking DNS server for tests, run inside a network namespace.

usage: fakedns.py ADDRESS PORT ZONE_JSON LOG_FILE [FORWARD_TO]

ZONE_JSON maps "name TYPE" to a list of answers: an address for A/AAAA, or for HTTPS an
object ``{"alpn": [...], "ech": "base64", "ipv4hint": "a.b.c.d"}``, and ``{"cname": NAME}``
starts a chain (the records after it are named NAME); TTLs are 4321 so a test
can tell an answer passed on unchanged. Any other name gets NXDOMAIN. Every query is
appended to LOG_FILE as "name TYPE"; "ready" is written once the socket is bound. With
FORWARD_TO (an address), every query is instead passed on there and its answer relayed, as a
router whose own upstream is set to the gate does.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import socket
import sys

from mitmproxy import dns
from mitmproxy.net.dns import https_records, response_codes, types

TTL = 4321


def https_record(spec: dict[str, object]) -> https_records.HTTPSRecord:
    params: dict[int, bytes] = {}
    alpn = [str(a).encode() for a in spec.get("alpn", [])]  # type: ignore[attr-defined]
    if alpn:
        params[https_records.SVCParamKeys.ALPN.value] = b"".join(bytes([len(a)]) + a for a in alpn)
    if "ech" in spec:
        params[https_records.SVCParamKeys.ECH.value] = base64.b64decode(str(spec["ech"]))
    if "ipv4hint" in spec:
        hint = ipaddress.IPv4Address(str(spec["ipv4hint"])).packed
        params[https_records.SVCParamKeys.IPV4HINT.value] = hint
    return https_records.HTTPSRecord(1, "", params)


def answer(zone: dict[str, list[object]], request: dns.DNSMessage) -> dns.DNSMessage:
    q = request.question
    assert q is not None
    found = zone.get(f"{q.name.lower()} {types.to_str(q.type)}")
    if found is None:
        known = any(key.split()[0] == q.name.lower() for key in zone)
        return request.succeed([]) if known else request.fail(response_codes.NXDOMAIN)
    records = []
    name = q.name
    for item in found:
        if isinstance(item, dict) and "cname" in item:  # a chain: later records name its end
            records.append(dns.ResourceRecord.CNAME(name, str(item["cname"]), ttl=TTL))
            name = str(item["cname"])
        elif q.type == types.A:
            records.append(dns.ResourceRecord.A(name, ipaddress.IPv4Address(item), ttl=TTL))
        elif q.type == types.AAAA:
            records.append(dns.ResourceRecord.AAAA(q.name, ipaddress.IPv6Address(item), ttl=TTL))
        elif q.type == types.HTTPS:
            record = https_record(item)  # type: ignore[arg-type]
            records.append(dns.ResourceRecord.HTTPS(q.name, record, ttl=TTL))
    return request.succeed(records)


def relay(data: bytes, target: str) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.sendto(data, (target, 53))
        return s.recv(65535)


def main() -> None:
    address, port, zone_file, log_file = sys.argv[1:5]
    forward = sys.argv[5] if len(sys.argv) > 5 else None
    with open(zone_file) as f:
        zone = json.load(f)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, int(port)))
    with open(log_file, "a", buffering=1) as log:
        log.write("ready\n")
        while True:
            data, peer = sock.recvfrom(65535)
            try:
                request = dns.DNSMessage.unpack(data)
                q = request.question
                log.write(f"{q.name if q else '-'} {types.to_str(q.type) if q else '-'}\n")
                reply = relay(data, forward) if forward else answer(zone, request).packed
                sock.sendto(reply, peer)
            except Exception as exc:  # noqa: BLE001 - a test server keeps serving
                log.write(f"error {exc!r}\n")


if __name__ == "__main__":
    main()
