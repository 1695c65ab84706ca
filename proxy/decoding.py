"""Incremental content decoding, so usage can be read from compressed SSE as it streams.

The bytes relayed to the client are never changed; only the copy handed to the usage reader
is decoded. An unknown or broken encoding yields no usage rather than an error.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import brotli

try:  # Python 3.14 has Zstandard in the standard library; mitmproxy pulls in the backport
    from compression import zstd  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the Python version
    from backports import zstd  # type: ignore[no-redef,unused-ignore]

Decoder = Callable[[bytes], bytes]


def chunk_decoder(content_encoding: str | None) -> Decoder | None:
    """A function from encoded chunk to decoded bytes; None when the encoding is unknown."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return lambda chunk: chunk
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress
    if encoding == "deflate":
        return zlib.decompressobj().decompress
    if encoding == "br":
        process: Decoder = brotli.Decompressor().process  # brotli ships no type hints
        return process
    if encoding == "zstd":
        return _ZstdFrames().decompress
    return None


class _ZstdFrames:
    """Zstandard that may arrive as several frames one after another: each frame gets a
    fresh decompressor, fed whatever followed the end of the one before."""

    def __init__(self) -> None:
        self._frame = zstd.ZstdDecompressor()

    def decompress(self, chunk: bytes) -> bytes:
        out = []
        while chunk:
            out.append(self._frame.decompress(chunk))
            if not self._frame.eof:
                break
            chunk = self._frame.unused_data
            self._frame = zstd.ZstdDecompressor()
        return b"".join(out)


# --- request bodies: decoded for inspection, never past the cap --------------------------

_BOUNDED = ("gzip", "x-gzip", "deflate", "br", "zstd")
MAX_LAYERS = 3  # Content-Encoding: gzip, gzip is legal; more is a trick, not a client


class Unreadable(ValueError):
    """A body the gate could not read; the message says why, for a parent."""


def decode_body(raw: bytes, content_encoding: str | None, limit: int) -> bytes:
    """*raw* with every Content-Encoding undone, in reverse order of application.

    Decoding is streamed with a bound: a body that grows past *limit* bytes once decoded
    raises ``Unreadable`` having held at most about *limit* bytes (a compression bomb costs
    the cap, not the bomb). An unknown or broken encoding raises ``Unreadable`` too.
    """
    names = [n.strip().lower() for n in (content_encoding or "").split(",")]
    names = [n for n in names if n and n != "identity"]
    if len(names) > MAX_LAYERS:
        raise Unreadable(f"its body is compressed {len(names)} times over")
    body = raw
    for name in reversed(names):
        if name not in _BOUNDED:
            raise Unreadable(f"its body is encoded as {name[:40]!r}, which the gate cannot read")
        try:
            body = _bounded(name, body, limit)
        except Unreadable:
            raise
        except Exception as exc:  # noqa: BLE001 - zlib.error, brotli.error, ZstdError ...
            raise Unreadable(f"its {name} body is broken") from exc
    return body


def _bounded(name: str, data: bytes, limit: int) -> bytes:
    if name == "br":
        return _brotli(data, limit)
    if name == "zstd":
        return _zstd(data, limit)
    wbits = 16 + zlib.MAX_WBITS if name in ("gzip", "x-gzip") else zlib.MAX_WBITS
    out = bytearray()
    while data:
        inflate = zlib.decompressobj(wbits)
        out += inflate.decompress(data, limit + 1 - len(out))
        _check(out, limit)
        if not inflate.eof:
            if inflate.unconsumed_tail:  # only when the output bound was hit
                _check(out + b"\0", limit)
            raise Unreadable(f"its {name} body is cut short")
        data = inflate.unused_data  # gzip members may follow one another
    return bytes(out)


def _brotli(data: bytes, limit: int) -> bytes:
    inflate = brotli.Decompressor()
    out = bytearray(inflate.process(data, output_buffer_limit=limit + 1))
    while len(out) <= limit and not inflate.is_finished() and not inflate.can_accept_more_data():
        out += inflate.process(b"", output_buffer_limit=limit + 1 - len(out))
    _check(out, limit)
    if not inflate.is_finished():
        raise Unreadable("its br body is cut short")
    return bytes(out)


def _zstd(data: bytes, limit: int) -> bytes:
    out = bytearray()
    while data:
        frame = zstd.ZstdDecompressor()
        out += frame.decompress(data, max_length=limit + 1 - len(out))
        _check(out, limit)
        if not frame.eof:
            if not frame.needs_input:
                _check(out + b"\0", limit)
            raise Unreadable("its zstd body is cut short")
        data = frame.unused_data
    return bytes(out)


def _check(out: bytearray | bytes, limit: int) -> None:
    if len(out) > limit:
        raise Unreadable("its body is larger than the gate inspects once decompressed")
