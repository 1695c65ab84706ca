"""``log``, ``stats`` and ``rules explain``: reading what happened and what would happen."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from proxy.cli.common import (
    Common,
    Sub,
    emit,
    guarded,
    json_option,
    parse_when,
    table,
    utc_now,
    write_csv,
)

if TYPE_CHECKING:
    from governance.snapshot import Snapshot
    from proxy.store.db import Db

# governance.facts.Endpoint's values (tests/proxy/cli/test_imports.py checks they agree)
ENDPOINTS = (
    "chat",
    "completions",
    "responses",
    "embeddings",
    "images",
    "audio",
    "realtime",
    "files",
    "other",
    "web-app",
)
# governance.facts.Category's values (tests/proxy/cli/test_imports.py checks they agree)
CATEGORIES = (
    "api",
    "assistant",
    "companion",
    "homework",
    "search",
    "image",
    "video",
    "music",
    "coding",
)
LOG_VIEW = [
    "ts",
    "device",
    "provider",
    "category",
    "model",
    "stage",
    "rule",
    "action",
    "status",
    "tokens_in",
    "tokens_out",
    "reason",
]


def add(sub: Sub, common: Common) -> None:
    log = sub.add_parser(
        "log",
        help="the decision log, newest first",
        description="Decisions, newest first, with filters.",
    )
    common(log)
    json_option(log)
    log.add_argument("--csv", action="store_true", help="CSV with every column")
    for name in ("device", "person", "provider"):
        log.add_argument(f"--{name}", help=f"only this {name}")
    log.add_argument(
        "--category", choices=CATEGORIES, help="only services of this category (the catalog's)"
    )
    log.add_argument("--blocked", action="store_true", help="only blocked (or would-block)")
    log.add_argument("--since", help="2026-11-20, 2026-11-20T21:00, 22:00, or 2h / 7d ago")
    log.add_argument("--limit", type=int, default=50, help="rows (default 50)")
    log.set_defaults(handler=guarded(_log))
    stats = sub.add_parser(
        "stats",
        help="totals, allow rate, by stage/device/provider/category",
        description="Decision statistics over a period.",
    )
    common(stats)
    json_option(stats)
    stats.add_argument("--since", default="24h", help="start of the period (default 24h)")
    stats.set_defaults(handler=guarded(_stats))


def _log(args: argparse.Namespace, db: Db, snap: Snapshot) -> int:
    from proxy.catalog.services import catalog_for
    from proxy.store import queries

    catalog = catalog_for(snap)
    since = parse_when(args.since, snap.zone, utc_now()) if args.since else None
    rows = queries.decisions(
        db,
        queries.LogFilter(
            device=args.device,
            person=args.person,
            provider=args.provider,
            providers=catalog.names_in(args.category) if args.category else None,
            blocked=args.blocked,
            since=since,
            limit=args.limit,
        ),
        catalog.categories(),
    )
    if args.csv:
        return write_csv(rows, list(rows[0]) if rows else ["id"])
    return emit(args, rows, lambda: table(rows, LOG_VIEW))


def _stats(args: argparse.Namespace, db: Db, snap: Snapshot) -> int:
    from proxy.catalog.services import catalog_for
    from proxy.store import queries

    since = parse_when(args.since, snap.zone, utc_now())
    data = queries.statistics(db, since, catalog_for(snap).categories())
    return emit(args, data, lambda: _stats_text(data))


def _stats_text(data: dict[str, object]) -> str:
    rate = data["allow_rate"]
    mean, p95 = data["avg_decision_us"], data["p95_decision_us"]
    lines = [
        f"since {data['since']}",  # alone on its line: shown in local time
        f"{data['total']} decisions, {data['allowed']} allowed, {data['blocked']} blocked"
        + (
            f" ({float(rate):.1%} allowed)"  # type: ignore[arg-type]
            if rate is not None
            else ""
        ),
        f"decision time: mean {mean} µs, p95 {p95} µs" if mean is not None else "",
    ]
    lines = [line for line in lines if line]
    for dim in ("stage", "device", "provider", "category"):
        groups = data[f"by_{dim}"]
        assert isinstance(groups, dict)
        parts = [f"{k} {v['total']} ({v['blocked']} blocked)" for k, v in groups.items()]
        lines.append(f"by {dim}: " + (", ".join(parts) or "-"))
    return "\n".join(lines)


def add_explain(rsub: Sub, common: Common) -> None:
    p = rsub.add_parser(
        "explain",
        help="what each stage would say about a request",
        description="Print each stage's verdict for a hypothetical request, "
        "with the current rules and runtime state.",
    )
    common(p)
    json_option(p)
    p.add_argument("--device", required=True, help="device name, or an IP address")
    p.add_argument("--at", help="when (default now; naive times are in the rules' zone)")
    p.add_argument("--host", default="api.openai.com", help="default api.openai.com")
    p.add_argument("--model", help="model name, e.g. gpt-4o")
    p.add_argument("--prompt", help="prompt text")
    p.add_argument("--endpoint", default="chat", choices=ENDPOINTS)
    p.add_argument("--user", help="proxy-auth user name")
    p.set_defaults(handler=guarded(_explain))


def _explain(args: argparse.Namespace, db: Db, snap: Snapshot) -> int:
    from proxy.rules import explain
    from proxy.store.live import read_runtime_state

    now = utc_now()
    at = (parse_when(args.at, snap.zone, now) if args.at else now).astimezone(snap.zone)
    facts = explain.hypothetical(
        snap, args.device, args.host, args.model, args.prompt, args.endpoint, args.user
    )
    state = read_runtime_state(db.target, now, snap.zone)
    state = explain.as_of(state, at, now)
    verdicts = explain.explain(snap, state, facts, at)
    final = explain.evaluate(snap, state, facts, at)
    stages = [
        {
            "stage": name,
            "verdict": d.action.value if d else None,
            "rule": d.rule if d else None,
            "reason": d.reason if d else "no opinion",
        }
        for name, d in verdicts
    ]
    data = {
        "at": at.isoformat(),
        "stages": stages,
        "decision": {
            "stage": final.stage.value,
            "action": final.action.value,
            "reason": final.reason,
        },
    }
    lines = [f"{args.device} at {at:%a %Y-%m-%d %H:%M %Z} -> {args.host}"]
    for item in stages:
        verdict = item["verdict"] or "-"
        lines.append(f"  {item['stage']:<34} {verdict:<6} {item['reason']}")
    lines.append(f"decision: {final.action.value} ({final.stage.value}): {final.reason}")
    return emit(args, data, lambda: "\n".join(lines))
