"""A mitmproxy flow -> the ``RequestFacts`` the pipeline decides on.

Bodies are parsed only for devices whose TLS is inspected and only up to the provider
parser's size cap (decoded within it too); a body that could not be read says why in
``RequestFacts.unreadable``. Everything here is defensive: odd bytes in, best-effort facts out.
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
    parse_request,
)
from proxy.catalog.requests import OVER_CAP
from proxy.catalog.stream_usage import BodyUsage
from proxy.catalog.usage_filter import InjectedUsageFilter
from proxy.decoding import Unreadable, decode_body
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
    stream_usage: BodyUsage | None = None  # read from the answer as it streams
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


def announced_length(flow: http.HTTPFlow) -> int | None:
    """The body length the request announces; None when it does not (chunked, HTTP/2)."""
    length = flow.request.headers.get("content-length")
    if length is None:
        return None
    try:
        return int(length)
    except ValueError:
        return None  # mitmproxy refuses such a request itself (400)


def readable_body(request: http.Request) -> tuple[bytes | None, str | None]:
    """The body decoded for inspection, or None and why the gate could not read it.

    Never more than the cap: a raw body over it is not decoded, and decoding stops once the
    decoded bytes pass it (see ``decoding.decode_body``).
    """
    raw = request.raw_content
    if raw is None:
        return None, "its body was passed on without being read"
    if len(raw) > BODY_CAP:
        return None, OVER_CAP
    encodings = ",".join(request.headers.get_all("content-encoding"))
    if not encodings.strip():
        return raw, None
    try:
        return decode_body(raw, encodings, BODY_CAP), None
    except Unreadable as exc:
        return None, str(exc)


def build_facts(
    flow: http.HTTPFlow,
    ident: Identity,
    provider: Provider,
    host: str,
    request_id: str,
    *,
    with_body: bool,
    unreadable: str | None = None,
) -> tuple[RequestFacts, ParsedRequest]:
    """The facts of one request. *unreadable*: the edge already knows the body cannot be
    read (over the cap); otherwise a ``tls`` device's body is read when *with_body*."""
    req = flow.request
    body: bytes | None = None
    if ident.inspect is not Inspect.TLS:
        unreadable = None  # host-level only: body conditions never apply
    elif unreadable is None and with_body:
        body, unreadable = readable_body(req)
    ctype = req.headers.get("content-type")
    parsed = parse_request(provider, req.method, req.path, ctype, body, unreadable)
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
        models=parsed.models,
        unreadable=parsed.unreadable,
        model_unknown=parsed.model_unknown,
        endpoint_known=parsed.endpoint_known,
        pin=req.headers.get(PIN_HEADER),
        pin_request_id=req.headers.get(REQUEST_ID_HEADER),
        category=provider.category,
    )
    return facts, parsed
