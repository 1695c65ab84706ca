"""The fake LLM upstream: a tiny asyncio HTTP/1.1 server on 127.0.0.1, plain and TLS on one port.

``python -m bench.upstream --cert C --key K`` prints ``bench upstream listening at
127.0.0.1:PORT`` once it accepts connections. The first byte a client sends decides the
protocol of that connection (0x16 is a TLS handshake record), because the redirect addon
sends every upstream connection of a proxy — plain ``http://`` and ``https://`` alike — to
the one address in ``HEARTHGATE_TEST_UPSTREAM``.

It answers ``POST /v1/chat/completions`` with a small OpenAI-shaped completion (with
``usage``), anything else with 404, keeps connections alive, and does no other work: it
must be much faster than any proxy in front of it (the "direct" rows of the report show it).

A request whose body says ``"stream":true`` gets an OpenAI-shaped SSE stream over chunked
transfer instead (the streaming section): ``x-bench-chunks`` events (default 50),
``x-bench-interval-ms`` apart (default 20), one HTTP chunk each and each written on its own;
every event carries ``"t"``, the upstream's ``time.monotonic_ns()`` when it was written (the
clock is the machine's, so the client can tell each event's one-way delay). With
``"include_usage":true`` a usage-only event follows, then ``data: [DONE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import ssl
import time

HOST = "127.0.0.1"
MAX_HEAD = 64 * 1024
FIRST_BYTE_TIMEOUT = 10.0

COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Plants turn light into sugar."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 24, "completion_tokens": 7, "total_tokens": 31},
    },
    separators=(",", ":"),
).encode()


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
USAGE_EVENT = (
    b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","model":"gpt-4o-mini",'
    b'"choices":[],"usage":{"prompt_tokens":24,"completion_tokens":50,"total_tokens":74}}\n\n'
)
_HEADER_NUMBER = re.compile(rb"\r\n(x-bench-chunks|x-bench-interval-ms):\s*(\d{1,6})")


def _event(index: int) -> bytes:
    return (
        b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","model":"gpt-4o-mini",'
        b'"choices":[{"index":0,"delta":{"content":"tok%d "},"finish_reason":null}],'
        b'"t":%d}\n\n' % (index, time.monotonic_ns())
    )


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _response(status: str, body: bytes, close: bool) -> bytes:
    head = f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
    if close:
        head += "connection: close\r\n"
    return head.encode() + b"\r\n" + body


OK = _response("200 OK", COMPLETION, close=False)
OK_CLOSE = _response("200 OK", COMPLETION, close=True)
NOT_FOUND = _response("404 Not Found", b'{"error":{"message":"not found"}}', close=False)
BAD = _response("400 Bad Request", b'{"error":{"message":"bad request"}}', close=True)


class HttpProtocol(asyncio.Protocol):
    """Parses just enough of HTTP/1.1: the request line, content-length, connection: close."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.streaming: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None and not self.transport.is_closing():
            if self.streaming is not None:  # a pipelined request waits for the stream's end
                return
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    self._answer(BAD, close=True)
                return
            head = bytes(self.buffer[:end]).lower()
            length = _content_length(head)
            if length is None:
                self._answer(BAD, close=True)
                return
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            self._answer_request(head, body)

    def _answer_request(self, head: bytes, body: bytes) -> None:
        close = b"\r\nconnection: close" in head
        if not head.startswith(b"post /v1/chat/completions "):
            self._answer(NOT_FOUND, close)
        elif b'"stream":true' in body.replace(b" ", b""):
            numbers = {k: int(v) for k, v in _HEADER_NUMBER.findall(head)}
            usage = b'"include_usage":true' in body.replace(b" ", b"")
            self.streaming = asyncio.get_running_loop().create_task(
                self._stream(
                    numbers.get(b"x-bench-chunks", 50),
                    numbers.get(b"x-bench-interval-ms", 20) / 1000,
                    usage,
                )
            )
        else:
            self._answer(OK_CLOSE if close else OK, close)

    async def _stream(self, chunks: int, interval: float, usage: bool) -> None:
        transport = self.transport
        assert transport is not None
        try:
            transport.write(STREAM_HEAD)
            start = time.monotonic()
            for index in range(chunks):
                delay = start + index * interval - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if transport.is_closing():
                    return
                transport.write(_chunk(_event(index)))
            tail = (USAGE_EVENT if usage else b"") + b"data: [DONE]\n\n"
            transport.write(_chunk(tail) + b"0\r\n\r\n")
        finally:
            self.streaming = None
        if self.buffer:  # a request that arrived while streaming
            self.data_received(b"")

    def _answer(self, response: bytes, close: bool) -> None:
        assert self.transport is not None
        self.transport.write(response)
        if close:
            self.transport.close()


def _content_length(head: bytes) -> int | None:
    """The body length; None for what this server does not speak (chunked, bad numbers)."""
    if b"\r\ntransfer-encoding:" in head:
        return None
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    start = at + len(b"\r\ncontent-length:")
    stop = head.find(b"\r\n", start)
    value = head[start:] if stop < 0 else head[start:stop]
    try:
        return int(value.strip())
    except ValueError:
        return None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _first_byte(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> bytes:
    """Wait until the client sends something, and peek at its first byte without reading it."""
    ready = loop.create_future()
    fd = conn.fileno()
    loop.add_reader(fd, _resolve, ready)
    try:
        await asyncio.wait_for(ready, FIRST_BYTE_TIMEOUT)
    finally:
        loop.remove_reader(fd)
    return conn.recv(1, socket.MSG_PEEK)


async def _handle(conn: socket.socket, tls: ssl.SSLContext) -> None:
    loop = asyncio.get_running_loop()
    try:
        first = await _first_byte(loop, conn)
    except (OSError, TimeoutError):
        conn.close()
        return
    if not first:
        conn.close()
        return
    try:
        await loop.connect_accepted_socket(
            HttpProtocol,
            conn,
            ssl=tls if first[0] == 0x16 else None,
            ssl_handshake_timeout=FIRST_BYTE_TIMEOUT if first[0] == 0x16 else None,
        )
    except (OSError, ssl.SSLError, TimeoutError):
        conn.close()


async def serve(tls: ssl.SSLContext, port: int = 0) -> None:
    loop = asyncio.get_running_loop()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, port))
    listener.listen(1024)
    listener.setblocking(False)
    print(f"bench upstream listening at {HOST}:{listener.getsockname()[1]}", flush=True)
    tasks: set[asyncio.Task[None]] = set()
    while True:  # a server: it runs until the bench stops its process group
        conn, _ = await loop.sock_accept(listener)
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = loop.create_task(_handle(conn, tls))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    try:
        asyncio.run(serve(tls_context(args.cert, args.key), args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
