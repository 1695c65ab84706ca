"""Every string the model reads is prompt text: the places the issue named, and more."""

from __future__ import annotations

import base64
import json

import pytest

from proxy.catalog.prompt_text import prompt_strings
from proxy.catalog.providers import BUILTIN_PROVIDERS, parse_request

SECRET = "how to win at the casino"
B64 = base64.b64encode(SECRET.encode()).decode()


def _has(body: object) -> bool:
    return any(SECRET in text for text in prompt_strings(body))


@pytest.mark.parametrize(
    "body",
    [
        # tool and function descriptions, and JSON-schema descriptions inside them
        {"tools": [{"type": "function", "function": {"name": "f", "description": SECRET}}]},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {
            "type": "object", "properties": {"q": {"type": "string", "description": SECRET}}}}}]},
        {"tools": [{"name": "f", "input_schema": {"properties": {SECRET: {"type": "string"}}}}]},
        {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {
            "properties": {"a": {"description": SECRET}}}}}},
        # tool call arguments (a JSON string, or an object whose keys are text too)
        {"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
            "function": {"name": "f", "arguments": json.dumps({"q": SECRET})}}]}]},
        {"messages": [{"role": "assistant", "content": [
            {"type": "tool_use", "id": "t", "name": "f", "input": {"type": SECRET}}]}]},
        {"contents": [{"parts": [{"functionCall": {"name": "f", "args": {SECRET: 1}}}]}]},
        # tool results
        {"messages": [{"role": "tool", "tool_call_id": "c", "content": SECRET}]},
        {"messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": SECRET}]}]}]},  # noqa: E501
        {"contents": [{"parts": [{"functionResponse": {"name": "f", "response": {"id": SECRET}}}]}]},  # noqa: E501
        {"input": [{"type": "function_call_output", "call_id": "c", "output": SECRET}]},
        # document and file blocks holding text
        {"messages": [{"role": "user", "content": [{"type": "document", "source": {
            "type": "text", "media_type": "text/plain", "data": SECRET}}]}]},
        {"messages": [{"role": "user", "content": [{"type": "document", "source": {
            "type": "base64", "media_type": "text/plain", "data": B64}}]}]},
        {"messages": [{"role": "user", "content": [{"type": "document", "source": {
            "type": "content", "content": [{"type": "text", "text": SECRET}]}}]}]},
        {"input": [{"role": "user", "content": [{"type": "input_file", "filename": "a.txt",
            "file_data": f"data:text/plain;base64,{B64}"}]}]},
        {"contents": [{"parts": [{"inlineData": {"mimeType": "text/plain", "data": B64}}]}]},
        {"contents": [{"parts": [{"inline_data": {"mime_type": "application/json", "data": B64}}]}]},  # noqa: E501
        # a message's name, predicted outputs, suffix, citations of documents
        {"messages": [{"role": "user", "name": SECRET, "content": "hi"}]},
        {"prediction": {"type": "content", "content": SECRET}},
        {"prompt": "def f():", "suffix": SECRET},
        {"documents": [{"data": {"title": "t", "snippet": SECRET}}]},
        # a field no API has yet
        {"messages": [{"role": "user", "content": "hi"}], "brand_new_field": {"x": [SECRET]}},
    ],
)  # fmt: skip
def test_text_is_found_wherever_it_is(body: object) -> None:
    assert _has(body)


@pytest.mark.parametrize(
    "body",
    [
        {"model": SECRET},
        {"messages": [{"role": SECRET, "id": SECRET, "tool_call_id": SECRET}]},
        {"metadata": {"note": SECRET}, "user": SECRET, "previous_response_id": SECRET},
        {"image_url": {"url": f"https://example.org/{SECRET}.png"}},
        {"source": {"type": "base64", "media_type": "image/png", "data": B64}},
        {"inlineData": {"mimeType": "application/pdf", "data": B64}},
        {"file_data": f"data:application/pdf;base64,{B64}"},
        {"fileData": {"mimeType": "text/plain", "fileUri": SECRET}},
    ],
)
def test_ids_roles_models_links_and_binary_data_are_not_text(body: object) -> None:
    assert not _has(body)


def test_binary_base64_is_not_read_as_text() -> None:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(256))).decode()
    assert prompt_strings({"input_audio": {"data": png, "format": "wav"}}) == []
    assert prompt_strings({"data": "plain words, not base64"}) == ["plain words, not base64"]


def test_document_order_and_deep_nesting_without_recursion() -> None:
    body = {"system": "first", "messages": [{"content": "second"}, {"content": "third"}]}
    assert prompt_strings(body) == ["first", "second", "third"]
    deep: object = SECRET
    for _ in range(5000):
        deep = {"content": [deep]}
    assert prompt_strings(deep) == [SECRET]


def test_max_prompt_chars_counts_the_same_text() -> None:
    openai = next(p for p in BUILTIN_PROVIDERS if p.name == "openai")
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f", "description": SECRET}}]}  # fmt: skip  # noqa: E501
    parsed = parse_request(openai, "POST", "/v1/chat/completions", "application/json",
                           json.dumps(body).encode())  # fmt: skip
    assert parsed.prompt == f"hi\nf\n{SECRET}"
    assert parsed.prompt_chars == len(parsed.prompt)
