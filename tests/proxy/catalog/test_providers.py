"""The LLM catalog: host matching, allow_hosts patterns, request parsing, token usage."""

from __future__ import annotations

import json
import random
import re
import tracemalloc

import pytest
from mitmproxy.addons.next_layer import NextLayer
from mitmproxy.proxy.context import Context
from mitmproxy.test import taddons, tflow

from governance.facts import Endpoint
from proxy.catalog.providers import (
    BODY_CAP,
    BUILTIN_PROVIDERS,
    PROMPT_CAP,
    Catalog,
    ParsedRequest,
    Provider,
    StreamUsage,
    Usage,
    parse_request,
    parse_usage,
)
from proxy.catalog.shapes import JSON_CAP, LINE_CAP

CATALOG = Catalog()
BY_NAME = {p.name: p for p in CATALOG.providers}


def _name(catalog: Catalog, host: str) -> str | None:
    found = catalog.match(host)
    return found.name if found else None


# --- catalog -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "name"),
    [
        ("api.openai.com", "openai"),
        ("API.OpenAI.com", "openai"),
        ("api.openai.com:443", "openai"),
        ("api.openai.com.", "openai"),
        ("api.openai.com.:8443", "openai"),
        ("  api.anthropic.com ", "anthropic"),
        ("myres.openai.azure.com", "azure-openai"),
        ("MyRes.OpenAI.Azure.com:443", "azure-openai"),
        ("a.b.openai.azure.com", "azure-openai"),
        ("generativelanguage.googleapis.com", "gemini"),
        ("us-central1-aiplatform.googleapis.com", "vertex-ai"),
        ("europe-west4-aiplatform.googleapis.com", "vertex-ai"),
        ("aiplatform.googleapis.com", "vertex-ai"),
        ("me-central2-aiplatform.googleapis.com", "vertex-ai"),  # a region nobody listed
        ("bedrock-runtime.us-east-1.amazonaws.com", "bedrock"),
        ("Bedrock-Runtime.EU-Central-2.amazonaws.com:443", "bedrock"),
        ("bedrock-runtime-fips.us-west-2.amazonaws.com", "bedrock"),
        ("bedrock-mantle.us-east-1.api.aws", "bedrock"),
        ("api.mistral.ai", "mistral"),
        ("api.deepseek.com", "deepseek"),
        ("api.groq.com", "groq"),
        ("api.x.ai", "xai"),
        ("api.perplexity.ai", "perplexity"),
        ("perplexity.ai", "perplexity-app"),
        ("www.perplexity.ai", "perplexity-app"),
        ("openrouter.ai", "openrouter"),
        ("api.together.xyz", "together"),
        ("api.fireworks.ai", "fireworks"),
        ("api.cohere.com", "cohere"),
        ("api.cohere.ai", "cohere"),
        ("chatgpt.com", "chatgpt"),
        ("chat.openai.com", "chatgpt"),
        ("claude.ai", "claude"),
        ("gemini.google.com", "gemini-app"),
        ("aistudio.google.com", "gemini-app"),
        ("copilot.microsoft.com", "copilot"),
        ("grok.com", "grok"),
        ("chat.mistral.ai", "mistral-app"),
        ("chat.deepseek.com", "deepseek-app"),
        ("meta.ai", "meta-ai"),
        ("www.meta.ai", "meta-ai"),
        ("poe.com", "poe"),
        ("character.ai", "character-ai"),
    ],
)
def test_match_known_hosts(host: str, name: str) -> None:
    assert _name(CATALOG, host) == name


@pytest.mark.parametrize(
    "host",
    [
        None,
        "",
        ".",
        ":443",
        "api.openai.com.evil.net",
        "notapi.openai.com",
        "api-openai.com",
        "apixopenai.com",
        "openai.com",
        "openai.azure.com",  # the wildcard needs a label in front
        "openai.azure.com.evil.net",
        "evil-openai.azure.com.net",
        "x.us-central1-aiplatform.googleapis.com",  # "*" inside a label never crosses a dot
        "-aiplatform.googleapis.com",
        "aiplatform.googleapis.com.evil.net",
        "us-central1-aiplatform.googleapis.com.evil.net",
        "bedrock.us-east-1.amazonaws.com",  # the control plane is not listed
        "bedrock-runtime.amazonaws.com",
        "bedrock-runtime.a.b.amazonaws.com",
        "s3.us-east-1.amazonaws.com",
        "www.claude.ai",
        "example.com",
        "[::1]:443",
        "::1",
        "10.0.0.1:443",
    ],
)
def test_match_rejects_unknown_and_lookalike_hosts(host: str | None) -> None:
    assert CATALOG.match(host) is None


def test_builtin_names_are_unique_and_hosts_normalised() -> None:
    names = [p.name for p in BUILTIN_PROVIDERS]
    assert len(names) == len(set(names))
    for provider in BUILTIN_PROVIDERS:
        assert provider.api in {"openai", "anthropic", "gemini", "cohere", "web"}
        assert all(h == h.lower().strip(".") for h in provider.hosts)


def test_extra_provider_is_added() -> None:
    local = Provider("ollama-box", ("LLM.home.arpa.", "*.Models.Home.Arpa"), "openai")
    catalog = Catalog([local])
    assert catalog.match("llm.home.arpa:11434") == Provider(
        "ollama-box", ("llm.home.arpa", "*.models.home.arpa"), "openai"
    )
    assert _name(catalog, "gpu1.models.home.arpa") == "ollama-box"
    assert _name(catalog, "api.openai.com") == "openai"
    assert len(catalog.providers) == len(BUILTIN_PROVIDERS) + 1


def test_extra_provider_replaces_builtin_of_the_same_name() -> None:
    catalog = Catalog([Provider("openai", ("openai-proxy.example.org",), "openai")])
    assert catalog.match("api.openai.com") is None
    assert _name(catalog, "openai-proxy.example.org") == "openai"
    assert [p.name for p in catalog.providers].count("openai") == 1


def test_extra_provider_wins_a_shared_host() -> None:
    catalog = Catalog([Provider("school-chat", ("chatgpt.com",), "web")])
    assert _name(catalog, "chatgpt.com") == "school-chat"
    assert _name(catalog, "chat.openai.com") == "chatgpt"


def test_more_specific_wildcard_wins() -> None:
    catalog = Catalog(
        [
            Provider("wide", ("*.example.org",), "openai"),
            Provider("narrow", ("*.ai.example.org",), "openai"),
        ]
    )
    assert _name(catalog, "x.ai.example.org") == "narrow"
    assert _name(catalog, "x.example.org") == "wide"


@pytest.mark.parametrize(
    "host",
    [
        "https://llm.example.org",
        "llm.example.org:8080",
        "**llm.example.org",
        "a.*.org",  # a pattern needs two literal labels after its last "*"
        "llm.*",
        "*",
        "llm.exa*mple",
        "",
    ],
)
def test_bad_extra_host_is_refused_with_its_name(host: str) -> None:
    with pytest.raises(ValueError, match="provider 'bad'"):
        Catalog([Provider("bad", (host,), "openai")])


# --- allow_hosts ---------------------------------------------------------------------------

SAMPLE_HOSTS = [h for p in CATALOG.providers for h in p.hosts if not h.startswith("*.")] + [
    "myres.openai.azure.com",
    "a.b.openai.azure.com",
    "api.openai.com.evil.net",
    "notapi.openai.com",
    "api-openai.com",
    "apixopenai.com",
    "openai.azure.com",
    "xopenai.azure.com.evil.net",
    "claude.ai.evil.net",
    "evilclaude.ai",
    "example.com",
    "203.0.113.5",
]


def _allowed(patterns: list[str], host: str) -> bool:
    return any(re.search(p, host, re.IGNORECASE) for p in patterns)


@pytest.mark.parametrize("host", SAMPLE_HOSTS)
def test_allow_hosts_patterns_agree_with_match(host: str) -> None:
    patterns = CATALOG.allow_hosts_patterns()
    known = CATALOG.match(host) is not None
    for form in (host, f"{host}:443", f"{host}:8443", f"{host.upper()}:443", f"{host}.:443"):
        assert _allowed(patterns, form) == known, form


@pytest.mark.parametrize(
    "hostport",
    ["api.openai.com:443x", "api.openai.com:", "api.openai.com:443:443", "api.openai.com\n:443"],
)
def test_allow_hosts_patterns_are_anchored(hostport: str) -> None:
    assert not _allowed(CATALOG.allow_hosts_patterns(), hostport)


def test_allow_hosts_patterns_cover_extra_providers() -> None:
    patterns = Catalog([Provider("box", ("*.lan.example",), "openai")]).allow_hosts_patterns()
    assert _allowed(patterns, "gpu.lan.example:443")
    assert not _allowed(patterns, "lan.example:443")


@pytest.mark.parametrize(
    ("sni", "intercepted"),
    [
        ("api.openai.com", True),
        ("API.Anthropic.com", True),
        ("myres.openai.azure.com", True),
        ("claude.ai", True),
        ("api.openai.com.evil.net", False),
        ("notapi.openai.com", False),
        ("openai.azure.com", False),
        ("example.com", False),
    ],
)
def test_allow_hosts_patterns_in_mitmproxy_next_layer(sni: str, intercepted: bool) -> None:
    # NextLayer._ignore_connection is where mitmproxy applies allow_hosts ("host:port" forms).
    addon = NextLayer()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, allow_hosts=CATALOG.allow_hosts_patterns())
        context = Context(tflow.tclient_conn(), tctx.options)
        context.server.address = ("203.0.113.5", 443)
        context.client.sni = sni
        assert addon._ignore_connection(context, b"", b"") is (not intercepted)


# --- requests: endpoint, model, stream from the path ----------------------------------------


@pytest.mark.parametrize(
    ("provider", "path", "endpoint", "model", "stream"),
    [
        ("openai", "/v1/chat/completions", Endpoint.CHAT, None, False),
        ("openai", "/v1/chat/completions/chatcmpl-1/messages", Endpoint.CHAT, None, False),
        ("openai", "/v1/completions", Endpoint.COMPLETIONS, None, False),
        ("openai", "/v1/responses", Endpoint.RESPONSES, None, False),
        ("openai", "/v1/responses/resp_1?include=x", Endpoint.RESPONSES, None, False),
        ("openai", "/v1/embeddings", Endpoint.EMBEDDINGS, None, False),
        ("openai", "/v1/images/generations", Endpoint.IMAGES, None, False),
        ("openai", "/v1/audio/transcriptions", Endpoint.AUDIO, None, False),
        ("openai", "/v1/realtime?model=gpt-4o-realtime-preview", Endpoint.REALTIME,
         "gpt-4o-realtime-preview", False),
        ("openai", "/v1/files/file-abc/content", Endpoint.FILES, None, False),
        ("openai", "/v1/uploads", Endpoint.FILES, None, False),
        ("openai", "/v1/models", Endpoint.OTHER, None, False),
        ("openai", "/v1/moderations", Endpoint.OTHER, None, False),
        ("openai", "/", Endpoint.OTHER, None, False),
        ("openai", "", Endpoint.OTHER, None, False),
        ("openai", "//v1//chat//completions#frag", Endpoint.CHAT, None, False),
        ("groq", "/openai/v1/chat/completions", Endpoint.CHAT, None, False),
        ("openrouter", "/api/v1/chat/completions", Endpoint.CHAT, None, False),
        ("fireworks", "/inference/v1/completions", Endpoint.COMPLETIONS, None, False),
        ("together", "/v1/embeddings", Endpoint.EMBEDDINGS, None, False),
        ("deepseek", "/chat/completions", Endpoint.CHAT, None, False),
        ("deepseek", "/beta/completions", Endpoint.COMPLETIONS, None, False),
        ("perplexity", "/chat/completions", Endpoint.CHAT, None, False),
        ("mistral", "/v1/fim/completions", Endpoint.COMPLETIONS, None, False),
        ("xai", "/v1/responses", Endpoint.RESPONSES, None, False),
        ("azure-openai", "/openai/deployments/kids-gpt4o/chat/completions?api-version=2024-10-21",
         Endpoint.CHAT, "kids-gpt4o", False),
        ("azure-openai", "/openai/deployments/emb-small/embeddings?api-version=2024-10-21",
         Endpoint.EMBEDDINGS, "emb-small", False),
        ("azure-openai", "/openai/v1/responses", Endpoint.RESPONSES, None, False),
        ("azure-openai", "/openai/realtime?api-version=2024-10-01-preview&deployment=rt-mini",
         Endpoint.REALTIME, "rt-mini", False),
        ("anthropic", "/v1/messages", Endpoint.CHAT, None, False),
        ("anthropic", "/v1/messages/count_tokens", Endpoint.OTHER, None, False),
        ("anthropic", "/v1/messages/batches", Endpoint.CHAT, None, False),
        ("anthropic", "/v1/messages/batches/msgbatch_1/results", Endpoint.OTHER, None, False),
        ("anthropic", "/v1/complete", Endpoint.COMPLETIONS, None, False),
        ("anthropic", "/v1/files", Endpoint.FILES, None, False),
        ("anthropic", "/v1/models", Endpoint.OTHER, None, False),
        ("gemini", "/v1beta/models/gemini-2.0-flash:generateContent", Endpoint.CHAT,
         "gemini-2.0-flash", False),
        ("gemini", "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse", Endpoint.CHAT,
         "gemini-2.5-pro", True),
        ("gemini", "/v1/models/gemini-1.5-flash%3AgenerateContent", Endpoint.CHAT,
         "gemini-1.5-flash", False),
        ("gemini", "/v1beta/models/text-embedding-004:embedContent", Endpoint.EMBEDDINGS,
         "text-embedding-004", False),
        ("gemini", "/v1beta/models/gemini-embedding-001:batchEmbedContents", Endpoint.EMBEDDINGS,
         "gemini-embedding-001", False),
        ("gemini", "/v1beta/models/gemini-2.0-flash:countTokens", Endpoint.OTHER,
         "gemini-2.0-flash", False),
        ("gemini", "/v1beta/tunedModels/my-tune:generateContent", Endpoint.CHAT, "my-tune", False),
        ("gemini", "/v1beta/models", Endpoint.OTHER, None, False),
        ("gemini", "/v1beta/openai/chat/completions", Endpoint.CHAT, None, False),
        ("gemini", "/upload/v1beta/files?uploadType=multipart", Endpoint.FILES, None, False),
        ("gemini", "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent",
         Endpoint.REALTIME, None, False),
        ("vertex-ai", "/v1/projects/p1/locations/us-central1/publishers/google/models/"
         "gemini-2.5-flash:streamGenerateContent", Endpoint.CHAT, "gemini-2.5-flash", True),
        ("vertex-ai", "/v1/projects/p1/locations/us-east5/publishers/anthropic/models/"
         "claude-sonnet-4@20250514:rawPredict", Endpoint.CHAT, "claude-sonnet-4@20250514", False),
        ("vertex-ai", "/v1/projects/p1/locations/global/endpoints/openapi/chat/completions",
         Endpoint.CHAT, None, False),
        ("vertex-ai", "/v1/projects/p1/locations/us-central1/endpoints/123:predict",
         Endpoint.OTHER, None, False),
        ("cohere", "/v2/chat", Endpoint.CHAT, None, False),
        ("cohere", "/v1/chat", Endpoint.CHAT, None, False),
        ("cohere", "/v2/embed", Endpoint.EMBEDDINGS, None, False),
        ("cohere", "/v1/generate", Endpoint.COMPLETIONS, None, False),
        ("cohere", "/v2/rerank", Endpoint.OTHER, None, False),
        ("cohere", "/compatibility/v1/chat/completions", Endpoint.CHAT, None, False),
        ("chatgpt", "/backend-api/conversation", Endpoint.WEB_APP, None, False),
        ("claude", "/api/organizations", Endpoint.WEB_APP, None, False),
        ("copilot", "/c/api/chat?api-version=2", Endpoint.WEB_APP, None, False),
    ],
)  # fmt: skip
def test_route_from_path(
    provider: str, path: str, endpoint: Endpoint, model: str | None, stream: bool
) -> None:
    parsed = parse_request(BY_NAME[provider], "POST", path, None, None)
    seen = (parsed.endpoint, parsed.model, parsed.prompt, parsed.stream, parsed.inspected)
    assert seen == (endpoint, model, None, stream, False)


# --- requests: bodies ------------------------------------------------------------------------


def _post(
    provider: str,
    path: str,
    body: object,
    ctype: str | None = "application/json",
    method: str = "POST",
) -> ParsedRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_request(BY_NAME[provider], method, path, ctype, raw)


OPENAI_CHAT = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are a tutor."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
        ]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function"}]},
        {"role": "tool", "tool_call_id": "c1", "content": "42 degrees"},
        {"role": "user", "content": "Thanks!"},
    ],
}  # fmt: skip


@pytest.mark.parametrize(
    ("provider", "path", "body", "model", "prompt"),
    [
        ("openai", "/v1/chat/completions", OPENAI_CHAT, "gpt-4o-mini",
         "You are a tutor.\nWhat is in this picture?\n42 degrees\nThanks!"),
        ("openai", "/v1/responses", {"model": "gpt-4.1", "instructions": "Be brief.",
                                     "input": "Tell me a joke"},
         "gpt-4.1", "Be brief.\nTell me a joke"),
        ("openai", "/v1/responses", {"model": "o4-mini", "input": [
            {"role": "developer", "content": "Only French."},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "Bonjour"},
                {"type": "input_image", "image_url": "https://x/y.png"}]},
            {"type": "message", "role": "assistant", "content": [
                {"type": "output_text", "text": "Salut"}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        ]}, "o4-mini", "Only French.\nBonjour\nSalut\nsunny"),
        ("openai", "/v1/completions", {"model": "gpt-3.5-turbo-instruct", "prompt": "Once"},
         "gpt-3.5-turbo-instruct", "Once"),
        ("openai", "/v1/completions", {"model": "m", "prompt": ["a", "b", [1, 2]]}, "m", "a\nb"),
        ("openai", "/v1/embeddings", {"model": "text-embedding-3-small", "input": ["x", "y"]},
         "text-embedding-3-small", "x\ny"),
        ("openai", "/v1/embeddings", {"model": "e", "input": [[1, 2, 3]]}, "e", ""),
        ("openai", "/v1/images/generations", {"model": "gpt-image-1", "prompt": "a red fox"},
         "gpt-image-1", "a red fox"),
        ("openai", "/v1/audio/speech", {"model": "tts-1", "input": "Hello", "voice": "alloy"},
         "tts-1", "Hello"),
        ("groq", "/openai/v1/chat/completions", OPENAI_CHAT, "gpt-4o-mini",
         "You are a tutor.\nWhat is in this picture?\n42 degrees\nThanks!"),
        ("azure-openai", "/openai/deployments/kids/chat/completions?api-version=2024-10-21",
         {"messages": [{"role": "user", "content": "hi"}]}, "kids", "hi"),
        ("azure-openai", "/openai/deployments/kids/chat/completions?api-version=2024-10-21",
         {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}, "gpt-4o", "hi"),
        ("anthropic", "/v1/messages", {
            "model": "claude-sonnet-4-20250514", "max_tokens": 1024,
            "system": [{"type": "text", "text": "You are kind.",
                        "cache_control": {"type": "ephemeral"}},
                       {"type": "text", "text": "Answer in English."}],
            "messages": [
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "s"},
                    {"type": "text", "text": "Hi!"},
                    {"type": "tool_use", "id": "t1", "name": "weather", "input": {}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t1",
                     "content": [{"type": "text", "text": "Rainy"},
                                 {"type": "image", "source": {"type": "base64", "data": "AA"}}]},
                    {"type": "tool_result", "tool_use_id": "t2", "content": "Windy"},
                    {"type": "image", "source": {"type": "base64", "data": "AA"}},
                    {"type": "text", "text": "And tomorrow?"}]},
            ]}, "claude-sonnet-4-20250514",
         "You are kind.\nAnswer in English.\nHello\nHi!\nRainy\nWindy\nAnd tomorrow?"),
        ("anthropic", "/v1/messages", {"model": "claude-3-5-haiku-latest", "system": "Be nice.",
                                       "messages": [{"role": "user", "content": "Yo"}]},
         "claude-3-5-haiku-latest", "Be nice.\nYo"),
        ("anthropic", "/v1/complete", {"model": "claude-2.1",
                                       "prompt": "\n\nHuman: Hi\n\nAssistant:"},
         "claude-2.1", "\n\nHuman: Hi\n\nAssistant:"),
        ("gemini", "/v1beta/models/gemini-2.0-flash:generateContent", {
            "systemInstruction": {"parts": [{"text": "You are a cat."}]},
            "contents": [
                {"role": "user", "parts": [{"text": "Hello"},
                                           {"inlineData": {"mimeType": "image/png", "data": "A"}}]},
                {"role": "model", "parts": [{"text": "Meow"}]},
                {"role": "user", "parts": [{"text": "Why?"}]}],
            "generationConfig": {"temperature": 0.5},
        }, "gemini-2.0-flash", "You are a cat.\nHello\nMeow\nWhy?"),
        ("gemini", "/v1beta/models/gemini-2.0-flash:generateContent", {
            "model": "ignored-body-model",
            "system_instruction": {"parts": {"text": "not a list"}},
            "contents": {"parts": [{"text": "single content"}]},
        }, "gemini-2.0-flash", "single content"),
        ("gemini", "/v1beta/models/text-embedding-004:embedContent",
         {"content": {"parts": [{"text": "embed me"}]}}, "text-embedding-004", "embed me"),
        ("gemini", "/v1beta/models/text-embedding-004:batchEmbedContents",
         {"requests": [{"model": "models/text-embedding-004",
                        "content": {"parts": [{"text": "a"}]}},
                       {"content": {"parts": [{"text": "b"}]}}]},
         "text-embedding-004", "a\nb"),
        ("gemini", "/v1beta/openai/chat/completions",
         {"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": "hey"}]},
         "gemini-2.0-flash", "hey"),
        ("vertex-ai", "/v1/projects/p/locations/us-east5/publishers/anthropic/models/"
         "claude-sonnet-4@20250514:rawPredict",
         {"anthropic_version": "vertex-2023-10-16", "system": "S",
          "messages": [{"role": "user", "content": "Q"}]},
         "claude-sonnet-4@20250514", "S\nQ"),
        ("cohere", "/v2/chat", {"model": "command-r-plus", "messages": [
            {"role": "system", "content": "Sys"},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]}]},
         "command-r-plus", "Sys\nHi"),
        ("cohere", "/v1/chat", {"model": "command-r", "preamble": "P",
                                "chat_history": [{"role": "USER", "message": "old"}],
                                "message": "new"}, "command-r", "P\nold\nnew"),
        ("cohere", "/v2/embed", {"model": "embed-v4.0", "texts": ["t1", "t2"],
                                 "input_type": "search_query"}, "embed-v4.0", "t1\nt2"),
        ("chatgpt", "/backend-api/conversation", {
            "action": "next", "model": "gpt-4o", "parent_message_id": "p",
            "messages": [{"id": "m1", "author": {"role": "user"},
                          "content": {"content_type": "multimodal_text",
                                      "parts": [{"asset_pointer": "file-service://x"},
                                                "What is this?"]}}]},
         "gpt-4o", "What is this?"),
        ("chatgpt", "/backend-api/f/conversation", {
            "model": "auto", "messages": [{"content": {"content_type": "text",
                                                       "parts": ["hello"]}}]},
         "auto", "hello"),
        ("claude", "/api/organizations/org-1/chat_conversations/conv-2/completion", {
            "prompt": "Write a poem", "model": "claude-opus-4-1", "timezone": "Europe/Paris",
            "attachments": [{"file_name": "notes.txt", "extracted_content": "pasted notes"}]},
         "claude-opus-4-1", "Write a poem\npasted notes"),
    ],
)  # fmt: skip
def test_prompt_and_model_from_body(
    provider: str, path: str, body: object, model: str | None, prompt: str
) -> None:
    parsed = _post(provider, path, body)
    assert parsed.inspected
    assert parsed.model == model
    assert parsed.prompt == prompt
    assert parsed.prompt_chars == len(prompt)


@pytest.mark.parametrize(
    ("provider", "path", "body", "stream", "usage_requested"),
    [
        ("openai", "/v1/chat/completions", {"model": "m", "messages": [], "stream": True},
         True, False),
        ("openai", "/v1/chat/completions",
         {"model": "m", "messages": [], "stream": True, "stream_options": {"include_usage": True}},
         True, True),
        ("openai", "/v1/chat/completions",
         {"model": "m", "messages": [], "stream": False, "stream_options": {"include_usage": True}},
         False, False),
        ("openai", "/v1/chat/completions",
         {"model": "m", "messages": [], "stream": "yes", "stream_options": {"include_usage": 1}},
         False, False),
        ("openai", "/v1/completions",
         {"model": "m", "prompt": "x", "stream": True, "stream_options": {"include_usage": True}},
         True, True),
        ("openai", "/v1/responses", {"model": "m", "input": "x", "stream": True}, True, False),
        ("anthropic", "/v1/messages", {"model": "m", "messages": [], "stream": True}, True, False),
        ("gemini", "/v1beta/models/g:streamGenerateContent?alt=sse", {"contents": []}, True, False),
        ("gemini", "/v1beta/models/g:generateContent", {"contents": []}, False, False),
        ("cohere", "/v2/chat", {"model": "m", "messages": [], "stream": True}, True, False),
    ],
)  # fmt: skip
def test_stream_flags(
    provider: str, path: str, body: object, stream: bool, usage_requested: bool
) -> None:
    parsed = _post(provider, path, body)
    assert (parsed.stream, parsed.stream_usage_requested) == (stream, usage_requested)


OLLAMA = Provider("home-ollama", ("ollama.lan",), "ollama")


@pytest.mark.parametrize(
    ("path", "body", "endpoint", "prompt", "stream"),
    [
        ("/api/chat", {"model": "llama3.2", "messages": [
            {"role": "system", "content": "Be kind."},
            {"role": "user", "content": "Hi", "images": ["AAAA"]}]},
         Endpoint.CHAT, "Be kind.\nHi", True),
        ("/api/chat", {"model": "llama3.2", "messages": [], "stream": False},
         Endpoint.CHAT, "", False),
        ("/api/generate", {"model": "llama3.2", "system": "S", "prompt": "P", "suffix": "X"},
         Endpoint.COMPLETIONS, "S\nP\nX", True),
        ("/api/generate", {"model": "llama3.2", "prompt": "P", "stream": False},
         Endpoint.COMPLETIONS, "P", False),
        ("/api/embed", {"model": "llama3.2", "input": ["a", "b"]}, Endpoint.EMBEDDINGS, "a\nb",
         False),
        ("/api/embeddings", {"model": "llama3.2", "prompt": "c"}, Endpoint.EMBEDDINGS, "c", False),
        ("/v1/chat/completions", {"model": "llama3.2", "messages": [
            {"role": "user", "content": "compat"}], "stream": True}, Endpoint.CHAT, "compat", True),
    ],
)  # fmt: skip
def test_ollama_native_api(
    path: str, body: object, endpoint: Endpoint, prompt: str, stream: bool
) -> None:
    parsed = parse_request(OLLAMA, "POST", path, "application/json", json.dumps(body).encode())
    assert (parsed.endpoint, parsed.model, parsed.prompt) == (endpoint, "llama3.2", prompt)
    assert parsed.stream is stream and parsed.inspected
    assert parsed.shape == ("openai" if path.startswith("/v1/") else "ollama")


def test_ollama_model_management_is_other() -> None:
    parsed = parse_request(OLLAMA, "POST", "/api/pull", "application/json", b'{"model": "x"}')
    assert (parsed.endpoint, parsed.model) == (Endpoint.OTHER, "x")


@pytest.mark.parametrize(
    ("body", "usage"),
    [
        ({"model": "llama3.2", "done": True, "prompt_eval_count": 26, "eval_count": 3},
         Usage(26, 3, "llama3.2")),
        ({"model": "llama3.2", "embeddings": [[0.1]], "prompt_eval_count": 4},
         Usage(4, None, "llama3.2")),
        ({"embedding": [0.1]}, Usage()),
    ],
)  # fmt: skip
def test_ollama_usage(body: object, usage: Usage) -> None:
    assert parse_usage("ollama", "application/json", json.dumps(body).encode()) == usage


@pytest.mark.parametrize(
    ("provider", "path", "body", "model"),
    [
        ("openai", "/v1/chat/completions", b'{"model": "gpt-4o", "messages": [', None),
        ("openai", "/v1/chat/completions", b"not json at all", None),
        ("openai", "/v1/chat/completions", b"", None),
        ("openai", "/v1/chat/completions", b'[{"model": "gpt-4o"}]', None),
        ("openai", "/v1/chat/completions", b'"a string"', None),
        ("openai", "/v1/chat/completions", b"null", None),
        ("openai", "/v1/chat/completions", b"[" * 100_000, None),
        ("gemini", "/v1beta/models/gemini-2.0-flash:generateContent", b"{oops", "gemini-2.0-flash"),
        ("azure-openai", "/openai/deployments/kids/chat/completions", b"\xff\xfe\x00", "kids"),
        ("chatgpt", "/backend-api/conversation", b"{broken", None),
        ("claude", "/api/organizations/o/chat_conversations/c/completion", b"[]", None),
    ],
)  # fmt: skip
def test_unparseable_body_is_decided_from_the_path(
    provider: str, path: str, body: bytes, model: str | None
) -> None:
    parsed = _post(provider, path, body)
    assert not parsed.inspected
    assert (parsed.prompt, parsed.prompt_chars, parsed.model) == (None, 0, model)
    assert (parsed.unreadable is not None) is bool(body), "a body sent but not read is unreadable"


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "messages": 5},
        {"model": "m", "messages": None},
        {"model": "m", "messages": [None, 3, "", {"role": "user", "content": None}]},
        {"model": "m", "messages": [{"content": 7}, {"content": [None, 1, {"type": "text"}]}]},
        {"model": "m", "messages": [{"content": [{"type": "text", "text": 5}]}]},
        {"model": "m", "messages": {"content": "not a list"}},
        {"model": "m"},
    ],
)
def test_wrong_types_give_empty_prompt(body: object) -> None:
    parsed = _post("openai", "/v1/chat/completions", body)
    assert (parsed.inspected, parsed.prompt, parsed.prompt_chars, parsed.model) == (
        True,
        "",
        0,
        "m",
    )


@pytest.mark.parametrize(
    ("provider", "path", "body"),
    [
        ("anthropic", "/v1/messages", {"model": 5, "system": {"x": 1}, "messages": 7}),
        ("gemini", "/v1beta/models/g:generateContent", {"contents": [{"parts": 7}, 3, None]}),
        ("gemini", "/v1beta/models/g:batchEmbedContents", {"requests": {"content": 1}}),
        ("cohere", "/v1/chat", {"chat_history": 5, "preamble": [], "message": None}),
        ("chatgpt", "/backend-api/conversation", {"messages": [{"content": "x"}, 4]}),
        ("claude", "/api/organizations/o/chat_conversations/c/completion", {"prompt": 12}),
        ("openai", "/v1/responses", {"input": [{"content": {"text": "dict"}}], "instructions": 1}),
    ],
)
def test_wrong_types_never_raise(provider: str, path: str, body: object) -> None:
    parsed = _post(provider, path, body)
    assert parsed.inspected and parsed.prompt == ""


def test_model_of_wrong_type_is_ignored() -> None:
    parsed = _post("openai", "/v1/chat/completions", {"model": ["gpt-4o"], "messages": []})
    assert parsed.model is None and parsed.inspected


def test_non_utf8_bytes_are_replaced_not_fatal() -> None:
    raw = b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "caf\xe9 ok"}]}'
    parsed = _post("openai", "/v1/chat/completions", raw)
    assert parsed.inspected and parsed.model == "gpt-4o"
    assert parsed.prompt == "caf\ufffd ok"


def test_utf16_json_is_read() -> None:
    raw = json.dumps({"model": "m", "prompt": "été"}).encode("utf-16")
    assert _post("openai", "/v1/completions", raw).prompt == "été"


@pytest.mark.parametrize(
    "ctype",
    ["multipart/form-data; boundary=xyz", "audio/wav", "application/x-www-form-urlencoded"],
)
def test_json_under_another_content_type_is_still_read(ctype: str) -> None:
    # services parse JSON whatever the header says; a form that is no form is unreadable
    body = json.dumps({"model": "gpt-3.5-turbo-instruct", "prompt": "x"}).encode()
    parsed = _post("openai", "/v1/completions", body, ctype)
    if ctype.startswith("multipart/"):
        assert parsed.unreadable and not parsed.inspected
    else:
        assert (parsed.model, parsed.prompt, parsed.inspected) == (
            "gpt-3.5-turbo-instruct",
            "x",
            True,
        )


@pytest.mark.parametrize("ctype", [None, "", "application/json; charset=utf-8", "text/plain"])
def test_json_content_types_are_inspected(ctype: str | None) -> None:
    parsed = _post("openai", "/v1/completions", {"model": "m", "prompt": "p"}, ctype)
    assert parsed.inspected and parsed.prompt == "p"


def test_body_over_cap_is_decided_from_the_path() -> None:
    body = {"model": "gemini-x", "contents": [{"parts": [{"text": "a" * BODY_CAP}]}]}
    parsed = _post("gemini", "/v1beta/models/gemini-2.0-flash:streamGenerateContent", body)
    assert (parsed.endpoint, parsed.model, parsed.prompt, parsed.inspected) == (
        Endpoint.CHAT,
        "gemini-2.0-flash",
        None,
        False,
    )
    assert parsed.unreadable and "2 MiB" in parsed.unreadable
    big = _post(
        "azure-openai",
        "/openai/deployments/d1/chat/completions",
        {"model": "x", "messages": [{"content": "a" * BODY_CAP}]},
    )
    assert (big.model, big.inspected, big.endpoint) == ("d1", False, Endpoint.CHAT)


def test_prompt_is_capped_but_counted() -> None:
    text = "b" * (PROMPT_CAP + 500)
    parsed = _post(
        "openai",
        "/v1/chat/completions",
        {"model": "m", "messages": [{"content": "a"}, {"content": text}]},
    )
    assert parsed.prompt_chars == PROMPT_CAP + 502
    assert parsed.prompt is not None and len(parsed.prompt) == PROMPT_CAP
    assert parsed.prompt.startswith("a\nbbb")


@pytest.mark.parametrize(
    ("provider", "method", "path"),
    [
        ("chatgpt", "GET", "/backend-api/conversation"),
        ("chatgpt", "POST", "/backend-api/conversation/init"),
        ("chatgpt", "POST", "/backend-anon/sentinel"),
        ("claude", "POST", "/api/organizations/o/chat_conversations/c"),
        ("claude", "POST", "/api/organizations/o/chat_conversations/c/completion/extra"),
        ("claude", "GET", "/api/organizations/o/chat_conversations/c/completion"),
        ("gemini-app", "POST", "/_/BardChatUi/data/batchexecute"),
        ("grok", "POST", "/rest/app-chat/conversations/new"),
        ("poe", "POST", "/api/gql_POST"),
    ],
)  # fmt: skip
def test_web_apps_are_decided_at_host_level(provider: str, method: str, path: str) -> None:
    body = {"prompt": "secret", "model": "m", "messages": [{"content": {"parts": ["x"]}}]}
    parsed = _post(provider, path, body, method=method)
    assert parsed == ParsedRequest(Endpoint.WEB_APP, None, None, 0, False, False)


# --- usage of complete responses ------------------------------------------------------------


@pytest.mark.parametrize(
    ("api", "body", "usage"),
    [
        ("openai", {"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-2024-08-06",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
                              "prompt_tokens_details": {"cached_tokens": 0}}},
         Usage(19, 10, "gpt-4o-2024-08-06")),
        ("openai", {"id": "resp_1", "object": "response", "model": "gpt-4.1-2025-04-14",
                    "output": [{"type": "message", "content": [{"type": "output_text",
                                                                "text": "Hi"}]}],
                    "usage": {"input_tokens": 36, "input_tokens_details": {"cached_tokens": 0},
                              "output_tokens": 87, "total_tokens": 123}},
         Usage(36, 87, "gpt-4.1-2025-04-14")),
        ("openai", {"object": "list", "model": "text-embedding-3-small", "data": [],
                    "usage": {"prompt_tokens": 8, "total_tokens": 8}},
         Usage(8, None, "text-embedding-3-small")),
        ("openai", {"created": 1, "data": [{"b64_json": "AAAA"}],
                    "usage": {"input_tokens": 50, "output_tokens": 4160, "total_tokens": 4210}},
         Usage(50, 4160, None)),
        ("anthropic", {"id": "msg_1", "type": "message", "role": "assistant",
                       "model": "claude-sonnet-4-20250514",
                       "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn",
                       "usage": {"input_tokens": 2095, "output_tokens": 503,
                                 "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}},
         Usage(2095, 503, "claude-sonnet-4-20250514")),
        ("anthropic", {"model": "claude-3-7-sonnet-latest",
                       "usage": {"input_tokens": 10, "output_tokens": 5,
                                 "cache_creation_input_tokens": 100,
                                 "cache_read_input_tokens": 1000}},
         Usage(1110, 5, "claude-3-7-sonnet-latest")),
        ("gemini", {"candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"},
                                    "finishReason": "STOP"}],
                    "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 11,
                                      "totalTokenCount": 15},
                    "modelVersion": "gemini-2.0-flash", "responseId": "r1"},
         Usage(4, 11, "gemini-2.0-flash")),
        ("gemini", {"candidates": [], "modelVersion": "gemini-2.5-flash",
                    "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 30,
                                      "thoughtsTokenCount": 500, "totalTokenCount": 539}},
         Usage(9, 530, "gemini-2.5-flash")),
        ("gemini", [{"candidates": [], "usageMetadata": {"promptTokenCount": 3},
                     "modelVersion": "gemini-2.0-flash"},
                    {"candidates": [], "usageMetadata": {"promptTokenCount": 3,
                                                         "candidatesTokenCount": 7}}],
         Usage(3, 7, "gemini-2.0-flash")),
        ("cohere", {"id": "c1", "finish_reason": "COMPLETE",
                    "message": {"role": "assistant", "content": [{"type": "text", "text": "Hi"}]},
                    "usage": {"billed_units": {"input_tokens": 5, "output_tokens": 418},
                              "tokens": {"input_tokens": 71, "output_tokens": 418}}},
         Usage(5, 418, None)),
        ("cohere", {"usage": {"tokens": {"input_tokens": 71, "output_tokens": 9}}},
         Usage(71, 9, None)),
        ("cohere", {"text": "Hi", "meta": {"billed_units": {"input_tokens": 3,
                                                            "output_tokens": 4}}},
         Usage(3, 4, None)),
        ("openai", {"model": "", "usage": {"prompt_tokens": -1, "completion_tokens": True}},
         Usage(None, None, None)),
        ("openai", {"usage": "lots", "model": 4}, Usage()),
        ("openai", [1, "x", None], Usage()),
    ],
)  # fmt: skip
def test_usage_of_json_response(api: str, body: object, usage: Usage) -> None:
    assert parse_usage(api, "application/json", json.dumps(body).encode()) == usage


@pytest.mark.parametrize(
    "body", [b"", b"{", b"\xff\xfe garbage", b"<html>502</html>", b"[" * 50_000]
)
def test_usage_of_broken_response_is_empty(body: bytes) -> None:
    assert parse_usage("openai", "application/json", body) == Usage()


def test_web_app_usage_is_not_read() -> None:
    body = json.dumps({"usage": {"prompt_tokens": 1, "completion_tokens": 2}}).encode()
    assert parse_usage("web", "application/json", body) == Usage()


def test_huge_json_response_usage_is_salvaged_from_its_ends() -> None:
    image = "A" * JSON_CAP
    body = json.dumps(
        {
            "model": "gpt-image-1",
            "data": [{"b64_json": image}],
            "usage": {
                "input_tokens": 50,
                "input_tokens_details": {"text_tokens": 50},
                "output_tokens": 4160,
                "total_tokens": 4210,
            },
        }
    ).encode()
    assert parse_usage("openai", "application/json", body) == Usage(50, 4160, "gpt-image-1")


# --- streams --------------------------------------------------------------------------------

OPENAI_CHAT_SSE = (
    'data: {"id":"chatcmpl-B9","object":"chat.completion.chunk","created":1741290958,'
    '"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_06737a9306",'
    '"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},'
    '"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
    'data: {"id":"chatcmpl-B9","object":"chat.completion.chunk","created":1741290958,'
    '"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"content":"Grüße, "},'
    '"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
    'data: {"id":"chatcmpl-B9","object":"chat.completion.chunk","created":1741290958,'
    '"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"content":"世界 🌍"},'
    '"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
    'data: {"id":"chatcmpl-B9","object":"chat.completion.chunk","created":1741290958,'
    '"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{},"logprobs":null,'
    '"finish_reason":"stop"}],"usage":null}\n\n'
    'data: {"id":"chatcmpl-B9","object":"chat.completion.chunk","created":1741290958,'
    '"model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":12,'
    '"completion_tokens":5,"total_tokens":17,"prompt_tokens_details":{"cached_tokens":0,'
    '"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,'
    '"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}\n\n'
    "data: [DONE]\n\n"
)

GROQ_SSE = (
    'data: {"id":"chatcmpl-9c","object":"chat.completion.chunk","created":1730241104,'
    '"model":"llama-3.1-8b-instant","system_fingerprint":"fp_9cb648b966","choices":[{"index":0,'
    '"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],'
    '"x_groq":{"id":"req_01jb"}}\n\n'
    'data: {"id":"chatcmpl-9c","object":"chat.completion.chunk","created":1730241104,'
    '"model":"llama-3.1-8b-instant","choices":[{"index":0,"delta":{"content":"Hi"},'
    '"logprobs":null,"finish_reason":null}]}\n\n'
    'data: {"id":"chatcmpl-9c","object":"chat.completion.chunk","created":1730241104,'
    '"model":"llama-3.1-8b-instant","choices":[{"index":0,"delta":{},"logprobs":null,'
    '"finish_reason":"stop"}],"x_groq":{"id":"req_01jb","usage":{"queue_time":0.0193,'
    '"prompt_tokens":42,"prompt_time":0.0021,"completion_tokens":9,"completion_time":0.012,'
    '"total_tokens":51,"total_time":0.0141}}}\n\n'
    "data: [DONE]\n\n"
)

_RESPONSE = (
    '{"id":"resp_67ca","object":"response","created_at":1741290958,"status":"%s",'
    '"error":null,"incomplete_details":null,"instructions":"Be brief.","max_output_tokens":null,'
    '"model":"gpt-4.1-2025-04-14","output":%s,"parallel_tool_calls":true,'
    '"previous_response_id":null,"reasoning":{"effort":null,"summary":null},"store":true,'
    '"temperature":1.0,"text":{"format":{"type":"text"}},"tool_choice":"auto","tools":[],'
    '"top_p":1.0,"truncation":"disabled","usage":%s,"user":null,"metadata":{}}'
)
_OUTPUT = (
    '[{"id":"msg_67ca","type":"message","status":"completed","role":"assistant","content":'
    '[{"type":"output_text","annotations":[],"text":"Salut à toi ✨"}]}]'
)
OPENAI_RESPONSES_SSE = (
    "event: response.created\n"
    'data: {"type":"response.created","sequence_number":0,"response":'
    + _RESPONSE
    % ("in_progress", "[]", "null")
    + "}\n\n"
    "event: response.in_progress\n"
    'data: {"type":"response.in_progress","sequence_number":1,"response":'
    + _RESPONSE
    % ("in_progress", "[]", "null")
    + "}\n\n"
    "event: response.output_item.added\n"
    'data: {"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":'
    '{"id":"msg_67ca","type":"message","status":"in_progress","role":"assistant","content":[]}}\n\n'
    "event: response.content_part.added\n"
    'data: {"type":"response.content_part.added","sequence_number":3,"item_id":"msg_67ca",'
    '"output_index":0,"content_index":0,"part":{"type":"output_text","annotations":[],"text":""}}\n\n'
    "event: response.output_text.delta\n"
    'data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_67ca",'
    '"output_index":0,"content_index":0,"delta":"Salut à toi ✨"}\n\n'
    "event: response.output_text.done\n"
    'data: {"type":"response.output_text.done","sequence_number":5,"item_id":"msg_67ca",'
    '"output_index":0,"content_index":0,"text":"Salut à toi ✨"}\n\n'
    "event: response.completed\n"
    'data: {"type":"response.completed","sequence_number":6,"response":'
    + _RESPONSE
    % (
        "completed",
        _OUTPUT,
        '{"input_tokens":37,"input_tokens_details":{"cached_tokens":0},"output_tokens":11,'
        '"output_tokens_details":{"reasoning_tokens":0},"total_tokens":48}',
    )
    + "}\n\n"
)

ANTHROPIC_SSE = (
    "event: message_start\n"
    'data: {"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message",'
    '"role":"assistant","model":"claude-sonnet-4-20250514","content":[],"stop_reason":null,'
    '"stop_sequence":null,"usage":{"input_tokens":472,"cache_creation_input_tokens":0,'
    '"cache_read_input_tokens":0,"output_tokens":2,"service_tier":"standard"}}}\n\n'
    "event: content_block_start\n"
    'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
    "event: ping\n"
    'data: {"type": "ping"}\n\n'
    "event: content_block_delta\n"
    'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta",'
    '"text":"Bonjour ! 😊 Ça va ?"}}\n\n'
    "event: content_block_stop\n"
    'data: {"type":"content_block_stop","index":0}\n\n'
    "event: message_delta\n"
    'data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
    '"usage":{"output_tokens":15}}\n\n'
    "event: message_stop\n"
    'data: {"type":"message_stop"}\n\n'
)

GEMINI_SSE = (  # Gemini's alt=sse stream ends lines with CRLF
    'data: {"candidates": [{"content": {"parts": [{"text": "Pourquoi"}],"role": "model"},'
    '"index": 0}],"usageMetadata": {"promptTokenCount": 9,"totalTokenCount": 9,'
    '"promptTokensDetails": [{"modality": "TEXT","tokenCount": 9}]},'
    '"modelVersion": "gemini-2.0-flash","responseId": "Gp3Yf"}\r\n\r\n'
    'data: {"candidates": [{"content": {"parts": [{"text": " le poulet a-t-il traversé ?"}],'
    '"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 9,'
    '"totalTokenCount": 9},"modelVersion": "gemini-2.0-flash","responseId": "Gp3Yf"}\r\n\r\n'
    'data: {"candidates": [{"content": {"parts": [{"text": "\\n"}],"role": "model"},'
    '"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 9,'
    '"candidatesTokenCount": 21,"totalTokenCount": 30,"promptTokensDetails": [{"modality": '
    '"TEXT","tokenCount": 9}],"candidatesTokensDetails": [{"modality": "TEXT","tokenCount": 21}]},'
    '"modelVersion": "gemini-2.0-flash","responseId": "Gp3Yf"}\r\n\r\n'
)

COHERE_SSE = (
    "event: message-start\n"
    'data: {"id":"29f14a5a","type":"message-start","delta":{"message":{"role":"assistant",'
    '"content":[],"tool_plan":"","tool_calls":[],"citations":[]}}}\n\n'
    "event: content-start\n"
    'data: {"type":"content-start","index":0,"delta":{"message":{"content":{"type":"text",'
    '"text":""}}}}\n\n'
    "event: content-delta\n"
    'data: {"type":"content-delta","index":0,"delta":{"message":{"content":{"text":"Hallo"}}}}\n\n'
    "event: content-end\n"
    'data: {"type":"content-end","index":0}\n\n'
    "event: message-end\n"
    'data: {"type":"message-end","delta":{"finish_reason":"COMPLETE","usage":{"billed_units":'
    '{"input_tokens":5,"output_tokens":10},"tokens":{"input_tokens":71,"output_tokens":10}}}}\n\n'
    "data: [DONE]\n\n"
)

OPENROUTER_SSE = (  # comment lines keep the connection open while the model warms up
    ": OPENROUTER PROCESSING\n\n"
    ": OPENROUTER PROCESSING\n\n"
    'data: {"id":"gen-1","provider":"OpenAI","model":"openai/gpt-4o","object":'
    '"chat.completion.chunk","created":1,"choices":[{"index":0,"delta":{"role":"assistant",'
    '"content":"Hi"},"finish_reason":null}]}\n\n'
    'data: {"id":"gen-1","provider":"OpenAI","model":"openai/gpt-4o","object":'
    '"chat.completion.chunk","created":1,"choices":[{"index":0,"delta":{"content":""},'
    '"finish_reason":"stop"}],"usage":{"prompt_tokens":8,"completion_tokens":2,"total_tokens":10}}'
    "\n\n"
    "data: [DONE]\n\n"
)

SSE_FIXTURES = {
    "openai-chat": ("openai", OPENAI_CHAT_SSE, Usage(12, 5, "gpt-4o-mini-2024-07-18")),
    "groq": ("openai", GROQ_SSE, Usage(42, 9, "llama-3.1-8b-instant")),
    "openai-responses": ("openai", OPENAI_RESPONSES_SSE, Usage(37, 11, "gpt-4.1-2025-04-14")),
    "anthropic": ("anthropic", ANTHROPIC_SSE, Usage(472, 15, "claude-sonnet-4-20250514")),
    "gemini": ("gemini", GEMINI_SSE, Usage(9, 21, "gemini-2.0-flash")),
    "cohere": ("cohere", COHERE_SSE, Usage(5, 10, None)),
    "openrouter": ("openai", OPENROUTER_SSE, Usage(8, 2, "openai/gpt-4o")),
}


def _read(api: str, chunks: list[bytes]) -> Usage:
    reader = StreamUsage(api)
    for chunk in chunks:
        reader.feed(chunk)
    return reader.usage


@pytest.mark.parametrize("name", SSE_FIXTURES)
def test_sse_usage_whole(name: str) -> None:
    api, text, usage = SSE_FIXTURES[name]
    assert _read(api, [text.encode()]) == usage
    assert parse_usage(api, "text/event-stream; charset=utf-8", text.encode()) == usage


@pytest.mark.parametrize("name", SSE_FIXTURES)
def test_sse_usage_split_at_every_byte(name: str) -> None:
    api, text, usage = SSE_FIXTURES[name]
    raw = text.encode()
    for cut in range(len(raw) + 1):
        assert _read(api, [raw[:cut], raw[cut:]]) == usage, cut


@pytest.mark.parametrize("name", SSE_FIXTURES)
def test_sse_usage_one_byte_at_a_time(name: str) -> None:
    api, text, usage = SSE_FIXTURES[name]
    raw = text.encode()
    assert _read(api, [raw[i : i + 1] for i in range(len(raw))]) == usage


@pytest.mark.parametrize("name", SSE_FIXTURES)
def test_sse_usage_with_crlf_and_no_space_after_colon(name: str) -> None:
    api, text, usage = SSE_FIXTURES[name]
    crlf = text.replace("\r\n", "\n").replace("\n", "\r\n").replace("data: ", "data:")
    assert _read(api, [crlf.encode()]) == usage
    raw = crlf.encode()
    assert _read(api, [raw[i : i + 7] for i in range(0, len(raw), 7)]) == usage


def test_sse_without_content_type_is_recognised() -> None:
    assert parse_usage("anthropic", None, ANTHROPIC_SSE.encode()) == SSE_FIXTURES["anthropic"][2]


def test_anthropic_takes_the_last_cumulative_output_count() -> None:
    text = ANTHROPIC_SSE.replace(
        "event: message_stop",
        'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"tool_use"},'
        '"usage":{"output_tokens":40}}\n\nevent: message_stop',
    )
    assert _read("anthropic", [text.encode()]) == Usage(472, 40, "claude-sonnet-4-20250514")


def test_anthropic_stream_counts_cached_input() -> None:
    text = ANTHROPIC_SSE.replace('"cache_read_input_tokens":0', '"cache_read_input_tokens":1000')
    assert _read("anthropic", [text.encode()]).tokens_in == 1472


@pytest.mark.parametrize("event", ["response.incomplete", "response.failed"])
def test_openai_responses_unfinished_events_carry_usage(event: str) -> None:
    usage = '{"input_tokens":20,"output_tokens":64,"total_tokens":84}'
    text = (
        f"event: {event}\n"
        f'data: {{"type":"{event}","sequence_number":9,"response":'
        + _RESPONSE % (event.split(".")[1], "[]", usage)
        + "}\n\n"
    )
    assert _read("openai", [text.encode()]) == Usage(20, 64, "gpt-4.1-2025-04-14")


def test_stream_without_usage_has_no_counts() -> None:
    text = (
        OPENAI_CHAT_SSE.split(
            'data: {"id":"chatcmpl-B9","object":"chat.completion.chunk",'
            '"created":1741290958,"model":"gpt-4o-mini-2024-07-18",'
            '"choices":[],'
        )[0]
        + "data: [DONE]\n\n"
    )
    assert _read("openai", [text.encode()]) == Usage(None, None, "gpt-4o-mini-2024-07-18")


def test_interrupted_stream_counts_what_arrived() -> None:
    raw = ANTHROPIC_SSE.encode()
    cut = raw.index(b"event: content_block_stop")
    assert _read("anthropic", [raw[:cut]]) == Usage(472, 2, "claude-sonnet-4-20250514")


def test_last_event_without_blank_line_still_counts() -> None:
    raw = OPENROUTER_SSE.replace("\n\ndata: [DONE]\n\n", "").encode()
    assert _read("openai", [raw]) == Usage(8, 2, "openai/gpt-4o")
    assert _read("openai", [raw + b"\n"]) == Usage(8, 2, "openai/gpt-4o")


def test_multi_line_data_is_joined() -> None:
    text = (
        "event: message_delta\n"
        'data: {"type":"message_delta",\n'
        'data:  "usage":\n'
        'data: {"output_tokens":7}}\n'
        "id: 3\n"
        "retry: 1000\n"
        ": a comment in the middle\n"
        "\n"
    )
    assert _read("anthropic", [text.encode()]) == Usage(None, 7, None)


def test_ndjson_lines_are_read_too() -> None:
    body = (
        b'{"event_type":"text-generation","text":"Hi","is_finished":false}\n'
        b'{"event_type":"stream-end","is_finished":true,"response":{"text":"Hi"},'
        b'"usage":{"billed_units":{"input_tokens":3,"output_tokens":1}}}\n'
    )
    assert _read("cohere", [body]) == Usage(3, 1, None)


def test_broken_events_are_skipped() -> None:
    text = (
        "data: {not json\n\n"
        "data: [1, 2]\n\n"
        'data: {"usage": {"prompt_tokens": "many"}}\n\n'
        "data: \xff\xfe\n\n"
        "garbage line without colon\n\n"
        'data: {"model": "m", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}}'
        "\n\ndata: [DONE]\n\n"
    )
    assert _read("openai", [text.encode("utf-8", "surrogateescape")]) == Usage(1, 2, "m")


def test_web_stream_is_not_read() -> None:
    assert _read("web", [OPENAI_CHAT_SSE.encode()]) == Usage()


def test_pathological_line_stays_bounded_and_the_stream_recovers() -> None:
    reader = StreamUsage("openai")
    chunk = b"x" * 65536
    tracemalloc.start()
    try:
        reader.feed(b"data: ")
        for _ in range(320):  # 20 MiB without a newline
            reader.feed(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * LINE_CAP
    assert reader.usage == Usage()
    reader.feed(b"\n\n" + OPENAI_CHAT_SSE.encode())
    assert reader.usage == Usage(12, 5, "gpt-4o-mini-2024-07-18")


def test_oversized_event_with_usage_at_its_end_is_salvaged() -> None:
    image = "iVBORw0KGgo" * (LINE_CAP // 4)
    text = (
        "event: response.completed\n"
        'data: {"type":"response.completed","sequence_number":40,"response":'
        + _RESPONSE
        % (
            "completed",
            '[{"type":"image_generation_call","status":"completed","result":"' + image + '"}]',
            '{"input_tokens":2000,"output_tokens":1372,"total_tokens":3372}',
        )
        + "}\n\n"
    )
    raw = text.encode()
    chunks = [raw[i : i + 16384] for i in range(0, len(raw), 16384)]
    assert _read("openai", chunks) == Usage(2000, 1372, "gpt-4.1-2025-04-14")


def test_many_data_lines_in_one_event_are_dropped_past_the_cap() -> None:
    reader = StreamUsage("openai")
    line = b"data: " + b"y" * 1000 + b"\n"
    for _ in range(2 * LINE_CAP // 1000):
        reader.feed(line)
    assert reader.usage == Usage()
    reader.feed(b'\ndata: {"usage": {"prompt_tokens": 4, "completion_tokens": 5}}\n\n')
    assert reader.usage == Usage(4, 5, None)


# --- never raises ---------------------------------------------------------------------------

_FUZZ_KEYS = ["model", "messages", "content", "type", "text", "parts", "contents", "system",
              "input", "prompt", "stream", "stream_options", "include_usage", "requests",
              "systemInstruction", "chat_history", "attachments", "usage", "response", "message",
              "delta", "x_groq", "usageMetadata", "billed_units", "tokens", "input_tokens",
              "prompt_tokens", "output_tokens", "promptTokenCount"]  # fmt: skip
_FUZZ_ATOMS: list[object] = [None, True, 5, -3, 1.5, "s", "", [], {}, "text", "tool_result"]
_FUZZ_PATHS = ["/v1/chat/completions", "/v1/responses", "/v1/messages", "/v2/chat",
               "/v1beta/models/g:generateContent", "/v1beta/models/g:batchEmbedContents",
               "/backend-api/conversation", "/api/organizations/a/chat_conversations/b/completion",
               "/v1/embeddings", "/v1/complete"]  # fmt: skip


def _random_json(rnd: random.Random, depth: int = 0) -> object:
    roll = rnd.random()
    if depth > 4 or roll < 0.3:
        return rnd.choice(_FUZZ_ATOMS)
    if roll < 0.6:
        return [_random_json(rnd, depth + 1) for _ in range(rnd.randint(0, 3))]
    return {rnd.choice(_FUZZ_KEYS): _random_json(rnd, depth + 1) for _ in range(rnd.randint(0, 4))}


def test_random_bodies_never_raise() -> None:
    rnd = random.Random(20240601)
    for _ in range(3000):
        provider = rnd.choice(CATALOG.providers)
        body = bytearray(json.dumps(_random_json(rnd)).encode())
        if body and rnd.random() < 0.3:
            body[rnd.randrange(len(body))] = rnd.randrange(256)
        raw = bytes(body)
        parsed = parse_request(provider, "POST", rnd.choice(_FUZZ_PATHS), None, raw)
        assert parsed.prompt is None or isinstance(parsed.prompt, str)
        assert isinstance(parse_usage(provider.api, None, raw), Usage)
        reader = StreamUsage(provider.api)
        stream = b"data: " + raw + b"\n\n" + raw
        for start in range(0, len(stream), 5):
            reader.feed(stream[start : start + 5])
        assert isinstance(reader.usage, Usage)
