"""``hearthgate dns records``: the catalog as local records for a household's own DNS server.

Every format points the catalog hosts (built in and from the rules) at the gate's addresses,
and gives no other address for them: a name with only an IPv4 answer gets an empty answer
for AAAA (and HTTPS), never the service's real IPv6 address, which would bypass the gate.
Names are generated from the catalog, so the records never drift from what the gate serves.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Protocol

from proxy.catalog.hosts import parse_host
from proxy.dns.names import CANARY, DOH_RESOLVERS

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
FORMATS = ("pihole", "adguard", "dnsmasq", "unbound", "hosts")


class HasHosts(Protocol):
    @property
    def hosts(self) -> Sequence[str]: ...

    @property
    def dns_names(self) -> Sequence[str]: ...


def parse_addresses(texts: Iterable[str]) -> list[Address]:
    """The gate's addresses; ValueError naming one that cannot be a place to send devices."""
    found: list[Address] = []
    for text in texts:
        try:
            addr = ipaddress.ip_address(text.strip().strip("[]"))
        except ValueError:
            raise ValueError(f"{text!r} is not an IPv4 or IPv6 address") from None
        if addr.is_unspecified or addr.is_multicast:
            raise ValueError(f"{text!r} cannot be the gate's address")
        if addr not in found:
            found.append(addr)
    if not found:
        raise ValueError("give the gate's address with --address (IPv4, IPv6 or both)")
    return found


def split_hosts(providers: Iterable[HasHosts]) -> tuple[list[str], list[str], list[str]]:
    """(exact names, ``*.suffix`` suffixes, patterns no local record can express), sorted.

    A pattern with a ``*`` inside a label (``*-aiplatform.googleapis.com``) is written as
    the names its catalog entry lists in ``dns_names``; the pattern itself is named in a
    comment, since the gate's own DNS server answers every name it stands for.
    """
    exact: set[str] = set()
    suffixes: set[str] = set()
    other: set[str] = set()
    for provider in providers:
        specs = [parse_host(host) for host in provider.hosts]
        for spec in specs:
            if spec.kind == "exact":
                exact.add(spec.anchor)
            elif spec.kind == "suffix":
                suffixes.add(spec.anchor)
            else:
                other.add(spec.text)
        patterns = [spec for spec in specs if spec.kind == "pattern"]
        exact.update(n for n in provider.dns_names if any(p.matches(n) for p in patterns))
    return sorted(exact), sorted(suffixes), sorted(other)


def render(
    fmt: str, providers: Iterable[HasHosts], addresses: Sequence[Address], block_doh: bool = False
) -> str:
    exact, suffixes, other = split_hosts(providers)
    lines = [f"# hearthgate: LLM services -> the gate ({', '.join(map(str, addresses))})"]
    lines += _RENDER[fmt](exact, suffixes, addresses, block_doh)
    if other:
        lines.append("# these catalog patterns are written above as the names they usually")
        lines.append("# stand for; the gate's own DNS server (run --dns) answers every one:")
        lines += [f"#   {host}" for host in other]
    return "\n".join(lines) + "\n"


def _kind(addr: Address) -> str:
    return "A" if addr.version == 4 else "AAAA"


def _hosts_lines(exact: list[str], addresses: Sequence[Address]) -> list[str]:
    return [f"{addr} {host}" for host in exact for addr in addresses]


def _pihole(
    exact: list[str], suffixes: list[str], addresses: Sequence[Address], block_doh: bool
) -> list[str]:
    lines = [
        "# Pi-hole Local DNS Records (Settings > Local DNS > DNS Records, or one line each",
        "# in /etc/pihole/custom.list on Pi-hole 5, dns.hosts in /etc/pihole/pihole.toml on 6).",
        "# Pi-hole already answers Firefox's DoH canary (use-application-dns.net) itself.",
        *_hosts_lines(exact, addresses),
    ]
    if suffixes:
        lines.append("# Wildcard hosts do not fit Local DNS Records; for them put these lines in")
        lines.append("# /etc/dnsmasq.d/99-hearthgate.conf (Pi-hole 6: misc.etc_dnsmasq_d = true):")
        lines += [f"#   {line}" for line in _dnsmasq_wildcards(suffixes, addresses)]
    if block_doh:
        lines.append("# Public DoH resolvers: add these domains to Domains > Deny (exact):")
        lines += [f"#   {name}" for name in DOH_RESOLVERS]
    return lines


def _adguard(
    exact: list[str], suffixes: list[str], addresses: Sequence[Address], block_doh: bool
) -> list[str]:
    lines = [
        "# AdGuard Home DNS rewrites (Filters > DNS rewrites), or in AdGuardHome.yaml:",
        "filtering:",
        "  rewrites:",
    ]
    for name in [*exact, *(f"*.{s}" for s in suffixes)]:
        for addr in addresses:
            lines += [f"    - domain: '{name}'", f"      answer: '{addr}'"]
    lines.append("# and under Filters > Custom filtering rules, so Firefox keeps this DNS:")
    lines.append(f"#   ||{CANARY}^")
    if block_doh:
        lines += [f"#   ||{name}^" for name in DOH_RESOLVERS]
    return lines


def _dnsmasq_wildcards(suffixes: list[str], addresses: Sequence[Address]) -> list[str]:
    # address= alone forwards the other record types (dnsmasq >= 2.86), which would hand out
    # the service's real IPv6 address; local= answers them with no data instead.
    lines = [f"address=/{s}/{addr}" for s in suffixes for addr in addresses]
    return lines + [f"local=/{s}/" for s in suffixes]


def _dnsmasq(
    exact: list[str], suffixes: list[str], addresses: Sequence[Address], block_doh: bool
) -> list[str]:
    lines = ["# dnsmasq: a file in /etc/dnsmasq.d/ (or lines of dnsmasq.conf); restart dnsmasq"]
    lines += [f"host-record={host},{addr}" for host in exact for addr in addresses]
    lines += _dnsmasq_wildcards(suffixes, addresses)
    lines.append(f"address=/{CANARY}/")
    if block_doh:
        lines += [f"address=/{name}/" for name in DOH_RESOLVERS]
    return lines


def _unbound(
    exact: list[str], suffixes: list[str], addresses: Sequence[Address], block_doh: bool
) -> list[str]:
    lines = ["# unbound: in a server: clause (e.g. /etc/unbound/unbound.conf.d/hearthgate.conf)"]
    lines.append("server:")
    for host in exact:
        lines += [f'  local-data: "{host}. 300 IN {_kind(a)} {a}"' for a in addresses]
    for suffix in suffixes:
        lines.append(f'  local-zone: "{suffix}." redirect')
        lines += [f'  local-data: "{suffix}. 300 IN {_kind(a)} {a}"' for a in addresses]
    lines.append(f'  local-zone: "{CANARY}." always_nxdomain')
    if block_doh:
        lines += [f'  local-zone: "{name}." always_nxdomain' for name in DOH_RESOLVERS]
    return lines


def _hosts(
    exact: list[str], suffixes: list[str], addresses: Sequence[Address], block_doh: bool
) -> list[str]:
    lines = ["# hosts file lines (/etc/hosts, C:\\Windows\\System32\\drivers\\etc\\hosts)"]
    lines += _hosts_lines(exact, addresses)
    if suffixes:
        lines.append("# a hosts file has no wildcards; not covered here:")
        lines += [f"#   *.{s}" for s in suffixes]
    if block_doh:
        lines += [f"0.0.0.0 {name}" for name in DOH_RESOLVERS]
    return lines


_RENDER = {
    "pihole": _pihole,
    "adguard": _adguard,
    "dnsmasq": _dnsmasq,
    "unbound": _unbound,
    "hosts": _hosts,
}
