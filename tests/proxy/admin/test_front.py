"""The admin front: the real app is built once, off the event loop, on the first request."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import MutableMapping
from typing import Any

import pytest

from proxy.admin.front import LazyApp, bind_socket, make_server


async def test_the_app_is_built_once_in_a_thread_on_the_first_request() -> None:
    built: list[str] = []
    seen: list[str] = []

    async def real(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})

    def build() -> Any:
        built.append(threading.current_thread().name)
        return real

    lazy = LazyApp(build)
    assert not lazy.loaded and built == []  # nothing is built before a request
    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": b""}

    await asyncio.gather(
        *(lazy({"type": "http", "path": f"/p{i}"}, receive, send) for i in range(5))
    )
    assert len(built) == 1 and built[0] != threading.main_thread().name
    assert sorted(seen) == [f"/p{i}" for i in range(5)]
    assert [m["status"] for m in sent] == [204] * 5
    await lazy({"type": "http", "path": "/again"}, receive, send)
    assert len(built) == 1 and lazy.loaded


async def test_a_build_that_fails_is_tried_again_on_the_next_request() -> None:
    calls = 0

    async def real(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        return None

    def build() -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("first build fails")
        return real

    lazy = LazyApp(build)

    async def nothing(*_: Any) -> Any:
        return {}

    with pytest.raises(RuntimeError):
        await lazy({"type": "http", "path": "/"}, nothing, nothing)
    await lazy({"type": "http", "path": "/"}, nothing, nothing)
    assert calls == 2 and lazy.loaded


async def _date_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _date_of(port: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    head = (await reader.read()).decode().lower()
    writer.close()
    return head.split("date: ", 1)[1].split("\r\n", 1)[0]


async def test_the_embedded_server_wakes_once_a_second_and_stops_at_once() -> None:
    """The Date header still follows the clock, and a stop ends the server."""
    sock = bind_socket("127.0.0.1", 0)
    server = make_server(_date_app, "127.0.0.1", 0)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    port = sock.getsockname()[1]
    first = await _date_of(port)
    await asyncio.sleep(2.1)
    assert await _date_of(port) != first
    server.should_exit = True
    await asyncio.wait_for(serving, 10)
