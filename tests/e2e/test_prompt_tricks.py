"""Prompt rules read every string the model reads, normalised (issue 14, classes 3 and 4).

Each trick is sent through the real gate with an official SDK (or raw JSON where no SDK
helps); each must be blocked before it reaches the fake upstream, and its harmless twin
must still get its answer.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.e2e.conftest import KID, Gate, household, start_gate
from tests.support.fake_llm import FakeLLM
from tests.support.pki import Pki

pytestmark = pytest.mark.e2e
RULES = household(
    bedtime=False,
    extra="""policies:
  - name: no-casino
    when: {groups: [kids], prompt: {keywords: [roulettecasino]}}
    message: Not that.
  - name: no-hacking
    when: {groups: [kids], prompt: {regex: ['\\bhow (?:do|can) i hack\\b']}}
  - name: private
    when: {groups: [kids], prompt: {pii: [email, card]}}
  - name: short
    when: {groups: [kids], max_prompt_chars: 3000}
""",
)
WORD = "roulettecasino"
GEMINI = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent"


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory, pki: Pki, fake_llm: FakeLLM) -> Iterator[Gate]:
    tmp = tmp_path_factory.mktemp("prompt-text")
    proc = start_gate(tmp, RULES, pki, fake_llm)
    try:
        yield Gate(proc, tmp / "state", tmp / "household.yaml", pki)
    finally:
        proc.stop()


def _marker() -> str:
    return f"m{uuid.uuid4().hex[:12]}"


def _reached(fake: FakeLLM, marker: str) -> bool:
    return any(marker.encode() in r.body for r in fake.snapshot())


def _openai_blocked(client: openai.OpenAI, marker: str, **kwargs: Any) -> str:
    with pytest.raises(openai.PermissionDeniedError) as info:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": marker}], **kwargs
        )
    return str(info.value)


def _tool(description: str) -> list[Any]:
    return [{"type": "function", "function": {"name": "lookup", "description": description}}]


# --- class 3: every string the model reads -----------------------------------------------


def test_a_tool_description_is_prompt_text(gate: Gate, fake_llm: FakeLLM) -> None:
    client = gate.openai(KID)
    marker = _marker()
    message = _openai_blocked(client, marker, tools=_tool(f"find the best {WORD} odds"))
    assert "no-casino" in message and "Not that." in message
    assert not _reached(fake_llm, marker)
    twin = _marker()
    answer = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": twin}],
        tools=_tool("find the weather"),
    )
    assert answer.choices and _reached(fake_llm, twin)


def test_a_tool_result_and_a_message_name_are_prompt_text(gate: Gate, fake_llm: FakeLLM) -> None:
    client = gate.anthropic(KID)
    marker = _marker()

    def ask(result: str, name_text: str = "user") -> Any:
        return client.messages.create(
            model="claude-3-5-haiku-latest",
            max_tokens=50,
            messages=[
                {"role": "user", "content": f"{marker} {name_text}"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "web", "input": {}}],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t1", "content": result}],
                },
            ],
        )

    with pytest.raises(anthropic.PermissionDeniedError):
        ask(f"the page says: {WORD} bonus codes")
    assert not _reached(fake_llm, marker)
    marker = _marker()
    assert ask("the page says: sunny").content and _reached(fake_llm, marker)
    other = gate.openai(KID)
    hidden = _marker()
    with pytest.raises(openai.PermissionDeniedError):
        other.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "name": f"x{WORD}", "content": hidden}],
        )
    assert not _reached(fake_llm, hidden)


def test_gemini_inline_text_and_function_responses_are_prompt_text(
    gate: Gate, fake_llm: FakeLLM
) -> None:
    def parts(marker: str, *extra: dict[str, Any]) -> dict[str, Any]:
        return {"contents": [{"role": "user", "parts": [{"text": marker}, *extra]}]}

    document = base64.b64encode(f"notes about {WORD}".encode()).decode()
    picture = base64.b64encode(b"\x89PNG\r\n\x1a\n\x00\x00" + WORD.encode()).decode()
    with gate.http(KID) as client:
        inline, response, image = _marker(), _marker(), _marker()
        sent = client.post(
            GEMINI, json=parts(inline, {"inlineData": {"mimeType": "text/plain", "data": document}})
        )
        assert sent.status_code == 403 and "no-casino" in sent.text
        call = {"functionResponse": {"name": "f", "response": {"result": f"{WORD}!"}}}
        assert client.post(GEMINI, json=parts(response, call)).status_code == 403
        png = {"inlineData": {"mimeType": "image/png", "data": picture}}
        assert client.post(GEMINI, json=parts(image, png)).status_code == 200
    assert not _reached(fake_llm, inline) and not _reached(fake_llm, response)
    assert _reached(fake_llm, image)


def test_max_prompt_chars_counts_tools_too(gate: Gate, fake_llm: FakeLLM) -> None:
    client = gate.openai(KID)
    marker = _marker()
    message = _openai_blocked(client, marker, tools=_tool("describe the weather " * 200))
    assert "short" in message and not _reached(fake_llm, marker)


# --- class 4: the text as the model reads it ---------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        "roulette\u200bcasino",  # a zero-width space
        "rou\u00adlette\u00adcasino",  # soft hyphens
        "ｒｏｕｌｅｔｔｅｃａｓｉｎｏ",  # full-width
        "rоulеttеcаsinо",  # Cyrillic о, е, а
        "ROULETTECASÍNO",  # capitals and an accent
        "rou\u0301lettecasino",  # a combining mark
    ],
)
def test_a_keyword_in_another_spelling_is_found(
    gate: Gate, fake_llm: FakeLLM, spelling: str
) -> None:
    marker = _marker()
    with pytest.raises(openai.PermissionDeniedError):
        gate.openai(KID).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"{marker} {spelling}"}]
        )
    assert not _reached(fake_llm, marker)


def test_regexes_and_personal_data_read_the_normalised_text(gate: Gate, fake_llm: FakeLLM) -> None:
    client = gate.openai(KID)
    for text in (
        "ｈｏｗ ｃａｎ ｉ ｈａｃｋ the school wifi",
        "how can i ha\u2060ck the school wifi",
        "mail me at kid123＠gmail．com",
        "my card is 4111.1111.1111.1111",
        "my card is 4111/1111/1111/1111",
    ):
        marker = _marker()
        with pytest.raises(openai.PermissionDeniedError):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"{marker} {text}"}]
            )
        assert not _reached(fake_llm, marker), text
    for text in (
        "Фотосинтез — это процесс, с помощью которого растения превращают свет в энергию.",
        "Die Schüler schreiben über die Französische Revolution — „Straße“ ist ein Wort.",
        "光合成は植物が太陽の光から糖を作る仕組みです。 pi ≈ 3.14159265358979",
    ):
        marker = _marker()
        answer = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"{marker} {text}"}]
        )
        assert answer.choices and _reached(fake_llm, marker), text
