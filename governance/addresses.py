"""Canonical forms of the identifiers devices are matched by: IPs, networks, MAC addresses.

Normalised before storing and before lookup, so "AA-BB-CC-DD-EE-01", "aabb.ccdd.ee01" and
"aa:bb:cc:dd:ee:01" are the same device, as are every spelling of one IPv6 address.
"""

from __future__ import annotations

import ipaddress
import re

_HEX = re.compile(r"[0-9a-f]{12}")


def normalize_mac(value: str) -> str:
    """``aa:bb:cc:dd:ee:ff`` from any common spelling; ValueError otherwise."""
    digits = re.sub(r"[\s:.\-]", "", value.strip().lower())
    if not _HEX.fullmatch(digits):
        raise ValueError(f"{value!r} is not a MAC address (expected six hex pairs)")
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def normalize_ip(value: str) -> str:
    """The canonical text of an IP address; IPv4-mapped IPv6 becomes IPv4; zone ids dropped."""
    text = value.strip().strip("[]").split("%", 1)[0]
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(address)


def try_normalize_ip(value: str) -> str | None:
    try:
        return normalize_ip(value)
    except ValueError:
        return None


def normalize_identifier(value: str) -> str:
    """An allowlist identifier in canonical form: MAC, IP or CIDR; other text lower-cased."""
    text = value.strip()
    try:
        return normalize_mac(text)
    except ValueError:
        pass
    if "/" in text:
        try:
            return str(ipaddress.ip_network(text, strict=False))
        except ValueError:
            pass
    return try_normalize_ip(text) or text.lower()
