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
