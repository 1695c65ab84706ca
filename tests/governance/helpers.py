"""Build snapshots and facts for pure-stage tests."""

from __future__ import annotations

import textwrap
from datetime import datetime
from zoneinfo import ZoneInfo

import yaml

from governance.facts import Endpoint, Identity, Inspect, RequestFacts
from governance.schema import Rules
from governance.snapshot import Snapshot, compile_rules
from proxy.identity import resolve

BASE = """
version: 1
settings: {timezone: Europe/Berlin, unknown_devices: {groups: [guests]}}
groups: {parents: {}, kids: {}, guests: {}}
people:
  mom: {groups: [parents]}
  alice: {groups: [kids]}
  bob: {groups: [kids]}
devices:
  alice-laptop: {person: alice, ips: [192.168.1.50], macs: ["aa:bb:cc:dd:ee:01"]}
  bob-tablet: {person: bob, ips: [192.168.1.51], inspect: sni}
  mom-laptop: {person: mom, ips: [192.168.1.10]}
"""


def snapshot(extra: str = "", base: str = BASE) -> Snapshot:
    text = textwrap.dedent(base) + textwrap.dedent(extra)
    return compile_rules(Rules.model_validate(yaml.safe_load(text)), text)


def facts(
    snap: Snapshot,
    ip: str = "192.168.1.50",
    *,
    model: str | None = "gpt-4o-mini",
    prompt: str | None = "hello",
    endpoint: Endpoint = Endpoint.CHAT,
    provider: str = "openai",
    host: str = "api.openai.com",
    user: str | None = None,
    mac: str | None = None,
    category: str | None = "api",
    **more: object,
) -> RequestFacts:
    """Facts of a POST from *ip*; *more* sets other ``RequestFacts`` fields (unreadable ...)."""
    ident: Identity = resolve(snap, ip, user=user, mac=mac)
    inspected = ident.inspect is Inspect.TLS
    return RequestFacts(
        request_id="req1",
        identity=ident,
        host=host,
        provider=provider,
        method="POST",
        path="/v1/chat/completions",
        endpoint=endpoint,
        model=model if inspected else None,
        prompt=prompt if inspected else None,
        prompt_chars=len(prompt or "") if inspected else 0,
        body_inspected=inspected,
        category=category,
        **more,  # type: ignore[arg-type]
    )


def at(text: str, zone: str = "Europe/Berlin") -> datetime:
    """An aware instant from local wall-clock text in ``zone``."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))
