"""Emergency, PIN overrides, lockout and consent through the real proxy and the real CLI."""

from __future__ import annotations

import json
import time

import openai
import pytest

from tests.e2e.conftest import KID, Gate, cli, household
from tests.support.proxyproc import wait_until

pytestmark = pytest.mark.e2e
CHAT = [{"role": "user", "content": "help with homework"}]


def kid_allowed(gate: Gate) -> bool:
    try:
        gate.openai(KID).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        return True
    except openai.PermissionDeniedError:
        return False


def blocked_request_id(gate: Gate) -> str:
    with pytest.raises(openai.PermissionDeniedError) as info:
        gate.openai(KID).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    request_id = info.value.response.headers["x-hearthgate-request-id"]
    gate.rows("request_id = ?", (request_id,))  # logged before a parent can act on it
    return request_id


def test_emergency_from_the_cli_opens_and_closes_the_gate(make_gate) -> None:  # type: ignore[no-untyped-def]
    gate: Gate = make_gate()
    assert not kid_allowed(gate)
    cli(gate, "emergency", "on", "--minutes", "30", "--reason", "exam tomorrow", "--as", "mom")
    started = time.monotonic()
    wait_until(lambda: kid_allowed(gate), 5, "the emergency to take effect")
    assert time.monotonic() - started < 2.5, "a CLI change must be seen within 2 s"
    [row] = gate.rows("stage = 'emergency'")
    assert "exam tomorrow" in row["reason"] and "mom" in row["reason"]
    status = json.loads(cli(gate, "emergency", "status", "--json"))
    assert status["active"] and status["activated_by"] == "mom"
    cli(gate, "emergency", "off", "--as", "dad")
    wait_until(lambda: not kid_allowed(gate), 5, "the emergency to end")
    history = json.loads(cli(gate, "emergency", "history", "--json"))
    assert history[0]["deactivated_by"] == "dad"


def test_pin_from_the_block_page_unlocks_for_the_window_only(make_gate) -> None:  # type: ignore[no-untyped-def]
    gate: Gate = make_gate(household(extra="overrides: {unlock_minutes: 1}\n"))
    request_id = blocked_request_id(gate)
    out = cli(gate, "override", "create", request_id, "--pin", "2468", "--as", "mom")
    assert "2468" in out and "alice-laptop" in out
    with gate.http(KID) as client:
        page = client.post(
            "https://api.openai.com/__hearthgate/override",
            data={"request_id": request_id, "pin": "2468"},
        )
    assert page.status_code == 200 and "unlocked until" in page.text
    assert kid_allowed(gate)
    [row] = gate.rows("stage = 'override' AND device = 'alice-laptop'")
    assert "PIN" in row["reason"]
    with gate.http(KID) as client:  # single use: the same PIN again is refused
        again = client.post(
            "https://api.openai.com/__hearthgate/override",
            data={"request_id": request_id, "pin": "2468"},
        )
    assert again.status_code == 403 and "already used" in again.text
    unlock_ends = time.monotonic() + 60
    wait_until(lambda: not kid_allowed(gate), 75, "the unlock window to close")
    assert time.monotonic() >= unlock_ends - 3


def test_pin_header_on_retry_lets_the_request_through(make_gate) -> None:  # type: ignore[no-untyped-def]
    gate: Gate = make_gate()
    request_id = blocked_request_id(gate)
    cli(gate, "override", "create", request_id, "--pin", "8642", "--as", "mom")
    reply = gate.openai(KID).chat.completions.create(
        model="gpt-4o-mini",
        messages=CHAT,
        extra_headers={"X-Hearthgate-Pin": "8642", "X-Hearthgate-Request-Id": request_id},
    )
    assert reply.choices
    metrics = gate.metrics()
    assert 'hearthgate_override_attempts_total{result="ok"} 1.0' in metrics


def test_five_wrong_pins_lock_the_device_out(make_gate) -> None:  # type: ignore[no-untyped-def]
    gate: Gate = make_gate()
    request_id = blocked_request_id(gate)
    cli(gate, "override", "create", request_id, "--pin", "1357", "--as", "mom")
    with gate.http(KID) as client:
        for _ in range(5):
            r = client.post(
                "https://api.openai.com/__hearthgate/override",
                data={"request_id": request_id, "pin": "0000"},
            )
            assert r.status_code == 403 and "wrong PIN" in r.text
            assert 'name="pin"' in r.text and "attempt(s) left" in r.text  # the form again
        r = client.post(
            "https://api.openai.com/__hearthgate/override",
            data={"request_id": request_id, "pin": "1357"},
        )
    assert r.status_code == 403 and "too many wrong PINs" in r.text
    assert not kid_allowed(gate)
    assert 'hearthgate_override_attempts_total{result="locked_out"} 1.0' in gate.metrics()


def test_consent_gated_unlock_waits_for_the_second_parent(make_gate) -> None:  # type: ignore[no-untyped-def]
    gate: Gate = make_gate(household(extra="consent: {approvers: 1, actions: [unlock]}\n"))
    out = cli(gate, "unlock", "alice-laptop", "--minutes", "20", "--as", "mom")
    assert "waiting for approval" in out
    time.sleep(2.5)
    assert not kid_allowed(gate), "an unapproved unlock must do nothing"
    [pending] = json.loads(cli(gate, "consent", "list", "--json"))
    refused = cli(gate, "consent", "approve", str(pending["id"]), "--as", "Mom ", check=False)
    assert "cannot approve" in refused
    cli(gate, "consent", "approve", str(pending["id"]), "--as", "dad")
    wait_until(lambda: kid_allowed(gate), 5, "the approved unlock")
    [row] = gate.rows("stage = 'override'")
    assert "unlocked by mom" in row["reason"]
    audit = gate.sql("SELECT actor, action FROM audit ORDER BY id")
    # the unlock is applied inside the approval's transaction, so its row comes first
    assert [tuple(r) for r in audit] == [
        ("mom", "consent.request"),
        ("mom", "unlock.unlock"),
        ("dad", "consent.approve"),
    ]
