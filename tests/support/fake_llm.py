"""A fake upstream LLM server (OpenAI, Anthropic, Gemini, Cohere, Ollama shapes) over real TLS
on 127.0.0.1, or over plain HTTP (``FakeLLM(None)``), as a household's Ollama server is
usually reached (``http://HOST:11434``).

Starlette app served by uvicorn in a background thread with its own event loop. It answers for
any Host header, routes by path only, records every request it receives and, for streamed
answers, the exact bytes it sent (``FakeLLM.streamed``, keyed by the request's index).

Test knobs (request headers):

* ``x-fake-delay-ms: N`` -- sleep N ms between the events of a streamed answer, so a test can
  tell whether a proxy forwards them one by one or buffers the whole body.
* ``x-fake-status: NNN`` -- answer with that status and a provider-shaped JSON error body.

Usage::

    with FakeLLM(pki) as fake:
        os.environ["HEARTHGATE_TEST_UPSTREAM"] = fake.address
        ...
        assert fake.requests[-1].path == "/v1/chat/completions"

    with FakeLLM(None) as plain:  # plain HTTP: plain.url is http://127.0.0.1:PORT
        ...
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from .pki import Pki

__all__ = [
    "ANTHROPIC_STREAM_TEXT",
    "ANTHROPIC_USAGE",
    "CHAT_STREAM_CHUNKS",
    "CHAT_STREAM_USAGE",
    "CHAT_USAGE",
    "COHERE_USAGE",
    "GEMINI_STREAM_TEXT",
    "GEMINI_USAGE",
    "OLLAMA_EMBED_TOKENS",
    "OLLAMA_STREAM_TEXT",
    "OLLAMA_USAGE",
    "RESPONSES_STREAM_TEXT",
    "RESPONSES_USAGE",
    "FakeLLM",
    "Recorded",
    "reply_text",
]

# What the fake answers, exported so tests can assert against the same constants.
CHAT_USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
CHAT_STREAM_CHUNKS = ("one", " two", " three", " four", " five")
CHAT_STREAM_USAGE = {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}
RESPONSES_USAGE = {"input_tokens": 13, "output_tokens": 9, "total_tokens": 22}
RESPONSES_STREAM_DELTAS = ("one", " two", " three")
RESPONSES_STREAM_TEXT = "".join(RESPONSES_STREAM_DELTAS)
ANTHROPIC_USAGE = {"input_tokens": 17, "output_tokens": 8}
ANTHROPIC_STREAM_DELTAS = ("one", " two", " three")
ANTHROPIC_STREAM_TEXT = "".join(ANTHROPIC_STREAM_DELTAS)
GEMINI_USAGE = {"promptTokenCount": 5, "candidatesTokenCount": 4, "totalTokenCount": 9}
GEMINI_STREAM_DELTAS = ("one", " two", " three")
GEMINI_STREAM_TEXT = "".join(GEMINI_STREAM_DELTAS)
COHERE_USAGE = {"input_tokens": 21, "output_tokens": 6}
COHERE_STREAM_DELTAS = ("one", " two", " three")
OLLAMA_USAGE = {"prompt_eval_count": 26, "eval_count": 3}
OLLAMA_EMBED_TOKENS = 4
OLLAMA_STREAM_DELTAS = ("one", " two", " three")
OLLAMA_STREAM_TEXT = "".join(OLLAMA_STREAM_DELTAS)

START_TIMEOUT = 20.0


def reply_text(prompt: str) -> str:
    """The non-streamed answer text for a given last user message."""
    return f"fake reply to: {prompt[:40]}"


@dataclass(frozen=True)
class Recorded:
    """One request as the fake upstream saw it."""

    method: str
    host: str
    """The Host header, verbatim (may include a port)."""
    path: str
    """Path including the query string, e.g. ``/v1beta/models/x:streamGenerateContent?alt=sse``."""
    headers: dict[str, str]
    """Lower-cased names; repeated headers joined with ``", "``."""
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


# --------------------------------------------------------------------------------------------
# Request parsing helpers


def _text_of(content: Any, text_types: tuple[str, ...]) -> str:
    """Text of a message ``content`` that is either a string or a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type", "text") in text_types
        )
    return ""


def _last_user_text(messages: Any, text_types: tuple[str, ...]) -> str:
    if isinstance(messages, str):
        return messages
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role", "user") == "user":
            return _text_of(message.get("content"), text_types)
    return ""


def _gemini_last_user_text(body: dict[str, Any]) -> str:
    for content in reversed(body.get("contents") or []):
        if isinstance(content, dict) and content.get("role", "user") == "user":
            return "".join(
                str(p.get("text", "")) for p in content.get("parts") or [] if isinstance(p, dict)
            )
    return ""


def _delay_seconds(request: Request) -> float:
    try:
        return max(0.0, float(request.headers.get("x-fake-delay-ms", "0")) / 1000.0)
    except ValueError:
        return 0.0


def _new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def _sse(data: Any, event: str | None = None, *, newline: str = "\n") -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}{newline}" if event else ""
    return f"{head}data: {payload}{newline}{newline}".encode()


async def _paced(events: list[bytes], delay: float) -> AsyncIterator[bytes]:
    """Yield events one by one, sleeping ``delay`` seconds between consecutive events."""
    for i, event in enumerate(events):
        if i and delay:
            await asyncio.sleep(delay)
        yield event


def _sse_response(events: list[bytes], delay: float, headers: dict[str, str]) -> Response:
    return StreamingResponse(
        _paced(events, delay),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", **headers},
    )


# --------------------------------------------------------------------------------------------
# Provider handlers


def _openai_chat(body: dict[str, Any], delay: float) -> Response:
    model = str(body.get("model", "gpt-fake"))
    created = int(time.time())
    cid = _new_id("chatcmpl-")
    headers = {"x-request-id": _new_id("req_"), "openai-processing-ms": "5"}
    if not body.get("stream"):
        prompt = _last_user_text(body.get("messages"), ("text",))
        return JSONResponse(
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": reply_text(prompt),
                            "refusal": None,
                        },
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": dict(CHAT_USAGE),
            },
            headers=headers,
        )

    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    events: list[bytes] = []
    last = len(CHAT_STREAM_CHUNKS) - 1
    for i, text in enumerate(CHAT_STREAM_CHUNKS):
        delta: dict[str, Any] = {"content": text}
        if i == 0:
            delta = {"role": "assistant", "content": text, "refusal": None}
        chunk: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "delta": delta,
                    "logprobs": None,
                    "finish_reason": "stop" if i == last else None,
                }
            ],
        }
        if include_usage:
            chunk["usage"] = None
        events.append(_sse(chunk))
    if include_usage:
        events.append(
            _sse(
                {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "system_fingerprint": "fp_fake",
                    "choices": [],
                    "usage": dict(CHAT_STREAM_USAGE),
                }
            )
        )
    events.append(_sse("[DONE]"))
    return _sse_response(events, delay, headers)


def _responses_object(
    rid: str, model: str, created: int, status: str, output: list[Any], usage: Any
) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {},
    }


def _responses_usage() -> dict[str, Any]:
    return {
        "input_tokens": RESPONSES_USAGE["input_tokens"],
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": RESPONSES_USAGE["output_tokens"],
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": RESPONSES_USAGE["total_tokens"],
    }


def _message_item(item_id: str, text: str | None, status: str) -> dict[str, Any]:
    content = [] if text is None else [{"type": "output_text", "text": text, "annotations": []}]
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _openai_responses(body: dict[str, Any], delay: float) -> Response:
    model = str(body.get("model", "gpt-fake"))
    created = int(time.time())
    rid = _new_id("resp_")
    item_id = _new_id("msg_")
    headers = {"x-request-id": _new_id("req_")}
    if not body.get("stream"):
        prompt = _last_user_text(body.get("input"), ("input_text", "text"))
        item = _message_item(item_id, reply_text(prompt), "completed")
        return JSONResponse(
            _responses_object(rid, model, created, "completed", [item], _responses_usage()),
            headers=headers,
        )

    seq = iter(range(1_000))
    text = RESPONSES_STREAM_TEXT
    part_empty = {"type": "output_text", "text": "", "annotations": []}
    part_full = {"type": "output_text", "text": text, "annotations": []}

    def ev(kind: str, **fields: Any) -> bytes:
        return _sse({"type": kind, "sequence_number": next(seq), **fields}, event=kind)

    pending = _responses_object(rid, model, created, "in_progress", [], None)
    events = [
        ev("response.created", response=pending),
        ev("response.in_progress", response=pending),
        ev(
            "response.output_item.added",
            output_index=0,
            item=_message_item(item_id, None, "in_progress"),
        ),
        ev(
            "response.content_part.added",
            item_id=item_id,
            output_index=0,
            content_index=0,
            part=part_empty,
        ),
    ]
    for delta in RESPONSES_STREAM_DELTAS:
        events.append(
            ev(
                "response.output_text.delta",
                item_id=item_id,
                output_index=0,
                content_index=0,
                delta=delta,
                logprobs=[],
            )
        )
    done_item = _message_item(item_id, text, "completed")
    events += [
        ev(
            "response.output_text.done",
            item_id=item_id,
            output_index=0,
            content_index=0,
            text=text,
            logprobs=[],
        ),
        ev(
            "response.content_part.done",
            item_id=item_id,
            output_index=0,
            content_index=0,
            part=part_full,
        ),
        ev("response.output_item.done", output_index=0, item=done_item),
        ev(
            "response.completed",
            response=_responses_object(
                rid, model, created, "completed", [done_item], _responses_usage()
            ),
        ),
    ]
    return _sse_response(events, delay, headers)


def _anthropic_messages(body: dict[str, Any], delay: float) -> Response:
    model = str(body.get("model", "claude-fake"))
    mid = _new_id("msg_")
    headers = {"request-id": _new_id("req_")}
    if not body.get("stream"):
        prompt = _last_user_text(body.get("messages"), ("text",))
        return JSONResponse(
            {
                "id": mid,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": reply_text(prompt)}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": dict(ANTHROPIC_USAGE),
            },
            headers=headers,
        )

    def ev(kind: str, **fields: Any) -> bytes:
        return _sse({"type": kind, **fields}, event=kind)

    events = [
        ev(
            "message_start",
            message={
                "id": mid,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": ANTHROPIC_USAGE["input_tokens"], "output_tokens": 1},
            },
        ),
        ev("content_block_start", index=0, content_block={"type": "text", "text": ""}),
    ]
    for delta in ANTHROPIC_STREAM_DELTAS:
        events.append(
            ev("content_block_delta", index=0, delta={"type": "text_delta", "text": delta})
        )
    events += [
        ev("content_block_stop", index=0),
        ev(
            "message_delta",
            delta={"stop_reason": "end_turn", "stop_sequence": None},
            usage={"output_tokens": ANTHROPIC_USAGE["output_tokens"]},
        ),
        ev("message_stop"),
    ]
    return _sse_response(events, delay, headers)


def _gemini_chunk(model: str, text: str, last: bool) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}}
    if last:
        candidate["finishReason"] = "STOP"
    candidate["index"] = 0
    chunk: dict[str, Any] = {"candidates": [candidate], "modelVersion": model}
    if last:
        chunk["usageMetadata"] = dict(GEMINI_USAGE)
    chunk["responseId"] = "fake-gemini-response"
    return chunk


def _gemini(model: str, method: str, body: dict[str, Any], sse: bool, delay: float) -> Response:
    if method == "generateContent":
        return JSONResponse(
            _gemini_chunk(model, reply_text(_gemini_last_user_text(body)), last=True)
        )
    last = len(GEMINI_STREAM_DELTAS) - 1
    chunks = [_gemini_chunk(model, t, i == last) for i, t in enumerate(GEMINI_STREAM_DELTAS)]
    if sse:
        return _sse_response([_sse(c, newline="\r\n") for c in chunks], delay, {})
    # Without alt=sse Gemini streams one JSON array, element by element.
    parts = [
        ("[" if i == 0 else ",\r\n") + json.dumps(c) + ("]" if i == last else "")
        for i, c in enumerate(chunks)
    ]
    return StreamingResponse(
        _paced([p.encode() for p in parts], delay), media_type="application/json"
    )


def _cohere_chat(body: dict[str, Any], delay: float) -> Response:
    """Cohere v2 chat: one JSON object, or typed SSE events ending with ``message-end``."""
    cid = _new_id("")
    usage = {"billed_units": dict(COHERE_USAGE), "tokens": dict(COHERE_USAGE)}
    if not body.get("stream"):
        prompt = _last_user_text(body.get("messages"), ("text",))
        return JSONResponse(
            {
                "id": cid,
                "finish_reason": "COMPLETE",
                "message": {
                    "role": "assistant",
                    "content": [{"type": "text", "text": reply_text(prompt)}],
                },
                "usage": usage,
            }
        )
    events = [
        _sse({"id": cid, "type": "message-start", "delta": {"message": {"role": "assistant"}}},
             "message-start"),
        _sse({"type": "content-start", "index": 0,
              "delta": {"message": {"content": {"type": "text", "text": ""}}}}, "content-start"),
    ]  # fmt: skip
    for text in COHERE_STREAM_DELTAS:
        delta = {"message": {"content": {"text": text}}}
        events.append(_sse({"type": "content-delta", "index": 0, "delta": delta}, "content-delta"))
    events += [
        _sse({"type": "content-end", "index": 0}, "content-end"),
        _sse({"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": usage}},
             "message-end"),
    ]  # fmt: skip
    return _sse_response(events, delay, {})


def _ollama_line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def _ollama_done(model: str, **fields: Any) -> dict[str, Any]:
    return {
        "model": model,
        "created_at": "2026-01-01T00:00:00.000000Z",
        **fields,
        "done": True,
        "done_reason": "stop",
        "total_duration": 1_000_000,
        "load_duration": 100_000,
        "prompt_eval_count": OLLAMA_USAGE["prompt_eval_count"],
        "prompt_eval_duration": 200_000,
        "eval_count": OLLAMA_USAGE["eval_count"],
        "eval_duration": 300_000,
    }


def _ollama(path: str, body: dict[str, Any], delay: float) -> Response:
    """Ollama's native API: NDJSON streams by default (``stream: false`` for one object)."""
    model = str(body.get("model", "llama-fake"))
    if path == "/api/embed":
        count = len(body["input"]) if isinstance(body.get("input"), list) else 1
        return JSONResponse(
            {"model": model, "embeddings": [[0.1, 0.2, 0.3]] * count,
             "total_duration": 1000, "load_duration": 10,
             "prompt_eval_count": OLLAMA_EMBED_TOKENS}
        )  # fmt: skip
    if path == "/api/embeddings":
        return JSONResponse({"embedding": [0.1, 0.2, 0.3]})
    chat = path == "/api/chat"
    if body.get("stream", True) is False:
        if chat:
            prompt = _last_user_text(body.get("messages"), ("text",))
            answer = {"message": {"role": "assistant", "content": reply_text(prompt)}}
        else:
            answer = {"response": reply_text(str(body.get("prompt", ""))), "context": [1, 2]}
        return JSONResponse(_ollama_done(model, **answer))
    lines = []
    for text in OLLAMA_STREAM_DELTAS:
        part = {"message": {"role": "assistant", "content": text}} if chat else {"response": text}
        lines.append(_ollama_line({"model": model, "created_at": "2026-01-01T00:00:00Z",
                                   **part, "done": False}))  # fmt: skip
    last = {"message": {"role": "assistant", "content": ""}} if chat else {"response": ""}
    lines.append(_ollama_line(_ollama_done(model, **last)))
    return StreamingResponse(_paced(lines, delay), media_type="application/x-ndjson")


def _error(path: str, status: int) -> Response:
    message = f"fake upstream error {status}"
    if path.startswith("/v1/messages"):
        body: dict[str, Any] = {
            "type": "error",
            "error": {"type": "api_error", "message": message},
        }
    elif path.startswith("/v1beta/"):
        body = {"error": {"code": status, "message": message, "status": "INTERNAL"}}
    else:
        body = {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
    return JSONResponse(body, status_code=status)


_GEMINI_PATH = re.compile(
    r"^/v1(?:beta)?/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)$"
)

_OLLAMA_PATHS = ("/api/chat", "/api/generate", "/api/embed", "/api/embeddings")


# --------------------------------------------------------------------------------------------
# The server


class _QuickExitServer(uvicorn.Server):
    """uvicorn, minus the wait for clients to close their keep-alive TLS connections.

    On Python >= 3.12 ``asyncio.Server.wait_closed`` (awaited by uvicorn's shutdown) waits for
    every connection, and a TLS close waits for the peer's close_notify: proxies and SDK
    clients that keep connections alive would stall every stop by the graceful timeout.
    """

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for conn in list(self.server_state.connections):
            transport = getattr(conn, "transport", None)
            if transport is not None:
                transport.abort()
        await super().shutdown(sockets=sockets)


class FakeLLM:
    """Fake upstream HTTPS server on 127.0.0.1 (see module docstring), plain HTTP when ``pki``
    is None; ``host`` and ``port`` place it elsewhere (a test namespace's address, port 443
    for DNS mode)."""

    def __init__(self, pki: Pki | None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.pki = pki
        self.host = host
        self.port: int = port
        self.requests: list[Recorded] = []
        self.streamed: dict[int, bytes] = {}
        """The bytes of each streamed answer, keyed by its request's index in ``requests``."""
        self.server_names: list[str | None] = []
        """TLS SNI of every handshake, in order (None: the client sent no SNI; plain HTTP:
        always empty)."""
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._thread_error: BaseException | None = None
        self.app = Starlette(
            routes=[
                Route(
                    "/{path:path}",
                    self._handle,
                    methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                )
            ]
        )

    # -- public API --------------------------------------------------------------------------

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, the format ``HEARTHGATE_TEST_UPSTREAM`` expects."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        scheme = "http" if self.pki is None else "https"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self) -> None:
        """Start serving; returns once the port accepts TCP connections."""
        if self._thread is not None:
            raise RuntimeError("FakeLLM already started")
        tls = self.pki
        config = uvicorn.Config(
            self.app,
            ssl_certfile=None if tls is None else str(tls.cert),
            ssl_keyfile=None if tls is None else str(tls.key),
            http="h11",
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        config.load()
        if tls is not None:
            assert config.ssl is not None
            config.ssl.sni_callback = self._on_sni
        self._server = server = _QuickExitServer(config)
        # Bind here rather than let uvicorn do it, so the port is known before serving starts.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]

        def run() -> None:
            try:
                asyncio.run(server.serve(sockets=[sock]))
            except BaseException as e:  # surfaced by start()
                self._thread_error = e
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, name=f"fake-llm-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"fake LLM server did not start: {self._thread_error!r}")
            time.sleep(0.01)
        # uvicorn sets `started` after create_server(sock=...) put the socket in listen state.

    def stop(self) -> None:
        """Stop at once: open (keep-alive or streaming) connections are aborted, not drained."""
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def clear(self) -> None:
        """Forget recorded requests and server names."""
        with self._lock:
            self.requests.clear()
            self.streamed.clear()
            self.server_names.clear()

    def snapshot(self) -> list[Recorded]:
        """A copy of ``requests`` taken under the lock."""
        with self._lock:
            return list(self.requests)

    def wait_for_requests(
        self,
        count: int = 1,
        timeout: float = 20.0,
        predicate: Callable[[Recorded], bool] | None = None,
    ) -> list[Recorded]:
        """Wait until at least ``count`` (matching) requests were recorded; return them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.snapshot() if predicate is None or predicate(r)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"expected {count} request(s), got {len(found)}: {found!r}")
            time.sleep(0.01)

    def __enter__(self) -> FakeLLM:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request handling --------------------------------------------------------------------

    def _on_sni(self, ssl_obj: object, server_name: str | None, ctx: object) -> None:
        with self._lock:
            self.server_names.append(server_name)

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        query = request.scope.get("query_string") or b""
        path = raw_path.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        host = headers.get("host", "")
        with self._lock:
            self.requests.append(Recorded(request.method, host, path, headers, body))
            index = len(self.requests) - 1
        answer = self._answer(request, path, headers, body)
        if isinstance(answer, StreamingResponse):
            answer.body_iterator = self._recording(index, answer.body_iterator)
        return answer

    async def _recording(self, index: int, chunks: AsyncIterator[Any]) -> AsyncIterator[bytes]:
        sent = bytearray()
        async for chunk in chunks:
            data = chunk if isinstance(chunk, bytes) else str(chunk).encode()
            sent += data
            yield data
        with self._lock:
            self.streamed[index] = bytes(sent)

    def _answer(
        self, request: Request, path: str, headers: dict[str, str], body: bytes
    ) -> Response:
        host = headers.get("host", "")
        status = headers.get("x-fake-status")
        if status is not None and status.strip().isdigit():
            return _error(request.url.path, int(status))

        url_path = request.url.path
        delay = _delay_seconds(request)
        if request.method == "POST":
            try:
                data = json.loads(body) if body else {}
            except ValueError:
                data = None
            if isinstance(data, dict):
                if url_path == "/v1/chat/completions":
                    return _openai_chat(data, delay)
                if url_path == "/v1/responses":
                    return _openai_responses(data, delay)
                if url_path == "/v1/messages":
                    return _anthropic_messages(data, delay)
                if m := _GEMINI_PATH.match(url_path):
                    sse = request.query_params.get("alt") == "sse"
                    return _gemini(m["model"], m["method"], data, sse, delay)
                if url_path.endswith("/chat/completions"):  # OpenAI-compatible services
                    return _openai_chat(data, delay)
                if url_path in ("/v2/chat", "/v1/chat"):
                    return _cohere_chat(data, delay)
                if url_path in _OLLAMA_PATHS:
                    return _ollama(url_path, data, delay)
        return PlainTextResponse(f"hello from upstream {host}")
