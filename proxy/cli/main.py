"""The ``hearthgate`` command: run the gate and administer it.

Every subcommand takes ``--state-dir``, ``--rules`` and ``--database`` (defaults as for
``run``, also from ``HEARTHGATE_STATE_DIR`` / ``HEARTHGATE_RULES`` / ``HEARTHGATE_DATABASE``).
Exit codes: 0 ok, 1 refused or not found, 2 bad input (usage, invalid rules).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from proxy.dns.config import DnsConfig

DEFAULT_RULES = "rules/household.yaml"
DEFAULT_STATE = "./var"
DATABASE_ENV = "HEARTHGATE_DATABASE"  # proxy.store.sql.target.ENV, not imported to parse

Handler = Callable[[argparse.Namespace], int]


# The groups of subcommands, in --help order, and which one registers each top-level command:
# `hearthgate status ...` imports and builds the parsers of its own group alone. A new command
# goes in both (tests/proxy/cli/test_imports.py checks COMMANDS against the whole parser).
GROUPS = ("rules", "state", "log", "dns", "db", "family")
COMMANDS = {
    "rules": "rules",
    **dict.fromkeys(
        ("status", "emergency", "allow", "unlock", "override", "pin", "consent", "admin"), "state"
    ),
    "log": "log",
    "stats": "log",
    "dns": "dns",
    "db": "db",
    **dict.fromkeys(("pause", "resume", "bonus", "report"), "family"),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand; given a top-level ``command`` this module or ``COMMANDS``
    knows, only that command's group (``--help``, typos and the like get everything)."""
    parser = argparse.ArgumentParser(
        prog="hearthgate", description="A household gate for LLM services."
    )
    sub = parser.add_subparsers(metavar="COMMAND")
    if command in ("run", "ca"):
        (_add_run if command == "run" else _add_ca)(sub)
        return parser
    groups = [COMMANDS[command]] if command in COMMANDS else GROUPS
    if command not in COMMANDS:
        _add_run(sub)
        _add_ca(sub)
    for group in groups:
        module = importlib.import_module(f"proxy.cli.{group}")
        if group == "state":  # the largest group: the one command asked for
            module.add(sub, common, command)
        else:
            module.add(sub, common)
    return parser


def common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--rules",
        type=Path,
        default=Path(os.environ.get("HEARTHGATE_RULES", DEFAULT_RULES)),
        help=f"the rules file (default: $HEARTHGATE_RULES or {DEFAULT_RULES})",
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ.get("HEARTHGATE_STATE_DIR", DEFAULT_STATE)),
        help=f"database and CA directory (default: $HEARTHGATE_STATE_DIR or {DEFAULT_STATE})",
    )
    p.add_argument(
        "--database",
        default=os.environ.get(DATABASE_ENV) or None,
        metavar="URL",
        help="sqlite:///PATH or postgresql://USER:PASSWORD@HOST:5432/DBNAME, for several "
        f"gates sharing one database (default: ${DATABASE_ENV} or "
        "sqlite:///<state-dir>/hearthgate.db)",
    )


def _add_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run", help="start the gate", description="Start the proxy, the gate and the admin server."
    )
    common(p)
    p.add_argument("--listen-host", default="0.0.0.0", help="proxy address (default 0.0.0.0)")
    p.add_argument(
        "--listen-port",
        type=int,
        default=8080,
        help="proxy port (default 8080; 0 picks a free one, see run.json)",
    )
    p.add_argument(
        "--mode",
        action="append",
        metavar="SPEC",
        help="mitmproxy mode: regular, transparent, wireguard[:conf][@port] ... "
        "(repeatable; default regular)",
    )
    p.add_argument(
        "--admin",
        default="127.0.0.1:8090",
        metavar="HOST:PORT",
        help="admin API, dashboard, /metrics and /healthz (default 127.0.0.1:8090)",
    )
    p.add_argument(
        "--instance",
        default=os.environ.get("HEARTHGATE_INSTANCE") or None,
        metavar="NAME",
        help="this gate's name in /healthz and the hearthgate_gate_info metric, to tell "
        "gates sharing one database apart (default: $HEARTHGATE_INSTANCE or the host name)",
    )
    p.add_argument(
        "-s",
        dest="scripts",
        action="append",
        default=[],
        metavar="SCRIPT",
        help="extra mitmproxy addon script, as mitmdump -s (repeatable)",
    )
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any mitmproxy option, as mitmdump --set (repeatable)",
    )
    p.add_argument(
        "--dns",
        metavar="[HOST:]PORT",
        help="also run the gate's DNS server (usually 53) and the listeners DNS sends "
        "devices to (443 and 80, on the same host); see README 'DNS mode'",
    )
    p.add_argument(
        "--dns-upstream",
        action="append",
        default=[],
        metavar="ADDR",
        help="resolver for every other name and for the gate's own look-ups, ADDR or "
        "ADDR:PORT (repeatable; default: the system's resolvers; never the gate itself)",
    )
    p.add_argument(
        "--dns-answer",
        action="append",
        default=[],
        metavar="ADDR",
        help="the address catalog names resolve to (repeatable; default: the gate's "
        "address on the interface each query arrived on)",
    )
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from proxy.cli import lean_mitmproxy

    lean_mitmproxy.install()  # before anything imports mitmproxy.addons
    from proxy.service import RunConfig, run
    from proxy.store.sql.target import parse_url
    from proxy.store.writer import queue_limit

    try:
        admin = parse_hostport(args.admin)
    except ValueError as exc:
        print(f"hearthgate: --admin: {exc}", file=sys.stderr)
        return 2
    try:
        queue_limit()
        database = parse_url(args.database or "", args.state_dir)
    except ValueError as exc:
        print(f"hearthgate: {exc}", file=sys.stderr)
        return 2
    try:
        dns = _dns_config(args)
    except ValueError as exc:
        print(f"hearthgate: {exc}", file=sys.stderr)
        return 2
    return run(
        RunConfig(
            rules=args.rules,
            state_dir=args.state_dir,
            database=database,
            **({"instance": args.instance} if args.instance else {}),
            listen_host=args.listen_host,
            listen_port=args.listen_port,
            modes=args.mode or ["regular"],
            admin=admin,
            scripts=args.scripts,
            sets=args.sets,
            dns=dns,
        )
    )


def _dns_config(args: argparse.Namespace) -> DnsConfig | None:
    if args.dns is None:
        if args.dns_upstream or args.dns_answer:
            raise ValueError("--dns-upstream and --dns-answer need --dns [HOST:]PORT")
        return None
    from proxy.dns.config import DnsConfig, parse_listen
    from proxy.dns.records import parse_addresses
    from proxy.dns.upstream import parse_upstream, system_upstreams

    host, port = parse_listen(args.dns)
    try:
        upstreams = [parse_upstream(u) for u in args.dns_upstream] or system_upstreams()
    except ValueError as exc:
        raise ValueError(f"--dns-upstream: {exc}") from None
    try:
        answers = parse_addresses(args.dns_answer) if args.dns_answer else []
    except ValueError as exc:
        raise ValueError(f"--dns-answer: {exc}") from None
    return DnsConfig(host, port, tuple(upstreams), tuple(str(a) for a in answers))


def parse_hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _add_ca(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "ca",
        help="where the CA certificate is and how to install it",
        description="Print the path of the CA certificate devices must trust "
        "for full inspection, with per-OS install steps.",
    )
    common(p)
    p.add_argument("--path-only", action="store_true", help="print only the path")
    p.set_defaults(handler=_ca)


def _ca(args: argparse.Namespace) -> int:
    from proxy.ca import ensure_ca, instructions

    cert = ensure_ca(args.state_dir / "mitmproxy")
    print(cert if args.path_only else instructions(cert))
    return 0


if __name__ == "__main__":
    sys.exit(main())
