"""What the gate learns about LLM services from its own connections to them.

Two things a client can hide behind, learned while the gate talks to catalog hosts:

* **addresses**: where the gate itself reached a catalog host (the answer its resolver gave,
  or the address a transparent client connected to). A connection to such an address that
  names no site at all (a bare IP and no TLS name) is a connection to that service;
* **certificate siblings**: the other names the service's own certificate covers. A browser
  may send requests for ``gemini.google.com`` over a connection it opened for one of them
  (HTTP/2 connection reuse), so in transparent mode such connections are decrypted for
  devices that trust the CA, and each request in them is decided by its own host.

Bounded: at most ``LIMIT`` of each, oldest forgotten first. Pure; no I/O.
"""

from __future__ import annotations

import ipaddress

LIMIT = 4096


class ServiceHints:
    """Addresses and certificate siblings of catalog hosts, by provider name."""

    __slots__ = ("_addresses", "_exact", "_wildcard")

    def __init__(self) -> None:
        self._addresses: dict[tuple[str, int], str] = {}
        self._exact: dict[str, str] = {}
        self._wildcard: dict[str, str] = {}  # "*.suffix" keyed by suffix

    def learn_address(self, ip: str, port: int, provider: str) -> None:
        key = (ip_text(ip), int(port))
        if key[0] and self._addresses.get(key) != provider:
            _put(self._addresses, key, provider)

    def provider_at(self, ip: str, port: int) -> str | None:
        """The provider the gate reached at this address, if any."""
        return self._addresses.get((ip_text(ip), int(port)))

    def learn_names(self, names: list[str], provider: str) -> None:
        """The DNS names of a catalog host's certificate; IP names are skipped."""
        for raw in names:
            name = raw.strip().lower().rstrip(".")
            if not name or ip_text(name):
                continue
            if name.startswith("*."):
                if name[2:].count(".") >= 1:  # never a bare "*.com"
                    _put(self._wildcard, name[2:], provider)
            else:
                _put(self._exact, name, provider)

    def sibling_of(self, name: str | None) -> str | None:
        """The provider whose certificate covers *name* (a wildcard covers one label)."""
        if not name:
            return None
        host = name.strip().lower().rstrip(".")
        found = self._exact.get(host)
        if found is None and "." in host:
            found = self._wildcard.get(host.split(".", 1)[1])
        return found


def _put[K](table: dict[K, str], key: K, value: str) -> None:
    table.pop(key, None)
    table[key] = value
    while len(table) > LIMIT:
        del table[next(iter(table))]


def ip_text(value: str) -> str:
    """*value* as a normalised IP address, or "" when it is not one."""
    try:
        return str(ipaddress.ip_address(value.strip("[]").split("%", 1)[0]))
    except ValueError:
        return ""
