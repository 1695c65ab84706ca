"""``hearthgate rules check|show|schema``: the rules file from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from proxy.cli.common import Common, Sub, json_option
from proxy.cli.log import CATEGORIES


def add(sub: Sub, common: Common) -> None:
    rules = sub.add_parser(
        "rules",
        help="check, show or describe the rules file",
        description="Work with the rules file.",
    )
    rsub = rules.add_subparsers(metavar="ACTION")
    check = rsub.add_parser(
        "check",
        help="validate a rules file without running",
        description="Validate a rules file. Exit 0 when usable, 2 when "
        "not; problems are printed as file:line:column.",
    )
    common(check)
    check.add_argument("path", nargs="?", type=Path, help="file to check (default --rules)")
    check.set_defaults(handler=_check)
    show = rsub.add_parser(
        "show",
        help="print the rules as loaded, with every default",
        description="Print the effective rules (defaults filled in).",
    )
    common(show)
    json_option(show)
    show.set_defaults(handler=_show)
    schema = rsub.add_parser(
        "schema",
        help="print the JSON Schema of the rules file",
        description="Print the JSON Schema editors use to check the "
        "rules file (kept in rules/schema.json).",
    )
    schema.set_defaults(handler=_schema)
    providers = rsub.add_parser(
        "providers",
        help="list the LLM services the gate recognises",
        description="The built-in catalog of AI services plus the rules file's "
        "`providers`: name, category, API shape, hosts; with --json also the display name, "
        "the note on what a host-level rule covers and the documentation checked.",
    )
    common(providers)
    json_option(providers)
    providers.add_argument(
        "--category",
        choices=CATEGORIES,
        help="only the services of this category",
    )
    providers.set_defaults(handler=_providers)
    from proxy.cli.log import add_explain

    add_explain(rsub, common)

    def _help(_args: argparse.Namespace) -> int:
        rules.print_help()
        return 2

    rules.set_defaults(handler=_help)


def _check(args: argparse.Namespace) -> int:
    from proxy.rules.cache import load_rules
    from proxy.rules.lint import warnings_for
    from proxy.rules.problems import RulesFileError

    path = args.path or args.rules
    try:
        snap = load_rules(path, args.state_dir)
    except RulesFileError as exc:
        print(exc, file=sys.stderr)
        print(
            f"{path}: {len(exc.file_problems)} problem(s); the file cannot be used", file=sys.stderr
        )
        return 2
    for warning in warnings_for(snap):
        print(f"{path}: warning: {warning}", file=sys.stderr)
    r = snap.rules
    print(
        f"{path}: ok — {len(r.devices)} devices, {len(r.people)} people, {len(r.groups)} "
        f"groups, {len(r.time_rules)} time rules, {len(r.policies)} policies, "
        f"{len(r.allowlist)} allowlist entries; mode {r.settings.mode}, zone "
        f"{r.settings.timezone}"
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    from proxy.rules.cache import load_shown
    from proxy.rules.problems import RulesFileError

    try:
        data = load_shown(args.rules, args.state_dir)
    except RulesFileError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    print(yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True), end="")
    return 0


def _providers(args: argparse.Namespace) -> int:
    from proxy.catalog.services import catalog_for
    from proxy.rules.cache import load_rules
    from proxy.rules.problems import RulesFileError

    try:
        catalog = catalog_for(load_rules(args.rules, args.state_dir))
    except RulesFileError as exc:
        print(exc, file=sys.stderr)
        return 2
    chosen = [p for p in catalog.providers if args.category in (None, p.category)]
    if args.json:
        items = [
            {
                "name": p.name,
                "display": p.title,
                "category": p.category,
                "api": p.api,
                "hosts": list(p.hosts),
                "dns_names": list(p.dns_names),
                "note": p.note,
                "docs": list(p.docs),
            }
            for p in chosen
        ]
        print(json.dumps(items, indent=2))
        return 0
    width = max((len(p.name) for p in chosen), default=4)
    for p in chosen:
        hosts = ", ".join(p.hosts) or "(no host of its own: see --json note)"
        print(f"{p.name:<{width}}  {p.category:<9}  {p.api:<9}  {hosts}")
    return 0


# what the schema is made of: a change to any of them is a new stamp, so a packaged schema
# that was written before it is not printed (tests/proxy/rules/test_loader.py keeps the
# committed copies current)
SCHEMA_SOURCES = (
    "governance/schema.py",
    "governance/facts.py",
    "governance/addresses.py",
    "proxy/catalog/services.yaml",
)
PACKAGED_SCHEMA = Path(__file__).resolve().parents[1] / "rules" / "schema.json"


def _schema(_args: argparse.Namespace) -> int:
    """The packaged schema when it was made from these sources (pydantic builds the models'
    schema in about a third of a second on a slow box), else made now."""
    try:
        text = PACKAGED_SCHEMA.read_text(encoding="utf-8")
    except OSError:
        text = ""
    if schema_stamp() not in text:
        text = json.dumps(schema_document(), indent=2) + "\n"
    sys.stdout.write(text)
    return 0


def schema_stamp() -> str:
    import hashlib

    root = Path(__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for name in SCHEMA_SOURCES:
        digest.update((root / name).read_bytes())
    return f"sources sha256:{digest.hexdigest()[:32]}"


def schema_document() -> dict[str, object]:
    """The rules file's JSON Schema, with the built-in catalog's service names as the
    suggestions for ``when.providers`` and ``providers[].name`` (from services.yaml)."""
    from governance.schema import Rules
    from proxy.catalog.services import builtin_providers

    doc = Rules.model_json_schema()
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["title"] = "hearthgate rules file"
    doc["$comment"] = f"written by `hearthgate rules schema` (make schema); {schema_stamp()}"
    names = [p.name for p in builtin_providers()]
    defs = doc["$defs"]
    defs["When"]["properties"]["providers"]["items"]["examples"] = names
    defs["When"]["properties"]["providers"]["description"] = (
        "Service names: the built-in catalog (`hearthgate rules providers`) or this file's "
        "`providers`."
    )
    defs["ProviderDef"]["properties"]["name"]["examples"] = names
    return doc
