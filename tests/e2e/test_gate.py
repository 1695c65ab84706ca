"""The gate on the wire: real proxy, fake TLS upstream, official SDKs as clients."""

from __future__ import annotations

import time

import anthropic
import httpx
import openai
import pytest

from tests.e2e.conftest import KID, PARENT, UNKNOWN, Gate, household
from tests.support.fake_llm import FakeLLM
from tests.support.proxyproc import wait_until

pytestmark = pytest.mark.e2e
CHAT = [{"role": "user", "content": "What is a prime number?"}]


def test_allowed_openai_call_is_forwarded_and_logged(gate: Gate, fake_llm: FakeLLM) -> None:
    client = gate.openai(PARENT)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    assert reply.choices[0].message.content.startswith("fake reply to: What is a prime")
    [row] = gate.rows("device = 'mom-laptop' AND endpoint = 'chat'")
    assert (row["provider"], row["model"], row["stage"], row["allowed"]) == (
        "openai",
        "gpt-4o-mini",
        "default",
        1,
    )
    assert (row["tokens_in"], row["tokens_out"], row["status"]) == (11, 7, 200)
    assert row["person"] == "mom" and row["host"] == "api.openai.com"
    assert row["ts"].endswith("Z") and len(row["ts"]) == len("2026-11-22T04:19:13.323Z")


def test_allowed_anthropic_call_is_logged_with_tokens(gate: Gate) -> None:
    message = gate.anthropic(UNKNOWN).messages.create(
        model="claude-3-5-haiku-latest", max_tokens=50, messages=CHAT
    )
    assert message.content[0].text.startswith("fake reply")
    [row] = gate.rows("provider = 'anthropic' AND device = 'ip:127.0.0.1'")
    assert (row["model"], row["tokens_in"], row["tokens_out"]) == ("claude-3-5-haiku-latest", 17, 8)


def test_bedtime_blocks_openai_with_permission_error(gate: Gate, fake_llm: FakeLLM) -> None:
    before = len(fake_llm.requests)
    with pytest.raises(openai.PermissionDeniedError) as info:
        gate.openai(KID).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    err = info.value
    assert "Bedtime, Alice." in str(err) and "bedtime" in str(err)
    request_id = err.response.headers["x-hearthgate-request-id"]
    assert request_id in str(err)
    assert "bedtime" in err.response.headers["x-hearthgate-reason"]
    [row] = gate.rows("request_id = ?", (request_id,))
    assert (row["stage"], row["rule"], row["action"], row["allowed"], row["status"]) == (
        "time_rule",
        "bedtime",
        "block",
        0,
        403,
    )
    assert (row["device"], row["person"], row["model"]) == ("alice-laptop", "alice", "gpt-4o-mini")
    assert len(fake_llm.requests) == before, "a blocked request must never reach the upstream"


def test_bedtime_blocks_anthropic_with_permission_error(gate: Gate) -> None:
    with pytest.raises(anthropic.PermissionDeniedError) as info:
        gate.anthropic(KID).messages.create(
            model="claude-3-5-haiku-latest", max_tokens=10, messages=CHAT
        )
    assert "Bedtime, Alice." in str(info.value)
    assert info.value.body["error"]["type"] == "permission_error"


def test_gemini_block_has_gemini_error_shape(gate: Gate) -> None:
    with gate.http(KID) as client:
        r = client.post(
            "https://generativelanguage.googleapis.com/v1beta/models/"
            "gemini-2.0-flash:generateContent",
            json={"contents": [{"parts": [{"text": "hi"}]}]},
        )
    assert r.status_code == 403
    assert r.json()["error"]["status"] == "PERMISSION_DENIED"
    assert r.json()["error"]["code"] == 403


def test_browser_gets_a_block_page_with_pin_form(gate: Gate) -> None:
    with gate.http(KID) as client:
        r = client.get("https://chatgpt.com/", headers={"accept": "text/html,*/*"})
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/html")
    page = r.text
    request_id = r.headers["x-hearthgate-request-id"]
    for expected in (
        "Bedtime, Alice.",
        "bedtime",
        request_id,
        'action="/__hearthgate/override"',
        'name="pin"',
    ):
        assert expected in page


def test_a_blocked_page_view_is_one_row_not_two_with_its_icon(make_gate) -> None:  # type: ignore[no-untyped-def]
    gate: Gate = make_gate(household())
    with gate.http(KID) as client:
        page = client.get("https://chatgpt.com/c/1", headers={"accept": "text/html,*/*"})
        icon = client.get("https://chatgpt.com/favicon.ico", headers={"accept": "image/*"})
        again = client.get("https://chatgpt.com/c/2", headers={"accept": "text/html,*/*"})
    assert page.status_code == 403 and icon.status_code == 404 and again.status_code == 403
    rows = gate.rows("device = 'alice-laptop'", expect=2)
    time.sleep(0.5)
    assert [r["path"] for r in gate.rows("device = 'alice-laptop'", expect=2)] == ["/c/1", "/c/2"]
    assert len(rows) == 2


def test_every_day_all_day_rule_page_says_no_set_time(make_gate) -> None:  # type: ignore[no-untyped-def]
    rules = household(bedtime=False) + (
        "time_rules:\n"
        '  - {name: never, start: "00:00", end: "00:00", applies_to: {groups: [kids]}}\n'
    )
    gate: Gate = make_gate(rules)
    with gate.http(KID) as client:
        r = client.get("https://chatgpt.com/", headers={"accept": "text/html,*/*"})
    assert r.status_code == 403 and "no set time" in r.text and "00:00" not in r.text


def test_openai_stream_arrives_chunk_by_chunk_and_counts_tokens(gate: Gate) -> None:
    client = gate.openai(PARENT)
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=CHAT,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-fake-delay-ms": "300"},
    )
    arrivals, text = [], ""
    for chunk in stream:
        if chunk.choices:
            arrivals.append(time.monotonic())
            text += chunk.choices[0].delta.content or ""
    assert text == "one two three four five"
    assert arrivals[-1] - arrivals[0] >= 0.8, "chunks were buffered, not streamed"
    [row] = gate.rows("device = 'mom-laptop' AND tokens_out = 5")
    assert row["tokens_in"] == 11


def test_anthropic_stream_counts_tokens(gate: Gate) -> None:
    client = gate.anthropic(PARENT)
    with client.messages.stream(model="claude-sonnet-4", max_tokens=20, messages=CHAT) as s:
        text = "".join(s.text_stream)
    assert text
    [row] = gate.rows("model = 'claude-sonnet-4'")
    assert (row["tokens_in"], row["tokens_out"]) == (17, 8)


def test_non_llm_host_is_tunnelled_with_its_own_certificate(gate: Gate) -> None:
    # verified against the upstream's own CA only: a forged certificate would fail
    with gate.http(KID, verify=gate.pki.ca_cert) as client:
        r = client.get("https://example.org/")
    assert r.status_code == 200 and r.text == "hello from upstream example.org"
    assert gate.rows("host = 'example.org'", expect=0) == []


@pytest.mark.parametrize(
    "body", [b"{not json", b"\xff\xfe\x00garbage", b"[1, 2, 3]", b'{"model": 5, "messages": "x"}']
)
def test_malformed_bodies_are_still_decided(gate: Gate, body: bytes) -> None:
    with gate.http(KID) as client:
        r = client.post(
            "https://api.openai.com/v1/chat/completions",
            content=body,
            headers={"content-type": "application/json"},
        )
    assert r.status_code == 403
    gate.rows("request_id = ?", (r.headers["x-hearthgate-request-id"],))


def test_huge_body_is_decided_without_inspection(gate: Gate, fake_llm: FakeLLM) -> None:
    big = (
        b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "'
        + b"x" * (3 * 1024 * 1024)
        + b'"}]}'
    )
    with gate.http(KID) as client:
        r = client.post(
            "https://api.openai.com/v1/chat/completions",
            content=big,
            headers={"content-type": "application/json"},
        )
    assert r.status_code == 403
    with gate.http(PARENT) as client:
        r = client.post(
            "https://api.openai.com/v1/chat/completions",
            content=big,
            headers={"content-type": "application/json"},
        )
    assert r.status_code == 200
    assert len(fake_llm.requests[-1].body) == len(big)


def test_secrets_never_reach_the_log(gate: Gate) -> None:
    gate.openai(PARENT).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    with gate.http(PARENT) as client:
        client.post(
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-pro:"
            "generateContent?key=AIzaSECRET",
            json={"contents": []},
        )
    gate.rows("provider = 'gemini'")
    dump = (gate.state_dir / "hearthgate.db").read_bytes()
    for secret in (b"sk-test-secret", b"AIzaSECRET", b"Bearer"):
        assert secret not in dump


def test_broken_rules_edit_keeps_enforcing_previous_rules(make_gate) -> None:  # type: ignore[no-untyped-def]
    gate: Gate = make_gate()
    version = gate.health()["rules_version"]
    gate.write_rules("version: 1\nsetings: {oops\n")
    wait_until(lambda: gate.health()["rules_error"] is not None, 10, "a reload error")
    health = gate.health()
    assert health["rules_version"] == version and "household.yaml" in health["rules_error"]
    with pytest.raises(openai.PermissionDeniedError):
        gate.openai(KID).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    metrics = httpx.get(f"{gate.admin_url}/metrics").text
    assert 'hearthgate_rules_reloads_total{result="error"} 1.0' in metrics
    # a good edit takes effect: no more bedtime
    gate.write_rules(household(bedtime=False))
    wait_until(lambda: gate.health()["rules_version"] != version, 10, "the reload")
    assert gate.health()["rules_error"] is None
    reply = gate.openai(KID).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    assert reply.choices


def test_deleted_rules_file_keeps_last_good_rules(make_gate) -> None:  # type: ignore[no-untyped-def]
    gate: Gate = make_gate()
    gate.rules.unlink()
    wait_until(lambda: gate.health()["rules_error"] is not None, 10, "a reload error")
    with pytest.raises(openai.PermissionDeniedError):
        gate.openai(KID).chat.completions.create(model="gpt-4o-mini", messages=CHAT)


def test_observe_mode_forwards_and_logs_would_block(make_gate, fake_llm: FakeLLM) -> None:  # type: ignore[no-untyped-def]
    gate: Gate = make_gate(household().replace("timezone: UTC", "timezone: UTC, mode: observe"))
    reply = gate.openai(KID).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    assert reply.choices
    [row] = gate.rows("device = 'alice-laptop'")
    assert (row["action"], row["allowed"], row["enforced"]) == ("block", 1, 0)
    assert row["reason"].startswith("would block")


def test_stream_without_usage_is_counted_and_the_client_sees_no_extra_chunk(
    gate: Gate, fake_llm: FakeLLM
) -> None:
    stream = gate.openai(PARENT).chat.completions.create(
        model="gpt-4.1-nano", messages=CHAT, stream=True
    )
    chunks = list(stream)
    assert all(c.choices for c in chunks), "the usage-only chunk must not reach the client"
    assert all(c.usage is None for c in chunks)
    sent = [r for r in fake_llm.requests if r.path == "/v1/chat/completions"][-1].json()
    assert sent["stream_options"] == {"include_usage": True}
    [row] = gate.rows("model = 'gpt-4.1-nano'")
    assert (row["tokens_in"], row["tokens_out"], row["usage_source"]) == (11, 5, "added")


def test_consumer_web_app_conversation_is_decided_and_parsed(gate: Gate) -> None:
    with gate.http(PARENT) as client:
        r = client.post(
            "https://chatgpt.com/backend-api/conversation",
            json={
                "action": "next",
                "model": "gpt-4o",
                "messages": [
                    {
                        "author": {"role": "user"},
                        "content": {"content_type": "text", "parts": ["hello there"]},
                    }
                ],
            },
        )
    assert r.status_code == 200
    [row] = gate.rows("provider = 'chatgpt' AND method = 'POST'")
    assert (row["endpoint"], row["model"], row["host"]) == ("web-app", "gpt-4o", "chatgpt.com")
