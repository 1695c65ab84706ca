"""The addon with mitmproxy's test flows: decisions, answers and fail-closed errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils

from governance import pipeline
from governance.facts import Action, Decision, Stage
from proxy import flowfacts, responses
from proxy.addon import RECORD, GateAddon
from proxy.gate import Gate
from proxy.metrics import Metrics
from proxy.runtime import RulesHolder, StateCache
from proxy.store.writer import Writer

RULES = """\
version: 1
settings: {timezone: UTC, fail: %s}
groups: {kids: {}}
people: {alice: {groups: [kids]}}
devices: {alice-laptop: {person: alice, ips: [127.0.0.1]}}
time_rules:
  - {name: all-day, start: "00:00", end: "00:00", applies_to: {groups: [kids]}}
"""


@pytest.fixture
def make_addon(tmp_path: Path):  # type: ignore[no-untyped-def]
    def make(fail: str = "closed", rules: str = RULES) -> GateAddon:
        path = tmp_path / "rules.yaml"
        path.write_text(rules % fail if "%s" in rules else rules)
        metrics = Metrics()
        holder = RulesHolder(path, metrics)
        writer = Writer(tmp_path)
        cache = StateCache(tmp_path, writer, lambda: holder.snapshot.zone, metrics)
        return GateAddon(Gate(holder, cache, writer, metrics))

    return make


def llm_flow(
    host: str = "api.openai.com",
    path: str = "/v1/chat/completions",
    body: bytes = b'{"model": "gpt-4o", "messages": []}',
    headers: dict[str, str] | None = None,
) -> http.HTTPFlow:
    hdrs = http.Headers(content_type="application/json", **(headers or {}))
    req = tutils.treq(
        host=host,
        port=443,
        scheme=b"https",
        method=b"POST",
        path=path.encode(),
        headers=hdrs,
        content=body,
    )
    flow = tflow.tflow(req=req)
    flow.client_conn.sni = host
    return flow


async def test_block_answers_in_provider_shape(make_addon) -> None:  # type: ignore[no-untyped-def]
    addon = make_addon()
    with taddons.context(addon):
        flow = llm_flow("api.anthropic.com", "/v1/messages")
        await addon.request(flow)
    assert flow.response is not None and flow.response.status_code == 403
    body = json.loads(flow.response.content or b"")
    assert body["type"] == "error" and body["error"]["type"] == "permission_error"
    assert "all-day" in body["error"]["message"]


OLLAMA_RULES = RULES + "providers:\n  - {name: home-ollama, hosts: [ollama.lan], api: ollama}\n"


@pytest.mark.parametrize(
    ("host", "path", "message_of"),
    [
        ("api.cohere.com", "/v2/chat", lambda b: b["message"]),
        ("ollama.lan", "/api/chat", lambda b: b["error"]),  # a string: ResponseError's text
        ("ollama.lan", "/v1/chat/completions", lambda b: b["error"]["message"]),
        ("api.cohere.com", "/compatibility/v1/chat/completions", lambda b: b["error"]["message"]),
        ("generativelanguage.googleapis.com", "/v1beta/openai/chat/completions",
         lambda b: b["error"]["message"]),
        ("generativelanguage.googleapis.com", "/v1beta/models/g:generateContent",
         lambda b: b["error"]["status"] and b["error"]["message"]),
        ("api.mistral.ai", "/v1/chat/completions", lambda b: b["error"]["message"]),
        ("bedrock-runtime.us-east-1.amazonaws.com", "/model/anthropic.claude-3-haiku/converse",
         lambda b: b["message"]),
        ("bedrock-runtime.us-east-1.amazonaws.com", "/openai/v1/chat/completions",
         lambda b: b["error"]["message"]),
        ("api.replicate.com", "/v1/predictions", lambda b: b["status"] == 403 and b["detail"]),
    ],
)  # fmt: skip
async def test_block_answers_in_each_family_shape(make_addon, host, path, message_of) -> None:  # type: ignore[no-untyped-def]
    addon = make_addon(rules=OLLAMA_RULES % "closed")
    with taddons.context(addon):
        flow = llm_flow(host, path)
        await addon.request(flow)
    assert flow.response is not None and flow.response.status_code == 403
    message = message_of(json.loads(flow.response.content or b""))
    assert isinstance(message, str) and "all-day" in message
    aws = flow.response.headers.get("x-amzn-errortype")
    assert aws == ("AccessDeniedException" if path.startswith("/model/") else None)


async def test_non_llm_host_is_untouched(make_addon) -> None:  # type: ignore[no-untyped-def]
    addon = make_addon()
    with taddons.context(addon):
        flow = llm_flow("example.org", "/")
        await addon.request(flow)
    assert flow.response is None and RECORD not in flow.metadata


@pytest.mark.parametrize(("fail", "blocked"), [("closed", True), ("open", False)])
async def test_pipeline_error_follows_settings_fail(
    make_addon, monkeypatch: pytest.MonkeyPatch, fail: str, blocked: bool
) -> None:  # type: ignore[no-untyped-def]
    addon = make_addon(fail)

    def broken(*_args: object) -> None:
        raise RuntimeError("a bug in a stage")

    monkeypatch.setattr(pipeline, "decide", broken)
    with taddons.context(addon):
        flow = llm_flow()
        await addon.request(flow)
    record = flow.metadata[RECORD]
    assert record.decision.stage.value == "error"
    assert (flow.response is not None) is blocked
    errors = addon.gate.metrics.errors.labels("pipeline")._value.get()
    assert errors == 1


async def test_error_outside_pipeline_still_fails_closed(
    make_addon, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    addon = make_addon()
    monkeypatch.setattr(flowfacts, "build_facts", lambda *a, **k: 1 / 0)
    with taddons.context(addon):
        flow = llm_flow()
        await addon.request(flow)
    assert flow.response is not None and flow.response.status_code == 503
    assert flow.metadata[RECORD].decision.stage.value == "error"


async def test_own_headers_never_reach_the_upstream(make_addon) -> None:  # type: ignore[no-untyped-def]
    addon = make_addon(
        rules=RULES.replace('all-day, start: "00:00"', 'x, start: "00:00"')
        .replace('end: "00:00"', 'end: "00:01"')
        .replace("%s", "closed")
    )
    with taddons.context(addon):
        flow = llm_flow(headers={"x_hearthgate_pin": "1234", "x_hearthgate_request_id": "abc"})
        await addon.request(flow)
    assert "x-hearthgate-pin" not in flow.request.headers
    assert "x-hearthgate-request-id" not in flow.request.headers


async def test_oversize_body_decided_on_headers(make_addon) -> None:  # type: ignore[no-untyped-def]
    addon = make_addon()
    with taddons.context(addon):
        flow = llm_flow(headers={"content_length": str(10 * 1024 * 1024)})
        addon.requestheaders(flow)
        assert RECORD in flow.metadata and not flow.request.stream  # blocked: not streamed
        await addon.request(flow)
    assert flow.response is not None and flow.response.status_code == 403


async def test_websocket_messages_are_not_kept(make_addon) -> None:  # type: ignore[no-untyped-def]
    from mitmproxy import websocket

    addon = make_addon()
    flow = tflow.twebsocketflow()
    for i in range(50):
        flow.websocket.messages.append(websocket.WebSocketMessage(1, True, f"m{i}".encode()))
        addon.websocket_message(flow)
    assert [m.content for m in flow.websocket.messages] == [b"m49"]


def test_bedrock_quota_is_a_400_boto3_does_not_retry() -> None:
    quota = Decision(Stage.QUOTA, Action.BLOCK, "daily tokens used up", status=429, retry_after=60)
    body, headers = responses.json_block("bedrock", quota, "abc")
    assert responses.block_status("bedrock", 429) == 400
    assert headers["x-amzn-errortype"] == "ServiceQuotaExceededException"
    assert "daily tokens used up" in json.loads(body)["message"]
    assert responses.block_status("openai", 429) == 429  # everyone else keeps the 429
