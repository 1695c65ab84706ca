"""Every content encoding an LLM API may use decodes chunk by chunk, cut anywhere."""

from __future__ import annotations

import gzip
import zlib

import brotli
import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.decoding import chunk_decoder, zstd

BODY = (
    b"".join(
        b'data: {"id":"c%d","choices":[{"delta":{"content":"word %d "}}]}\n\n' % (i, i)
        for i in range(300)
    )
    + b'data: {"usage":{"prompt_tokens":12,"completion_tokens":300}}\n\ndata: [DONE]\n\n'
)

ENCODED = {
    "gzip": gzip.compress(BODY),
    "deflate": zlib.compress(BODY),
    "br": brotli.compress(BODY),
    "zstd": zstd.compress(BODY),
    "identity": BODY,
}


def _cut(data: bytes, sizes: list[int]) -> list[bytes]:
    chunks, at = [], 0
    for size in sizes:
        chunks.append(data[at : at + size])
        at += size
    chunks.append(data[at:])
    return chunks


@pytest.mark.parametrize("encoding", sorted(ENCODED))
@given(sizes=st.lists(st.integers(min_value=0, max_value=400), max_size=30))
def test_decoded_whatever_the_chunk_sizes(encoding: str, sizes: list[int]) -> None:
    decode = chunk_decoder(encoding)
    assert decode is not None
    assert b"".join(decode(chunk) for chunk in _cut(ENCODED[encoding], sizes)) == BODY


def test_zstd_in_several_frames() -> None:
    frames = zstd.compress(BODY[:5000]) + zstd.compress(BODY[5000:])
    decode = chunk_decoder("zstd")
    assert decode is not None
    assert b"".join(decode(chunk) for chunk in _cut(frames, [100] * 200)) == BODY


@pytest.mark.parametrize("header", [None, "", "identity", " GZIP ", "x-gzip", "Br", "ZSTD"])
def test_header_spellings(header: str | None) -> None:
    assert chunk_decoder(header) is not None


def test_unknown_encoding_is_not_decoded() -> None:
    assert chunk_decoder("compress") is None


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
def test_broken_data_raises_for_the_caller_to_stop_counting(encoding: str) -> None:
    decode = chunk_decoder(encoding)
    assert decode is not None
    with pytest.raises(Exception):  # noqa: B017,PT011 - each library has its own error type
        decode(b"\x00not compressed at all" * 10)


# --- request bodies: bounded decoding ----------------------------------------------------


def test_request_bodies_decode_every_layer_within_the_limit() -> None:
    import gzip as gz

    import brotli as br

    from proxy.decoding import decode_body

    body = b'{"model": "gpt-4o"}' * 50
    assert decode_body(gz.compress(gz.compress(body)), "gzip, gzip", 10_000) == body
    assert decode_body(br.compress(body), "BR", 10_000) == body
    assert decode_body(body, "identity", 10_000) == body


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
def test_a_compression_bomb_stops_at_the_limit(encoding: str) -> None:
    import tracemalloc
    import zlib as zl

    import brotli as br

    from proxy.decoding import Unreadable, decode_body

    pack = {"gzip": _gzip, "deflate": zl.compress, "br": br.compress, "zstd": _zstd}[encoding]
    bomb = pack(b"\0" * 40_000_000)
    tracemalloc.start()
    with pytest.raises(Unreadable, match="larger than"):
        decode_body(bomb, encoding, 2 * 1024 * 1024)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 12 * 1024 * 1024  # the cap and a few buffers, not 40 MB


@pytest.mark.parametrize(
    ("encoding", "body"),
    [("x-teen", b"{}"), ("gzip", b"not gzip"), ("gzip, gzip, gzip, gzip", b"{}")],
)
def test_unknown_broken_or_stacked_encodings_are_unreadable(encoding: str, body: bytes) -> None:
    from proxy.decoding import Unreadable, decode_body

    with pytest.raises(Unreadable):
        decode_body(body, encoding, 10_000)


def _gzip(data: bytes) -> bytes:
    import gzip as gz

    return gz.compress(data)


def _zstd(data: bytes) -> bytes:
    from proxy.decoding import zstd

    return zstd.compress(data)  # type: ignore[no-any-return]
