"""The callable mitmproxy runs on every chunk of an allowed LLM answer it streams.

Each chunk passes on unchanged (less the usage event the gate asked for, see
``catalog.usage_filter``) while a decoded copy feeds the usage reader (``BodyUsage``). The
relay answers with ``bytes`` or a list of non-empty pieces, never an empty piece: mitmproxy
sends each piece as one HTTP/1 chunk, and an empty one would end the client's body before
the upstream's.

A stream's chunks arrive tens of milliseconds apart, so each one finds the proxy asleep
and its code cold: what the relay touches per chunk costs several times its warm price
(the streaming section of ``make bench``). Most chunks of a stream are alike — one
``data:`` line of one event, no usage in it, the model already known — and for those the
usage reader would only count an event and the filter would pass it whole. ``relay``
settles them in one function with a few substring counts (C speed) and goes through the
reader and the filter only for the others; both ways give the same bytes, usage and event
counts (tests/proxy/catalog/test_relay.py holds them side by side).
"""

from __future__ import annotations

from collections.abc import Callable

from proxy.catalog.shapes import LINE_CAP, compact_namings
from proxy.catalog.stream_usage import BodyUsage
from proxy.catalog.usage_filter import InjectedUsageFilter

Relay = Callable[[bytes], "bytes | list[bytes]"]


def make_relay(
    usage: BodyUsage,
    decode: Callable[[bytes], bytes] | None,
    plain_body: bool,
    strip: InjectedUsageFilter | None,
    on_error: Callable[[], None],
) -> Relay:
    """The stream callable for one answer. *usage* is fed ``decode(chunk)`` for each chunk
    (None: an encoding the gate cannot read; a chunk that fails to decode or read calls
    *on_error* once and the stream goes on uncounted); *plain_body*: the body is not
    encoded (``decode`` is the identity); *strip*, when the gate asked for usage, drops the
    usage event."""
    reader = usage.sse
    # The fast path holds while the reader rests with the model known, the filter holds no
    # partial event and the body needs no decoding; ``namings`` spell that model compactly.
    namings: tuple[bytes, bytes] | None = None

    def settle() -> None:
        """After a chunk went the long way: may the next one take the short one?"""
        nonlocal namings, reader
        reader = reader or usage.sse
        model = reader.resting_model() if reader is not None and plain_body else None
        held = strip is not None and strip.holding
        namings = compact_namings(model) if model is not None and not held else None

    def slow(chunk: bytes) -> bytes | list[bytes]:
        nonlocal decode
        if decode is not None and chunk:
            try:
                usage.feed(decode(chunk))
            except Exception:  # noqa: BLE001 - counting must never break a stream
                on_error()
                decode = None
        settle()
        if strip is not None:
            return strip(chunk)
        return chunk or []

    def relay(chunk: bytes) -> bytes | list[bytes]:
        if (
            namings is not None
            and decode is not None
            and chunk.find(b"\n") == len(chunk) - 2  # one line, then the blank line
            and chunk.endswith(b"\n\n")
            and chunk.startswith(b"data:")
            and len(chunk) <= LINE_CAP
            and chunk.find(b"[DONE]", 5, 16) == -1
            and chunk.count(b"usage") == chunk.count(b'"usage":null')
            and chunk.find(b'"meta"') == -1
            and chunk.find(b'eval_count"') == -1
            and chunk.count(b'"model') == chunk.count(namings[0]) + chunk.count(namings[1])
        ):
            assert reader is not None
            reader.events += 1
            if strip is not None:
                strip.events += 1
            return chunk
        return slow(chunk)

    return relay
