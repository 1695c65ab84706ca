"""Bad input, generated: no exception escapes, every LLM request gets a decision."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils

from proxy.addon import RECORD, GateAddon
from proxy.catalog.providers import BUILTIN_PROVIDERS, StreamUsage, parse_request, parse_usage
from proxy.gate import Gate
from proxy.metrics import Metrics
from proxy.rules.loader import RulesFileError, load_rules_text
from proxy.runtime import RulesHolder, StateCache
from proxy.store.writer import Writer

FAST = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=30,
)
# bodies shaped like the real ones, with anything at every position
shaped = st.fixed_dictionaries(
    {},
    optional={
        "model": json_values,
        "messages": json_values,
        "input": json_values,
        "instructions": json_values,
        "prompt": json_values,
        "system": json_values,
        "contents": json_values,
        "stream": json_values,
        "stream_options": json_values,
    },
)
paths = (
    st.sampled_from(
        [
            "/v1/chat/completions",
            "/v1/responses",
            "/v1/messages",
            "/v1beta/models/gemini-pro:generateContent",
            "/v2/chat",
            "/backend-api/conversation",
            "/v1/embeddings",
            "/",
        ]
    )
    | st.text()
)
providers = st.sampled_from(BUILTIN_PROVIDERS)


@FAST
@given(st.text(max_size=400))
def test_any_text_as_a_rules_file(text: str) -> None:
    try:
        load_rules_text(text)
    except RulesFileError as exc:
        assert exc.file_problems and all(p.line >= 1 for p in exc.file_problems)


@FAST
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "version",
                "settings",
                "groups",
                "people",
                "devices",
                "time_rules",
                "policies",
                "allowlist",
                "overrides",
                "consent",
                "providers",
                "prices",
                "notifications",
            ]
        ),
        json_values,
        max_size=6,
    )
)
def test_any_structure_as_a_rules_file(doc: dict[str, object]) -> None:
    try:
        load_rules_text(json.dumps(doc, allow_nan=False, default=str))
    except (RulesFileError, ValueError):
        pass


@FAST
@given(
    providers,
    st.sampled_from(["GET", "POST", "PUT"]),
    paths,
    st.one_of(shaped.map(lambda d: json.dumps(d, default=str).encode()), st.binary(max_size=300)),
)
def test_any_request_body_parses_without_raising(provider, method, path, body) -> None:  # type: ignore[no-untyped-def]
    parsed = parse_request(provider, method, path, "application/json", body)
    assert parsed.prompt is None or isinstance(parsed.prompt, str)
    assert parsed.model is None or isinstance(parsed.model, str)


@FAST
@given(
    st.sampled_from(["openai", "anthropic", "gemini", "cohere", "web"]),
    st.binary(max_size=500),
    st.lists(st.integers(0, 500), max_size=8),
)
def test_any_stream_cut_anywhere(api: str, data: bytes, cuts: list[int]) -> None:
    reader = StreamUsage(api)
    last = 0
    for cut in sorted(cuts):
        reader.feed(data[last:cut])
        last = max(last, cut)
    reader.feed(data[last:])
    assert reader.usage is not None
    parse_usage(api, "text/event-stream", data)
    parse_usage(api, "application/json", data)


def make_addon(tmp: Path) -> GateAddon:
    rules = tmp / "rules.yaml"
    rules.write_text(
        "version: 1\nsettings: {unknown_devices: {groups: [kids]}}\n"
        "groups: {kids: {}}\ntime_rules:\n"
        "  - {name: always, start: '00:00', end: '00:00', applies_to: "
        "{groups: [kids]}}\n"
    )
    metrics = Metrics()
    holder = RulesHolder(rules, metrics)
    writer = Writer(tmp)
    return GateAddon(
        Gate(
            holder, StateCache(tmp, writer, lambda: holder.snapshot.zone, metrics), writer, metrics
        )
    )


header_bytes = st.binary(min_size=1, max_size=40).filter(
    lambda b: b"\r" not in b and b"\n" not in b and b"\0" not in b
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    host=st.sampled_from(
        [
            "api.openai.com",
            "API.ANTHROPIC.COM.",
            "chatgpt.com",
            "generativelanguage.googleapis.com",
            "example.org",
            "",
            "x" * 300,
            "[::1]",
            "api.openai.com:8443",
        ]
    ),
    headers=st.lists(st.tuples(header_bytes, header_bytes), max_size=6),
    body=st.binary(max_size=200),
    path=paths,
)
async def test_odd_requests_always_get_a_decision_or_pass(
    tmp_path_factory,
    host,
    headers,  # type: ignore[no-untyped-def]
    body,
    path,
) -> None:
    addon = make_addon(tmp_path_factory.mktemp("fuzz"))
    hdrs = http.Headers([(k, v) for k, v in headers])
    req = tutils.treq(
        host=host or "x",
        port=443,
        scheme=b"https",
        method=b"POST",
        path=(path if path.startswith("/") else "/" + path).encode("utf-8", "surrogateescape"),
        headers=hdrs,
        content=body,
    )
    flow = tflow.tflow(req=req)
    flow.client_conn.sni = host or None
    with taddons.context(addon):
        addon.requestheaders(flow)
        await addon.request(flow)
    record = flow.metadata.get(RECORD)
    if record is not None:  # an LLM host: decided, and here always blocked
        assert flow.response is not None and flow.response.status_code in (403, 503)
    else:
        assert flow.response is None
