"""The admin port's front: its socket, bound first, and an app that loads on first use.

``hearthgate run`` binds the socket before anything else listens, so a port already in use
stops the start at once with a clear message. uvicorn serves it once the proxy listens, with
``LazyApp`` in front: the FastAPI app (FastAPI, starlette, the routes and their models, a
tenth of the gate's memory) is built in a worker thread on the first request that needs it —
a parent opening the dashboard or calling the API; /metrics, /healthz and the PAC file are
answered by ``admin.light`` without it — and every request after that goes straight to it.
A gate nobody administers never loads it. Cheap to import: uvicorn is imported by
``make_server``, FastAPI by the ``build`` function the app is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


class LazyApp:
    """An ASGI app that builds the real one (in a thread) on its first request."""

    def __init__(
        self,
        build: Callable[[], Asgi],
        light: Callable[[Scope, Send], Awaitable[bool]] | None = None,
    ) -> None:
        """``light`` answers what it can (``admin.light``) without the app being built."""
        self._build = build
        self._light = light
        self._app: Asgi | None = None
        self._lock = asyncio.Lock()

    @property
    def loaded(self) -> bool:
        return self._app is not None

    async def load(self) -> Asgi:
        if self._app is None:
            async with self._lock:  # concurrent first requests wait for one build
                if self._app is None:
                    self._app = await asyncio.to_thread(self._build)
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._light is not None and await self._light(scope, send):
            return
        app = self._app or await self.load()
        await app(scope, receive, send)


def make_server(app: Asgi, host: str, port: int) -> Any:
    """uvicorn for ``app`` without its own signal handling: the proxy owns SIGINT/SIGTERM."""
    import uvicorn

    class EmbeddedServer(uvicorn.Server):
        """uvicorn's main loop wakes ten times a second to refresh its Date header and look
        at ``should_exit``: 3 ms of CPU a second on an idle gate, three quarters of all it
        spent idle. This one wakes once a second (the Date header is whole seconds anyway)
        and at once when told to stop."""

        _stop: asyncio.Event | None = None
        _exit = False

        @property
        def should_exit(self) -> bool:
            return self._exit

        @should_exit.setter
        def should_exit(self, value: bool) -> None:
            self._exit = value
            if value and self._stop is not None:
                self._stop.set()

        async def main_loop(self) -> None:
            from proxy.runtime import grid_delay  # the gate's own module, loaded by then

            self._stop = asyncio.Event()
            while not await self.on_tick(0):  # tick 0: the Date header is refreshed each time
                with contextlib.suppress(TimeoutError):  # on the gate's one-second beat
                    await asyncio.wait_for(self._stop.wait(), grid_delay())

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

        def bound_address(self) -> tuple[str, int] | None:
            for server in getattr(self, "servers", []):
                for sock in server.sockets:
                    host, port = sock.getsockname()[:2]
                    return str(host), int(port)
            return None

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        ws="none",  # the admin app has no WebSocket routes: websockets is never imported
        access_log=False,
        server_header=False,
    )
    return EmbeddedServer(config)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket for the admin server; OSError (in use, no such address) at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock
