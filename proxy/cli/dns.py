"""``hearthgate dns records``: the catalog as local records for a DNS server the household
already runs (Pi-hole, AdGuard Home, dnsmasq, unbound, a hosts file).

Light on purpose: the catalog and the rules file only, nothing of mitmproxy.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

Common = Callable[[argparse.ArgumentParser], None]
# proxy.dns.records.FORMATS, spelled out so that building the parser imports no catalog
# (tests/proxy/dns/test_records.py checks they agree)
FORMATS = ("pihole", "adguard", "dnsmasq", "unbound", "hosts")


def add(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: Common) -> None:
    group = sub.add_parser(
        "dns",
        help="records that point the LLM services at the gate, for your own DNS server",
        description="DNS mode without the gate's DNS server: records for the DNS server "
        "the household already runs.",
    )
    dsub = group.add_subparsers(metavar="ACTION")
    records = dsub.add_parser(
        "records",
        help="print local DNS records for the catalog hosts",
        description="Print local records that answer every catalog host (built in and "
        "from the rules' providers) with the gate's address. The gate takes the "
        "connections on the listeners of 'run --dns' (e.g. --dns 5353 beside your DNS "
        "server).",
    )
    common(records)
    records.add_argument("--format", required=True, choices=FORMATS, help="the DNS server")
    records.add_argument(
        "--address",
        action="append",
        required=True,
        metavar="GATE_IP",
        help="the gate's address as devices reach it (repeatable: an IPv4 and an IPv6)",
    )
    records.add_argument(
        "--block-doh",
        action="store_true",
        help="also refuse the well-known public DNS-over-HTTPS resolvers (as dns.block_doh)",
    )
    records.set_defaults(handler=_records)

    def _help(_args: argparse.Namespace) -> int:
        group.print_help()
        return 2

    group.set_defaults(handler=_help)


def _records(args: argparse.Namespace) -> int:
    from proxy.catalog.services import catalog_for
    from proxy.dns.records import parse_addresses, render
    from proxy.rules.cache import load_rules
    from proxy.rules.problems import RulesFileError

    try:
        addresses = parse_addresses(args.address)
    except ValueError as exc:
        print(f"hearthgate: --address: {exc}", file=sys.stderr)
        return 2
    try:
        snap = load_rules(args.rules, args.state_dir)
    except RulesFileError as exc:
        print(f"hearthgate: the rules file cannot be used:\n{exc}", file=sys.stderr)
        return 2
    block_doh = args.block_doh or snap.rules.dns.block_doh
    sys.stdout.write(render(args.format, catalog_for(snap).providers, addresses, block_doh))
    return 0
