"""The admin port's answers that neither wait for nor load the FastAPI app.

``/metrics`` (a Prometheus scrape every few seconds), ``/healthz`` (a probe) and
``/proxy.pac`` / ``/wpad.dat`` (every device's proxy setting) are asked for all day by
machines, not parents. ``LightRoutes`` answers them in front of ``LazyApp``, so a gate that
is only scraped and probed never builds the admin app (FastAPI, starlette, the routes and
their models: some 10 MiB). The app serves the same paths with the same functions, for its
API docs and for anything that reaches it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from proxy.catalog.pac import CONTENT_TYPE as PAC_TYPE
from proxy.catalog.pac import render_pac
from proxy.gate import Gate

Scope = MutableMapping[str, Any]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
PAC_PATHS = ("/proxy.pac", "/wpad.dat")


def health(gate: Gate) -> dict[str, Any]:
    """What /healthz answers."""
    writer = gate.writer.stats
    reachable = writer.last_ok and gate.cache.database_ok
    return {
        "status": "ok" if reachable else "degraded",
        "instance": gate.instance,
        "database": gate.cache.target.display,
        "database_backend": gate.cache.target.kind,
        "database_reachable": reachable,
        "database_error": None if reachable else writer.last_error or gate.cache.database_error,
        "rules_version": gate.rules.snapshot.version,
        "rules_loaded_at": gate.rules.loaded_at.isoformat(),
        "rules_error": gate.rules.last_error,
        "database_writable": writer.last_ok,
        "decision_log_queue_depth": gate.writer.depth,
        "dns": gate.dns_stats() if gate.dns_stats else {"on": False},
    }


def pac(gate: Gate, host: str, listen_port: int) -> str:
    """The PAC file, naming the gate by the host the device asked for it by."""
    host = host.strip("[]") or "127.0.0.1"
    port = gate.proxy_port or listen_port
    proxy = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return render_pac(gate.catalog.providers, proxy)


def metrics(gate: Gate) -> bytes:
    return bytes(generate_latest(gate.metrics.registry))


class LightRoutes:
    """Answers GET and HEAD of the machine-asked paths; anything else is left to the app."""

    def __init__(self, gate: Gate, listen_port: int) -> None:
        self.gate = gate
        self.listen_port = listen_port

    async def __call__(self, scope: Scope, send: Send) -> bool:
        """True when it answered the request."""
        if scope.get("type") != "http" or scope.get("method") not in ("GET", "HEAD"):
            return False
        path = scope.get("path")
        if path == "/metrics":
            body, media = metrics(self.gate), CONTENT_TYPE_LATEST
        elif path == "/healthz":
            text = json.dumps(health(self.gate), ensure_ascii=False, separators=(",", ":"))
            body, media = text.encode(), "application/json"
        elif path in PAC_PATHS:
            body, media = pac(self.gate, _host(scope), self.listen_port).encode(), PAC_TYPE
        else:
            return False
        headers = [(b"content-type", media.encode()), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        head = scope["method"] == "HEAD"
        await send({"type": "http.response.body", "body": b"" if head else body})
        return True


def _host(scope: Scope) -> str:
    """The host name the client used (Host header without its port), as starlette reads it."""
    for name, value in scope.get("headers") or ():
        if name == b"host":
            text = bytes(value).decode("latin-1").strip().lower()
            if text.startswith("["):
                return text[: text.find("]") + 1] if "]" in text else text
            return text.rsplit(":", 1)[0] if text.count(":") == 1 else text
    server = scope.get("server")
    return str(server[0]) if server else ""
