"""Paths as the service routes them, and the APIs that carry models and prompts elsewhere."""

from __future__ import annotations

import json

import httpx
import pytest

from governance.facts import Endpoint
from proxy.catalog.providers import BUILTIN_PROVIDERS, ParsedRequest, parse_request
from proxy.catalog.routes import segments

BY_NAME = {p.name: p for p in BUILTIN_PROVIDERS}


@pytest.mark.parametrize(
    "path",
    [
        "/v1/chat/completions",
        "/v1/./chat/completions",
        "/v1/x/../chat/completions",
        "/v1/x/y/../../chat/completions",
        "//v1///chat//completions/",
        "/v1/chat%2Fcompletions",
        "/v1/chat%252Fcompletions",
        "/v1/%2e/chat/completions",
        "/v1/%2E%2E/v1/chat/completions",
        "/v1/chat/%63ompletions",
        "/v1;a=b/chat;x/completions;y=1",
        "/V1/CHAT/Completions",
        "/v1\\chat\\completions",
        "/v1/chat/completions?x=1#frag",
    ],
)
def test_spellings_of_one_path_route_alike(path: str) -> None:
    parsed = parse_request(BY_NAME["openai"], "POST", path, None, b'{"model": "gpt-4o"}')
    assert (parsed.endpoint, parsed.model) == (Endpoint.CHAT, "gpt-4o"), path


def test_dot_segments_never_climb_above_the_root() -> None:
    assert segments("/../../v1/../../chat/completions")[0] == ["chat", "completions"]


@pytest.mark.parametrize(
    ("provider", "path"),
    [
        ("anthropic", "/V1/Messages"),
        ("anthropic", "/v1//messages/."),
        ("gemini", "/v1beta/models/%67emini-2.0-flash:generateContent"),
        ("cohere", "/V2/chat"),
    ],
)
def test_other_families_route_their_spellings(provider: str, path: str) -> None:
    assert parse_request(BY_NAME[provider], "POST", path, None, None).endpoint is Endpoint.CHAT


def test_legacy_engines_path_names_the_model() -> None:
    parsed = parse_request(
        BY_NAME["openai"], "POST", "/v1/engines/gpt-4o/completions", None, b'{"prompt": "x"}'
    )
    assert (parsed.endpoint, parsed.models) == (Endpoint.COMPLETIONS, ("gpt-4o",))
    both = parse_request(
        BY_NAME["openai"], "POST", "/v1/engines/gpt-4o/chat/completions", None,
        json.dumps({"model": "gpt-4o-mini", "messages": []}).encode(),
    )  # fmt: skip
    assert set(both.models) == {"gpt-4o", "gpt-4o-mini"}  # a restricting rule sees both


def _post(provider: str, path: str, body: object) -> ParsedRequest:
    return parse_request(BY_NAME[provider], "POST", path, "application/json",
                         json.dumps(body).encode())  # fmt: skip


def test_assistants_threads_and_runs() -> None:
    run = _post("openai", "/v1/threads/t1/runs", {"assistant_id": "a", "instructions": "be brief"})
    assert run.endpoint is Endpoint.CHAT and run.model_unknown and run.prompt == "be brief"
    named = _post("openai", "/v1/threads/runs", {"assistant_id": "a", "model": "gpt-4o",
                  "thread": {"messages": [{"role": "user", "content": "casino"}]}})  # fmt: skip
    assert (named.model, named.model_unknown, named.prompt) == ("gpt-4o", False, "casino")
    message = _post("openai", "/v1/threads/t1/messages", {"role": "user", "content": "hi there"})
    assert (message.prompt, message.model_unknown) == ("hi there", False)
    outputs = _post("openai", "/v1/threads/t/runs/r/submit_tool_outputs",
                    {"tool_outputs": [{"tool_call_id": "c", "output": "result"}]})  # fmt: skip
    assert outputs.model_unknown and outputs.prompt == "result"
    assistant = _post("openai", "/v1/assistants", {"model": "gpt-4o", "instructions": "tutor"})
    assert (assistant.model, assistant.prompt) == ("gpt-4o", "tutor")


def test_realtime_sessions_and_conversations() -> None:
    session = _post("openai", "/v1/realtime/sessions", {"model": "gpt-4o-realtime-preview"})
    assert (session.endpoint, session.model) == (Endpoint.REALTIME, "gpt-4o-realtime-preview")
    secret = _post("openai", "/v1/realtime/client_secrets", {"session": {"model": "gpt-realtime"}})
    assert secret.model == "gpt-realtime"
    unnamed = _post("openai", "/v1/realtime/client_secrets", {})
    assert unnamed.model_unknown
    item = {"type": "message", "role": "user", "content": "casino"}
    items = _post("openai", "/v1/conversations/c1/items", {"items": [item]})
    assert (items.endpoint, items.prompt) == (Endpoint.RESPONSES, "casino")


def test_batches_carry_their_models_and_prompts() -> None:
    lines = [
        {"custom_id": "1", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "one"}]}},
        {"custom_id": "2", "method": "POST", "url": "/v1//chat/completions",
         "body": {"model": "gpt-4o", "messages": [{"role": "user", "content": "two"}]}},
    ]  # fmt: skip
    jsonl = "\n".join(json.dumps(line) for line in lines).encode()
    upload = httpx.Request(
        "POST", "https://x/v1/files", files={"file": ("b.jsonl", jsonl)}, data={"purpose": "batch"}
    )
    parsed = parse_request(
        BY_NAME["openai"], "POST", "/v1/files", upload.headers["content-type"], upload.read()
    )
    assert (parsed.endpoint, parsed.models) == (Endpoint.CHAT, ("gpt-4o-mini", "gpt-4o"))
    assert parsed.prompt == "one\ntwo"
    other = httpx.Request(
        "POST",
        "https://x/v1/files",
        files={"file": ("n.pdf", b"%PDF")},
        data={"purpose": "user_data"},
    )
    plain = parse_request(
        BY_NAME["openai"], "POST", "/v1/files", other.headers["content-type"], other.read()
    )
    assert (plain.endpoint, plain.unreadable) == (Endpoint.FILES, None)
    create = _post("openai", "/v1/batches", {"input_file_id": "f", "endpoint": "/v1/embeddings"})
    assert create.endpoint is Endpoint.EMBEDDINGS and create.unreadable

    def params(model: str, text: str) -> dict[str, object]:
        return {"model": model, "messages": [{"role": "user", "content": text}]}

    requests = [{"custom_id": "a", "params": params("claude-haiku", "x")},
                {"custom_id": "b", "params": params("claude-opus", "y")}]  # fmt: skip
    anthropic = _post("anthropic", "/v1/messages/batches", {"requests": requests})
    assert anthropic.models == ("claude-haiku", "claude-opus") and anthropic.prompt == "x\ny"
    gemini = _post("gemini", "/v1beta/models/gemini-2.5-flash:batchGenerateContent", {"batch": {
        "input_config": {"requests": {"requests": [
            {"request": {"contents": [{"parts": [{"text": "casino"}]}]}}]}}}})  # fmt: skip
    assert (gemini.model, gemini.prompt) == ("gemini-2.5-flash", "casino")


@pytest.mark.parametrize("root", ["backend-api", "backend-anon", "backend-api/f"])
def test_chatgpt_conversations_signed_in_and_out(root: str) -> None:
    body = {"model": "auto", "messages": [{"content": {"parts": ["casino"]}}]}
    parsed = _post("chatgpt", f"/{root}/conversation", body)
    assert (parsed.endpoint, parsed.model, parsed.prompt) == (Endpoint.WEB_APP, "auto", "casino")


def test_claude_retry_completion_is_read() -> None:
    parsed = _post("claude", "/api/organizations/o/chat_conversations/c/retry_completion",
                   {"prompt": "casino"})  # fmt: skip
    assert parsed.prompt == "casino"
