"""The admin HTTP server: health and metrics now; the governance API and dashboard mount here.

Served by uvicorn inside the proxy's own event loop, bound to 127.0.0.1 by default.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from proxy.admin import api as admin_api
from proxy.admin import light
from proxy.admin.auth import Authenticator
from proxy.admin.dashboard import routes as dashboard
from proxy.catalog.pac import CONTENT_TYPE as PAC_TYPE
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
        return light.health(gate)

    @app.get("/proxy.pac", include_in_schema=False)
    @app.get("/wpad.dat", include_in_schema=False)
    async def proxy_pac(request: Request) -> Response:
        body = light.pac(gate, request.url.hostname or "127.0.0.1", listen_port)
        return Response(body, media_type=PAC_TYPE)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(light.metrics(gate), media_type=CONTENT_TYPE_LATEST)

    return app
