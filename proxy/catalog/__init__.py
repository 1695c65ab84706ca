"""The LLM services the gate recognises, and how each API family is read.

``services.yaml`` is the catalog as data, read and checked by ``services`` (``Provider``,
``Catalog``); ``hosts`` parses host names and patterns and indexes them for the hot path;
``providers`` is the front door for parsing requests and usage: ``routes`` reads the path
as the service routes it, ``requests`` the body that route takes (endpoint, models, prompt,
and why a body could not be read); ``shapes`` the per-family request/usage readers;
``stream_usage`` reads usage from an answer as it streams, whatever its framing (SSE,
NDJSON, a JSON array); ``usage_filter`` the stream filter for usage the gate asked for;
``relay`` the callable mitmproxy runs on each chunk of a streamed answer (both of those,
with a fast path for the usual chunk);
``pac`` renders the proxy auto-config file from the catalog.

May import: ``governance`` (facts only) and each other; nothing else of ``proxy``.
"""
