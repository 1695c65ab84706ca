"""Incremental content decoding, so usage can be read from compressed SSE as it streams.

The bytes relayed to the client are never changed; only the copy handed to the usage reader
is decoded. An unknown or broken encoding yields no usage rather than an error.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import brotli
import zstandard

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
        return zstandard.ZstdDecompressor().decompressobj().decompress
    return None
