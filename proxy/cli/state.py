"""``emergency``, ``allow``, ``unlock``, ``override``, ``pin``, ``consent`` subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proxy.cli.common import (
    Common,
    Handler,
    Sub,
    actor_of,
    actor_option,
    emit,
    guarded,
    json_option,
    table,
    utc_now,
)

if TYPE_CHECKING:
    from governance.snapshot import Snapshot
    from proxy.store.db import Db

Payload = Callable[[argparse.Namespace], dict[str, object]]
# proxy.store.allowlist.ENTRY_TYPES and proxy.store.admins.ROLES, spelled out so that
# building the parser imports neither (tests/proxy/cli/test_imports.py checks they agree)
ENTRY_TYPES = ("device", "mac", "user", "cidr")
ROLES = ("parent", "viewer")
CHANGE_TYPES = ("emergency", "allowlist", "unlock", "time_rule", "pause", "bonus")


def add(sub: Sub, common: Common, command: str | None = None) -> None:
    """The group's parsers; given one of its ``command``s, that command's alone (building
    all 19 costs a state command about 15 ms on a slow box)."""
    for name, register in _COMMANDS.items():
        if command in (None, name):
            register(sub, common)


def _status_parser(sub: Sub, common: Common) -> None:
    status = _parser(
        sub,
        common,
        "status",
        "the household right now: mode, emergency, unlocks, allowlist, pending approvals",
        json=True,
    )
    status.set_defaults(handler=guarded(_status))


def _pin_parser(sub: Sub, _common: Common) -> None:
    _pin(sub)


def _parser(
    sub: Sub, common: Common, name: str, help_text: str, *, actor: bool = False, json: bool = False
) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    common(p)
    if actor:
        actor_option(p)
    if json:
        json_option(p)
    return p


def _emergency(sub: Sub, common: Common) -> None:
    group = sub.add_parser(
        "emergency",
        help="let every request through for a while",
        description="The emergency override allows every LLM request, on "
        "every device, for 1-1440 minutes.",
    )
    esub = group.add_subparsers(metavar="ACTION")
    on = _parser(esub, common, "on", "switch the emergency override on", actor=True, json=True)
    on.add_argument("--minutes", type=int, default=60, help="1-1440 (default 60)")
    on.add_argument("--reason", required=True, help="why (required, shown in the log)")
    on.set_defaults(
        handler=_change(
            "emergency",
            lambda a: {"op": "on", "duration_minutes": a.minutes, "reason": a.reason},
        )
    )
    ext = _parser(
        esub, common, "extend", "make the active emergency last longer", actor=True, json=True
    )
    ext.add_argument("--minutes", type=int, required=True, help="additional minutes (> 0)")
    ext.set_defaults(
        handler=_change("emergency", lambda a: {"op": "extend", "additional_minutes": a.minutes})
    )
    off = _parser(esub, common, "off", "switch the emergency override off", actor=True, json=True)
    off.set_defaults(handler=_change("emergency", lambda a: {"op": "off"}))
    status = _parser(esub, common, "status", "is an emergency override on?", json=True)
    status.set_defaults(handler=guarded(_emergency_status))
    hist = _parser(esub, common, "history", "past emergency overrides, newest first", json=True)
    hist.add_argument("--limit", type=int, default=20)
    hist.set_defaults(handler=guarded(_emergency_history))


def _change(kind: str, payload: Payload) -> Handler:
    """A handler that asks for one change (consent may hold it) and prints the result."""

    def body(args: argparse.Namespace, db: Db, snap: Snapshot) -> int:
        from proxy.store import changes

        return _show(
            args, changes.perform(db, snap, actor_of(args), kind, payload(args), utc_now())
        )

    return guarded(body)


def _emergency_history(args: argparse.Namespace, db: Db, snap: Snapshot) -> int:
    from proxy.store import emergency

    rows = emergency.history(db, args.limit)
    columns = ["id", "activated_at", "until", "activated_by", "reason", "deactivated_by"]
    return emit(args, rows, lambda: table(rows, columns))


def _status(args: argparse.Namespace, db: Db, snap: Snapshot) -> int:
    from proxy.store import allowlist, consent, emergency, overrides

    now = utc_now()
    settings = snap.rules.settings
    active = emergency.status(db, now)
    unlocks = overrides.active_unlocks(db, now)
    entries = allowlist.entries(db, now)
    waiting = consent.pending(db, now)
    dns = dns_status(args.state_dir)
    data = {
        "mode": settings.mode,
        "timezone": settings.timezone,
        "rules_version": snap.version,
        "emergency": active,
        "unlocks": unlocks,
        "allowlist": entries,
        "pending_consent": waiting,
        "dns": dns,
    }

    def text() -> str:
        e = active
        lines = [
            f"mode {settings.mode}, zone {settings.timezone}, rules {snap.version}",
            "emergency: "
            + (f"ON until {e['until']} by {e['activated_by']} ({e['reason']})" if e else "off"),
            "unlocked devices: "
            + (", ".join(f"{u['device']} until {u['until']}" for u in unlocks) or "none"),
            f"runtime allowlist entries: {len(entries)}",
            f"changes waiting for approval: {len(waiting)}",
            _dns_line(dns),
        ]
        return "\n".join(lines)

    return emit(args, data, text)


def dns_status(state_dir: Path) -> dict[str, Any]:
    """DNS mode of the gate running with this state directory, live from its /healthz."""
    try:
        info = json.loads((state_dir / "run.json").read_text())
    except (OSError, ValueError):
        return {"on": False, "running": False}
    dns = info.get("dns") if isinstance(info, dict) else None
    if not dns:
        return {"on": False, "running": True}
    admin = info.get("admin")
    try:
        host, port = admin[0], int(admin[1])
        url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/healthz"
        import urllib.request  # only when DNS mode is on: http.client is costly to import

        with urllib.request.urlopen(url, timeout=1) as answer:
            live = json.loads(answer.read()).get("dns") or dns
    except (OSError, ValueError, TypeError, IndexError):
        live = {**dns, "stale": True}  # the counts written at start-up
    return {"running": True, **live}


def _dns_line(dns: dict[str, Any]) -> str:
    if not dns.get("on"):
        return "DNS mode: off"
    by = dns.get("by_outcome") or {}
    detail = ", ".join(f"{k} {v}" for k, v in by.items() if v)
    return f"DNS mode: on, {dns.get('queries', 0)} queries answered" + (
        f" ({detail})" if detail else ""
    )


def _emergency_status(args: argparse.Namespace, db: Db, snap: Snapshot) -> int:
    from proxy.store import emergency

    active = emergency.status(db, utc_now())
    if not active:
        return emit(args, {"active": False}, lambda: "no emergency override is active")
    return emit(
        args,
        {"active": True, **active},
        lambda: (
            f"emergency override ON since {active['activated_at']} by {active['activated_by']}, "
            f"until {active['until']} ({active['remaining_minutes']} min left): "
            f"{active['reason']}"
        ),
    )


def _allow(sub: Sub, common: Common) -> None:
    group = sub.add_parser(
        "allow",
        help="the runtime allowlist",
        description="Devices, addresses, MACs or proxy users that are "
        "always let through (besides those in the rules).",
    )
    asub = group.add_subparsers(metavar="ACTION")
    add_p = _parser(
        asub, common, "add", "allow a device, IP, network, MAC or user", actor=True, json=True
    )
    add_p.add_argument("identifier", help="device name, IP, CIDR, MAC or user name")
    add_p.add_argument(
        "--type",
        dest="entry_type",
        choices=ENTRY_TYPES,
        help="what the identifier is (guessed when left out)",
    )
    add_p.add_argument("--hours", type=float, help="expire after this many hours")
    add_p.add_argument("--reason", help="why, for the log")
    add_p.add_argument("--name", help="a label, e.g. 'grandma's tablet'")
    add_p.set_defaults(handler=guarded(_allow_add))
    list_p = _parser(asub, common, "list", "runtime and rules-file entries", json=True)
    list_p.set_defaults(handler=guarded(_allow_list))
    rm = _parser(asub, common, "remove", "remove a runtime entry", actor=True, json=True)
    rm.add_argument("identifier")
    rm.set_defaults(
        handler=_change("allowlist", lambda a: {"op": "remove", "identifier": a.identifier})
    )


def _allow_add(args: argparse.Namespace, db: Db, snap: Snapshot) -> int:
    from proxy.store import changes

    now = utc_now()
    expires = now + timedelta(hours=args.hours) if args.hours else None
    payload = {
        "op": "add",
        "identifier": args.identifier,
        "entry_type": args.entry_type,
        "reason": args.reason,
        "name": args.name,
        "expires_at": expires.isoformat() if expires else None,
    }
    return _show(args, changes.perform(db, snap, actor_of(args), "allowlist", payload, now))


def _allow_list(args: argparse.Namespace, db: Db, snap: Snapshot) -> int:
    from proxy.store import allowlist

    rows = [{**r, "source": "runtime"} for r in allowlist.entries(db, utc_now())]
    rows += [
        {"identifier": e.value, "entry_type": e.kind, "reason": e.reason, "source": "rules"}
        for e in snap.allowlist
    ]
    return emit(
        args,
        rows,
        lambda: table(
            rows, ["identifier", "entry_type", "reason", "expires_at", "created_by", "source"]
        ),
    )


def _unlock(sub: Sub, common: Common) -> None:
    p = _parser(
        sub,
        common,
        "unlock",
        "let a device through for a while, no PIN needed",
        actor=True,
        json=True,
    )
    p.add_argument("device", help="a device name from the rules (or ip:ADDRESS)")
    p.add_argument("--minutes", type=int, default=30, help="1-1440 (default 30)")
    p.add_argument("--provider", help="only this provider (default: all)")
    p.set_defaults(
        handler=_change(
            "unlock", lambda a: {"device": a.device, "minutes": a.minutes, "provider": a.provider}
        )
    )


def _override(sub: Sub, common: Common) -> None:
    group = sub.add_parser(
        "override",
        help="PINs for blocked requests",
        description="Create a PIN that lets a blocked request (and its "
        "device, for overrides.unlock_minutes) through.",
    )
    osub = group.add_subparsers(metavar="ACTION")
    create = _parser(
        osub, common, "create", "make a PIN for a blocked request id", actor=True, json=True
    )
    create.add_argument("request_id", help="the id shown on the block page / error message")
    create.add_argument("--pin", help="use this PIN instead of a generated one")
    create.add_argument(
        "--minutes",
        type=int,
        default=15,
        help="the PIN is valid this long, at most 60 (default 15)",
    )
    create.set_defaults(handler=guarded(_override_create))
    listing = _parser(osub, common, "list", "recent overrides", json=True)
    listing.set_defaults(handler=guarded(_override_list))


def _override_list(args: argparse.Namespace, db: Db, snap: Snapshot) -> int:
    from proxy.store import overrides

    rows = overrides.listing(db, utc_now())
    columns = ["request_id", "device", "created_by", "expires_at", "used_at"]
    return emit(args, rows, lambda: table(rows, columns))


def _override_create(args: argparse.Namespace, db: Db, snap: Snapshot) -> int:
    from proxy.store import overrides

    row, pin = overrides.create(
        db, actor_of(args), args.request_id, utc_now(), minutes=args.minutes, pin=args.pin
    )
    return emit(
        args,
        {**row, "pin": pin},
        lambda: (
            f"PIN {pin} unlocks {row['device']} (request {row['request_id']}); valid until "
            f"{row['expires_at']}. It works once."
        ),
    )


def _pin(sub: Sub) -> None:
    group = sub.add_parser("pin", help="make PIN hashes for the rules file")
    psub = group.add_subparsers(metavar="ACTION")
    h = psub.add_parser(
        "hash",
        help="print the hash of a PIN, for overrides.master_pin",
        description="Reads the PIN twice from the terminal (or once from "
        "standard input) and prints a salted scrypt hash.",
    )
    h.set_defaults(handler=_pin_hash)


def _pin_hash(_args: argparse.Namespace) -> int:
    from governance import pins

    if sys.stdin.isatty():
        import getpass

        pin = getpass.getpass("PIN: ")
        if getpass.getpass("again: ") != pin:
            print("hearthgate: the two PINs differ", file=sys.stderr)
            return 1
    else:
        pin = sys.stdin.readline().rstrip("\n")
    try:
        print(pins.hash_pin(pin))
    except ValueError as exc:
        print(f"hearthgate: {exc}", file=sys.stderr)
        return 2
    return 0


def _consent(sub: Sub, common: Common) -> None:
    group = sub.add_parser("consent", help="changes waiting for other parents' approval")
    csub = group.add_subparsers(metavar="ACTION")
    req = _parser(
        csub, common, "request", "ask for a change that needs approval", actor=True, json=True
    )
    req.add_argument("change_type", choices=CHANGE_TYPES)
    req.add_argument(
        "--set",
        dest="fields",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="payload field, e.g. --set device=alice-laptop --set minutes=30",
    )
    req.add_argument("--description", help="what and why, for the other parents")
    req.set_defaults(handler=guarded(_consent_request))
    approve = _parser(csub, common, "approve", "approve a request", actor=True, json=True)
    approve.add_argument("id", type=int)
    approve.set_defaults(handler=guarded(_consent_approve))
    reject = _parser(csub, common, "reject", "reject a request", actor=True, json=True)
    reject.add_argument("id", type=int)
    reject.add_argument("--reason", default="", help="why")
    reject.set_defaults(handler=guarded(_consent_reject))
    listing = _parser(csub, common, "list", "pending requests", json=True)
    listing.set_defaults(handler=guarded(_consent_list))


def _consent_approve(args: argparse.Namespace, db: Db, snap: Snapshot) -> int:
    from proxy.store import changes

    return _show(args, changes.approve(db, snap, actor_of(args), args.id, utc_now()))


def _consent_reject(args: argparse.Namespace, db: Db, snap: Snapshot) -> int:
    from proxy.store import consent

    return _show(args, consent.reject(db, actor_of(args), args.id, args.reason, utc_now()))


def _consent_list(args: argparse.Namespace, db: Db, snap: Snapshot) -> int:
    from proxy.store import consent

    rows = consent.pending(db, utc_now())
    columns = ["id", "change_type", "description", "requested_by", "approvals", "expires_at"]
    return emit(args, rows, lambda: table(rows, columns))


def _consent_request(args: argparse.Namespace, db: Db, snap: Snapshot) -> int:
    from proxy.store import changes, consent

    payload: dict[str, object] = {}
    for item in args.fields:
        key, _, value = item.partition("=")
        payload[key] = int(value) if value.isdigit() else value
    row = consent.request(
        db,
        actor_of(args),
        args.change_type,
        args.description or changes.describe(args.change_type, payload),
        payload,
        utc_now(),
        snap.rules.consent.expire_hours,
    )
    return emit(
        args,
        row,
        lambda: f"consent request {row['id']} waits for {snap.rules.consent.approvers} approval(s)",
    )


def _show(args: argparse.Namespace, row: dict[str, object]) -> int:
    return emit(args, row, lambda: "\n".join(f"{k}: {v}" for k, v in row.items() if v is not None))


def _admin(sub: Sub, common: Common) -> None:
    group = sub.add_parser(
        "admin",
        help="tokens for the admin API and dashboard",
        description="Parents can read and change; viewers can only read.",
    )
    asub = group.add_subparsers(metavar="ACTION")
    add_p = _parser(
        asub,
        common,
        "add",
        "make a token for a parent or viewer (shown once)",
        actor=True,
        json=True,
    )
    add_p.add_argument("name", help="who the token is for, e.g. mom")
    add_p.add_argument("--role", choices=ROLES, default="parent")
    add_p.set_defaults(handler=_admin_add)
    list_p = _parser(asub, common, "list", "who has a token", json=True)
    list_p.set_defaults(handler=guarded(_admin_list))
    rm = _parser(asub, common, "revoke", "revoke someone's token", actor=True, json=True)
    rm.add_argument("name")
    rm.set_defaults(handler=guarded(_admin_revoke))


def _admin_list(args: argparse.Namespace, db: Db, snap: Snapshot) -> int:
    from proxy.store import admins

    rows = admins.listing(db)
    return emit(
        args, rows, lambda: table(rows, ["name", "role", "token_id", "created_at", "revoked_at"])
    )


def _admin_revoke(args: argparse.Namespace, db: Db, snap: Snapshot) -> int:
    from proxy.store import admins

    return _show(args, admins.revoke(db, actor_of(args), args.name, utc_now()))


def _admin_add(args: argparse.Namespace) -> int:
    """The token's slow hash (scrypt, which lets go of the GIL) is made in a thread while the
    rules and the database are loaded: a parent waits for the longer of the two, not both."""
    import threading

    from governance import pins

    minted: list[tuple[str, str, str]] = []
    worker = threading.Thread(target=lambda: minted.append(pins.new_token()), daemon=True)
    worker.start()

    def body(args: argparse.Namespace, db: Db, snap: Snapshot) -> int:
        from proxy.store import admins

        worker.join()
        row, token = admins.add(
            db, actor_of(args), args.name, args.role, utc_now(), minted[0] if minted else None
        )
        return emit(
            args,
            {**row, "token": token},
            lambda: (
                f"token for {row['name']} ({row['role']}), shown only this once:\n{token}\n"
                "Use it as `Authorization: Bearer <token>` or to sign in to the dashboard."
            ),
        )

    return guarded(body)(args)


# in `hearthgate --help` order (main.COMMANDS names the same commands for this group)
_COMMANDS: dict[str, Callable[[Sub, Common], None]] = {
    "status": _status_parser,
    "emergency": _emergency,
    "allow": _allow,
    "unlock": _unlock,
    "override": _override,
    "pin": _pin_parser,
    "consent": _consent,
    "admin": _admin,
}
