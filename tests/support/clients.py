"""SDK and HTTP clients that talk through a test proxy and trust only the given CA files.

Note: ``anthropic`` 2.x (and ``openai`` 3.x internally) are built on ``httpx2``; the anthropic
SDK *rejects* an ``httpx.Client`` as ``http_client`` with a TypeError, so it gets an
``httpx2.Client``. The openai SDK accepts either; it gets a plain ``httpx.Client`` here (the
form most tests and docs use). ``trust_env=False`` everywhere: no proxy or CA settings leak in
from the environment.
"""

from __future__ import annotations

import os
import socket

import anthropic
import httpx
import httpx2
import openai

from .proxyproc import ssl_context

__all__ = ["RawHttps", "anthropic_client", "http_client", "openai_client"]

TIMEOUT = 20.0


def http_client(proxy: str | None, *ca_files: str | os.PathLike[str]) -> httpx.Client:
    """``httpx.Client`` via ``proxy`` (``http://127.0.0.1:PORT``) trusting only ``ca_files``."""
    return httpx.Client(
        proxy=proxy, verify=ssl_context(*ca_files), trust_env=False, timeout=TIMEOUT
    )


def openai_client(
    proxy: str | None,
    *ca_files: str | os.PathLike[str],
    base_url: str = "https://api.openai.com/v1",
    api_key: str = "sk-test",
) -> openai.OpenAI:
    return openai.OpenAI(
        api_key=api_key,
        base_url=base_url,
        max_retries=0,
        timeout=TIMEOUT,
        http_client=http_client(proxy, *ca_files),
    )


def anthropic_client(
    proxy: str | None,
    *ca_files: str | os.PathLike[str],
    base_url: str = "https://api.anthropic.com",
    api_key: str = "sk-ant-test",
) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key=api_key,
        base_url=base_url,
        max_retries=0,
        timeout=TIMEOUT,
        http_client=httpx2.Client(
            proxy=proxy, verify=ssl_context(*ca_files), trust_env=False, timeout=TIMEOUT
        ),
    )


class RawHttps:
    """One HTTP/1.1 keep-alive connection through an explicit proxy, read byte for byte.

    CONNECT, TLS (trusting only *ca*), then any number of requests on the same connection.
    Responses are parsed strictly: a chunked body must end with its ``0`` chunk, and bytes the
    server sends that belong to no response make the next ``request`` fail.
    """

    def __init__(self, proxy: tuple[str, int], host: str, ca: os.PathLike[str], source: str):
        raw = socket.create_connection(proxy, timeout=TIMEOUT, source_address=(source, 0))
        raw.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
        self._buffer = b""
        self._sock: socket.socket = raw
        status, _ = self._head()
        if status != 200:
            raise ConnectionError(f"CONNECT {host} answered {status}")
        self._sock = ssl_context(ca).wrap_socket(raw, server_hostname=host)
        self.host = host

    def request(
        self, method: str, path: str, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes, list[bytes]]:
        """Status, headers, body and the body's chunks as the wire framed them."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}",
                 f"Content-Length: {len(body)}"]  # fmt: skip
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        status, head = self._head()
        if "chunked" in head.get("transfer-encoding", ""):
            chunks = self._chunks()
            return status, head, b"".join(chunks), chunks
        data = self._exactly(int(head.get("content-length", "0")))
        return status, head, data, [data]

    def close(self) -> None:
        self._sock.close()

    def _fill(self) -> None:
        data = self._sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed by the proxy")
        self._buffer += data

    def _line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            self._fill()
        line, _, self._buffer = self._buffer.partition(b"\r\n")
        return line

    def _exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill()
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _head(self) -> tuple[int, dict[str, str]]:
        status_line = self._line().decode("latin-1")
        version, status, *_ = status_line.split(" ", 2)
        if not version.startswith("HTTP/1.") or not status.isdigit():
            raise ValueError(f"not an HTTP status line: {status_line!r}")
        head: dict[str, str] = {}
        while line := self._line():
            name, _, value = line.decode("latin-1").partition(":")
            head[name.strip().lower()] = value.strip().lower()
        return int(status), head

    def _chunks(self) -> list[bytes]:
        chunks = []
        while True:
            size_line = self._line()
            size = int(size_line.split(b";")[0], 16)  # ValueError on stray bytes
            if size == 0:
                if self._line() != b"":
                    raise ValueError("trailers or garbage after the last chunk")
                return chunks
            chunks.append(self._exactly(size))
            if self._line() != b"":
                raise ValueError("a chunk longer than its size line said")
