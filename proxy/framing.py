"""How a request's body arrives, and what the client was finally sent.

A request body is buffered by mitmproxy until it ends, however large. The gate reads bodies
up to the inspection cap, so it needs to know when a buffered body outgrows it:
``install_buffer_cap`` wraps mitmproxy's own body-size check (called for every chunk it
buffers) and, for a flow that carries a ``BufferCap``, asks the addon once what to do with a
body over the cap: stream it on to the service (the request is allowed unread), or drop it
as it arrives, so a blocked upload costs at most the cap in memory and the client still gets
its ordinary block answer once it has sent everything. Everything else is mitmproxy's
unchanged behaviour.

``client_status`` says what a client received for a flow that ended in an error, so the
decision log's ``status`` is never a guess (a 400 mitmproxy sends for bad framing is 400).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from mitmproxy import flow as mflow
from mitmproxy import http
from mitmproxy.net.http.http1.read import expected_http_body_size
from mitmproxy.net.http.validate import validate_headers
from mitmproxy.proxy.layers import http as http_layer
from mitmproxy.proxy.layers.http._events import RequestData

BUFFER_CAP = "hearthgate.buffer_cap"
DISCARDED = "hearthgate.discarded"


@dataclass(frozen=True, slots=True)
class BufferCap:
    """Buffer at most ``limit`` bytes; ``over`` decides a flow whose body outgrew it: True
    streams the body on to the service, False drops it as it arrives (the flow is answered
    once the client has sent it all; ``DISCARDED`` is then set in its metadata)."""

    limit: int
    over: Callable[[http.HTTPFlow], bool]


_installed: list[Any] = []


def install_buffer_cap() -> None:
    """Wrap ``HttpStream.check_body_size`` once per process (idempotent)."""
    if _installed:
        return
    original = http_layer.HttpStream.check_body_size

    def check_body_size(self: Any, request: bool) -> Generator[Any, Any, bool]:
        meta = self.flow.metadata
        if request and meta.get(DISCARDED):
            self.request_body_buf.clear()  # never forwarded: the flow is answered by the gate
            return False
        cap = meta.get(BUFFER_CAP) if request else None
        if isinstance(cap, BufferCap) and len(self.request_body_buf) > cap.limit:
            del meta[BUFFER_CAP]
            if cap.over(self.flow):
                return (yield from _stream_rest(self))
            meta[DISCARDED] = True
            self.request_body_buf.clear()
            return False
        return (yield from original(self, request))

    http_layer.HttpStream.check_body_size = check_body_size  # type: ignore[method-assign]
    _installed.append(original)


def _stream_rest(stream: Any) -> Generator[Any, Any, bool]:
    """As mitmproxy's own ``stream_large_bodies``: send what was buffered, stream the rest."""
    stream.flow.request.stream = True
    buffered = bytes(stream.request_body_buf)
    stream.request_body_buf.clear()
    yield from stream.start_request_stream()
    yield from stream.handle_event(RequestData(stream.stream_id, buffered))
    return False


def client_status(flow: http.HTTPFlow) -> int | None:
    """The HTTP status the client received for a flow that failed; None when it got none."""
    if flow.response is not None:
        return flow.response.status_code
    if bad_framing(flow.request):
        return 400  # mitmproxy answers a request it cannot frame with 400, then closes
    message = flow.error.msg if flow.error else ""
    if flow.request.timestamp_end is None or message in (
        "Client disconnected.",
        mflow.Error.KILLED_MESSAGE,
    ):
        return None  # the client's own request broke off, or it went away: nothing sent
    return 502  # the request was complete; the service could not be reached or answered


def bad_framing(request: http.Request) -> bool:
    """The request's framing headers are ones mitmproxy refuses (it then sends 400)."""
    if request.http_version not in ("HTTP/1.0", "HTTP/1.1"):
        return False
    try:
        expected_http_body_size(request)
        validate_headers(request)
    except ValueError:
        return True
    return False
