"""Names the DNS server answers itself instead of forwarding: Firefox's DoH canary, and (with
``dns.block_doh``) the well-known public DNS-over-HTTPS resolvers.

A name matches an entry when it is the entry or any name below it (``x.dns.nextdns.io``).
"""

from __future__ import annotations

# Firefox turns its default DNS-over-HTTPS off when this name does not resolve (NXDOMAIN),
# so it keeps using the household's DNS, and with it the gate.
CANARY = "use-application-dns.net"

# Public resolvers a browser or app can be pointed at to bypass the household's DNS.
# Sources: the curl project's list of public DoH servers, Firefox's and Chrome's built-in
# providers, and Apple's documented way to make iCloud Private Relay step aside (mask*).
DOH_RESOLVERS: tuple[str, ...] = (
    "dns.google", "dns.google.com", "dns64.dns.google", "8888.google",
    "cloudflare-dns.com", "one.one.one.one", "1dot1dot1dot1.cloudflare-dns.com",
    "dns.quad9.net", "dns9.quad9.net", "dns10.quad9.net", "dns11.quad9.net",
    "dns.adguard.com", "dns-family.adguard.com", "dns-unfiltered.adguard.com",
    "adguard-dns.com", "doh.opendns.com", "dns.opendns.com", "doh.familyshield.opendns.com",
    "doh.cleanbrowsing.org", "doh.xfinity.com", "dns.nextdns.io", "doh.mullvad.net",
    "dns.mullvad.net", "doh.dns.sb", "dns.twnic.tw", "doh.libredns.gr", "dns.alidns.com",
    "doh.pub", "dns.controld.com", "freedns.controld.com", "doh.applied-privacy.net",
    "dns0.eu", "ordns.he.net", "dns.switch.ch", "doh.ffmuc.net", "dns.digitale-gesellschaft.ch",
    "doh.360.cn", "dns.rabbitdns.org", "mask.icloud.com", "mask-h2.icloud.com",
)  # fmt: skip


def clean(name: str) -> str:
    return name.strip().lower().rstrip(".")


def _under(name: str, entries: frozenset[str]) -> bool:
    labels = name.split(".")
    return any(".".join(labels[i:]) in entries for i in range(len(labels)))


_DOH = frozenset(DOH_RESOLVERS)
_CANARY = frozenset({CANARY})


def is_canary(name: str) -> bool:
    return _under(clean(name), _CANARY)


def is_doh_resolver(name: str) -> bool:
    return _under(clean(name), _DOH)
