"""The load generator: raw asyncio streams speaking HTTP/1.1, through a proxy or direct.

Three ways to send the same small chat-completion request:

* ``http``      plain HTTP, keep-alive; through a proxy in absolute form
  (``POST http://api.openai.com/v1/chat/completions``);
* ``https``     one CONNECT per client connection, TLS with SNI ``api.openai.com`` (the
  client trusts the proxy's CA, or the test CA when direct), then keep-alive requests;
* ``https-new`` a new TCP connection, CONNECT and TLS handshake for every request.

``concurrency`` connections each send one request at a time (no pipelining). Every answer
must be a 200 or it counts as an error. Latency is measured per request from the first byte
written to the last byte read (for ``https-new`` it includes connect, CONNECT and handshake).
Runs are bounded by time and by request count; every network wait has a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.proxyproc import ssl_context

LLM_HOST = "api.openai.com"
PATH = "/v1/chat/completions"
MODES = ("http", "https", "https-new")
REQUEST_TIMEOUT = 10.0
BODY = json.dumps(
    {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a helpful tutor for a 12-year-old."},
            {"role": "user", "content": "Explain photosynthesis in one sentence."},
        ],
        "max_tokens": 64,
    },
    separators=(",", ":"),
).encode()


@dataclass(frozen=True)
class Target:
    """Where the client connects: a proxy (``via_proxy``) or the upstream itself."""

    name: str
    port: int
    via_proxy: bool
    ca: Path  # what the client trusts for HTTPS: the proxy's CA, or the test CA when direct


@dataclass
class LoadResult:
    requests: int = 0  # completed with 200 inside the measured window
    errors: int = 0
    seconds: float = 0.0
    completed_total: int = 0  # every answered request, warm-up included
    latencies_ns: list[int] = field(default_factory=list)
    first_error: str | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def note_error(self, what: str) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = what


def request_bytes(absolute: bool) -> bytes:
    target = f"http://{LLM_HOST}{PATH}" if absolute else PATH
    head = (
        f"POST {target} HTTP/1.1\r\nhost: {LLM_HOST}\r\n"
        "content-type: application/json\r\naccept: application/json\r\n"
        "authorization: Bearer sk-bench-not-a-real-key\r\n"
        f"content-length: {len(BODY)}\r\n\r\n"
    )
    return head.encode() + BODY


def client_tls(ca: Path) -> ssl.SSLContext:
    ctx = ssl_context(ca)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def open_connection(target: Target, mode: str, tls: ssl.SSLContext | None) -> Streams:
    """A connection ready for requests: TCP, then CONNECT and TLS as the mode needs."""
    if not target.via_proxy:
        return await asyncio.open_connection(
            "127.0.0.1", target.port, ssl=tls, server_hostname=LLM_HOST if tls else None
        )
    reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
    if tls is not None:
        writer.write(f"CONNECT {LLM_HOST}:443 HTTP/1.1\r\nhost: {LLM_HOST}:443\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if head[9:12] != b"200":
            writer.close()
            raise ConnectionError(f"CONNECT refused: {head[:40]!r}")
        await writer.start_tls(tls, server_hostname=LLM_HOST)
    return reader, writer


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; (status, whether the server closes the connection after it)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at >= 0:
        stop = lower.find(b"\r\n", at + 2)
        await reader.readexactly(int(lower[at + 17 : stop]))
    elif b"\r\ntransfer-encoding: chunked" in lower:
        await _read_chunked(reader)
    else:
        raise ConnectionError("response without a length")
    return status, b"\r\nconnection: close" in lower


async def _read_chunked(reader: asyncio.StreamReader, max_chunks: int = 100_000) -> None:
    for _ in range(max_chunks):
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        await reader.readexactly(size + 2)
        if size == 0:
            return
    raise ConnectionError("too many chunks")


@dataclass
class _Run:
    target: Target
    mode: str
    request: bytes
    tls: ssl.SSLContext | None
    measure_from: float
    deadline: float
    max_requests: int
    result: LoadResult

    def more(self) -> bool:
        return (
            time.perf_counter() < self.deadline and self.result.completed_total < self.max_requests
        )


async def _worker(run: _Run) -> None:
    streams: Streams | None = None
    result = run.result
    while run.more():
        started_ns = time.perf_counter_ns()
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                if streams is None:
                    streams = await open_connection(run.target, run.mode, run.tls)
                streams[1].write(run.request)
                status, closing = await read_response(streams[0])
        except (
            OSError,
            EOFError,
            ValueError,
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ssl.SSLError,
        ) as exc:
            result.note_error(f"{type(exc).__name__}: {exc}")
            await _close(streams)
            streams = None
            await asyncio.sleep(0.01)  # a broken target must not turn this into a busy loop
            continue
        done_ns = time.perf_counter_ns()
        result.completed_total += 1
        if closing or run.mode == "https-new":
            await _close(streams)
            streams = None
        if status != 200:
            result.note_error(f"HTTP {status}")
        elif started_ns / 1e9 >= run.measure_from and done_ns / 1e9 <= run.deadline:
            result.requests += 1
            result.latencies_ns.append(done_ns - started_ns)
    await _close(streams)


async def _close(streams: Streams | None) -> None:
    if streams is not None:
        streams[1].close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await streams[1].wait_closed()


async def _run_load(
    target: Target, mode: str, concurrency: int, duration: float, warmup: float, max_requests: int
) -> LoadResult:
    tls = client_tls(target.ca) if mode != "http" else None
    absolute = target.via_proxy and mode == "http"
    start = time.perf_counter()
    run = _Run(
        target,
        mode,
        request_bytes(absolute),
        tls,
        start + warmup,
        start + warmup + duration,
        max_requests,
        LoadResult(),
    )
    workers = [asyncio.create_task(_worker(run)) for _ in range(concurrency)]
    async with asyncio.timeout(warmup + duration + REQUEST_TIMEOUT + 5):
        await asyncio.gather(*workers)
    measured_until = min(time.perf_counter(), run.deadline)
    run.result.seconds = max(measured_until - run.measure_from, 1e-9)
    return run.result


def run_load(
    target: Target,
    mode: str,
    concurrency: int,
    duration: float,
    warmup: float = 0.5,
    max_requests: int = 1_000_000,
) -> LoadResult:
    """Load ``target`` for ``warmup`` + ``duration`` seconds (or ``max_requests``)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
    return asyncio.run(_run_load(target, mode, concurrency, duration, warmup, max_requests))
