"""A mitmproxy flow -> the ``RequestFacts`` the pipeline decides on.

Bodies are parsed only for devices whose TLS is inspected and only up to the provider
parser's size cap; everything here is defensive: odd bytes in, best-effort facts out.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mitmproxy import connection, http
from mitmproxy.proxy.mode_specs import WireGuardMode

from governance.addresses import try_normalize_ip
from governance.facts import Decision, Endpoint, Identity, Inspect, RequestFacts
from governance.snapshot import Snapshot
from proxy import identity as identity_mod
from proxy.catalog.providers import (
    BODY_CAP,
    ParsedRequest,
    Provider,
    StreamUsage,
    parse_request,
)
from proxy.catalog.usage_filter import InjectedUsageFilter
from proxy.identity import NeighbourTable

PIN_HEADER = "x-hearthgate-pin"
REQUEST_ID_HEADER = "x-hearthgate-request-id"
_ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


@dataclass(slots=True)
class FlowRecord:
    """What was decided for one flow; kept in ``flow.metadata`` until its row is logged."""

    facts: RequestFacts
    decision: Decision
    api: str
    decided_at: float  # time.time()
    duration_us: int
    parsed: ParsedRequest | None = None
    stream_usage: StreamUsage | None = None
    usage_filter: InjectedUsageFilter | None = None
    logged: bool = False
    reserved: bool = False  # counted against the quotas in the shared database already
    extra: dict[str, object] = field(default_factory=dict)


def new_request_id() -> str:
    """Short, unambiguous to read aloud or type: 10 characters, ~49 bits."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))


def host_candidates(flow: http.HTTPFlow) -> list[str]:
    """Every name this request claims: SNI, Host header, request target, upstream address.

    A client can make them disagree (a CONNECT to api.openai.com with the SNI example.org,
    or the reverse): if any of them is an LLM service, the request is one.
    """
    server = flow.server_conn.address[0] if flow.server_conn.address else None
    names = (flow.client_conn.sni, flow.request.host_header, flow.request.host, server)
    found: list[str] = []
    for name in names:
        if name:
            clean = (
                str(name).lower().rstrip(".").rsplit(":", 1)[0]
                if name.count(":") == 1
                else str(name).lower().rstrip(".")
            )
            if clean not in found:
                found.append(clean)
    return found


def llm_target(
    flow: http.HTTPFlow, match: Callable[[str], Provider | None]
) -> tuple[Provider, str] | None:
    """The provider and the name it was recognised by, or None for any other traffic."""
    for name in host_candidates(flow):
        provider = match(name)
        if provider is not None:
            return provider, name
    return None


def identify(flow: http.HTTPFlow, snap: Snapshot, neighbours: NeighbourTable) -> Identity:
    auth = flow.metadata.get("proxyauth")
    user = str(auth[0]) if isinstance(auth, tuple) and auth and auth[0] else None
    return identify_client(flow.client_conn, snap, neighbours, user)


def identify_client(
    client: connection.Client, snap: Snapshot, neighbours: NeighbourTable, user: str | None = None
) -> Identity:
    """The identity of a client connection (SPEC section 2), without a request."""
    peer = client.peername
    client_ip = str(peer[0]) if peer else "unknown"
    mode = client.proxy_mode
    wg_peer = Path(mode.data).stem if isinstance(mode, WireGuardMode) and mode.data else None
    ip = try_normalize_ip(client_ip) or client_ip
    return identity_mod.resolve(snap, ip, mac=neighbours.mac_of(ip), user=user, peer=wg_peer)


def connection_facts(ident: Identity, provider: Provider, host: str) -> RequestFacts:
    """Facts for a connection decided by host name only (an ``inspect: sni`` device)."""
    endpoint = Endpoint.WEB_APP if provider.api == "web" else Endpoint.OTHER
    return RequestFacts(
        request_id=new_request_id(),
        identity=ident,
        host=host,
        provider=provider.name,
        category=provider.category,
        method="CONNECT",
        path="",
        endpoint=endpoint,
    )


def oversize(flow: http.HTTPFlow) -> bool:
    """The body is too big to inspect (or of unknown, chunked length)."""
    length = flow.request.headers.get("content-length")
    if length is None:
        return "chunked" in flow.request.headers.get("transfer-encoding", "").lower()
    try:
        return int(length) > BODY_CAP
    except ValueError:
        return True


def build_facts(
    flow: http.HTTPFlow,
    ident: Identity,
    provider: Provider,
    host: str,
    request_id: str,
    *,
    with_body: bool,
) -> tuple[RequestFacts, ParsedRequest]:
    req = flow.request
    body = req.raw_content if with_body and ident.inspect is Inspect.TLS else None
    if body is not None and req.headers.get("content-encoding"):
        try:
            body = req.get_content(strict=True)
        except ValueError:
            body = None
    parsed = parse_request(provider, req.method, req.path, req.headers.get("content-type"), body)
    facts = RequestFacts(
        request_id=request_id,
        identity=ident,
        host=host,
        provider=provider.name,
        method=req.method,
        path=req.path.split("?", 1)[0],
        endpoint=parsed.endpoint,
        model=parsed.model,
        prompt=parsed.prompt,
        prompt_chars=parsed.prompt_chars,
        body_inspected=parsed.inspected,
        pin=req.headers.get(PIN_HEADER),
        pin_request_id=req.headers.get(REQUEST_ID_HEADER),
        category=provider.category,
    )
    return facts, parsed
