"""The admin HTTP server: health and metrics now; the governance API and dashboard mount here.

Served by uvicorn inside the proxy's own event loop, bound to 127.0.0.1 by default.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from proxy.admin import api as admin_api
from proxy.admin.auth import Authenticator
from proxy.admin.dashboard import routes as dashboard
from proxy.catalog.pac import CONTENT_TYPE as PAC_TYPE
from proxy.catalog.pac import render_pac
from proxy.gate import Gate
from proxy.store.sql.connection import unavailable_errors


def create_app(gate: Gate, listen_port: int = 8080) -> FastAPI:
    """The admin app; ``listen_port`` is the proxy port named in /proxy.pac until the
    proxy reports the port it really bound."""
    app = FastAPI(
        title="hearthgate admin API",
        version="1",
        description="Household LLM gate administration. Every /api call needs "
        "`Authorization: Bearer <token>` (`hearthgate admin add`).",
    )
    auth = Authenticator(gate.cache.target)

    async def unreachable(request: Request, exc: Exception) -> Response:
        # the proxy goes on deciding from memory; changes and logs wait for the database
        return JSONResponse(
            {
                "detail": f"the database {gate.cache.target.display} cannot be reached "
                f"({type(exc).__name__}); try again when it is back"
            },
            status_code=503,
            headers={"Retry-After": "10"},
        )

    for error in unavailable_errors():
        app.add_exception_handler(error, unreachable)
    gate.cache.listeners.append(auth.forget)
    admin_api.mount(app, gate, auth)
    dashboard.mount(app, gate, auth)
    app.state.auth = auth

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
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

    @app.get("/proxy.pac", include_in_schema=False)
    @app.get("/wpad.dat", include_in_schema=False)
    async def proxy_pac(request: Request) -> Response:
        host = (request.url.hostname or "127.0.0.1").strip("[]")
        port = gate.proxy_port or listen_port
        proxy = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return Response(render_pac(gate.catalog.providers, proxy), media_type=PAC_TYPE)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(gate.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
