"""Devices without the CA (``inspect: sni``): decided by host name, never decrypted."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import KID, PARENT, Gate, household

pytestmark = pytest.mark.e2e


def sni_household() -> str:
    return (
        household()
        .replace(
            "alice-laptop: {person: alice, ips: [127.0.0.2]}",
            "alice-tablet: {person: alice, ips: [127.0.0.2], inspect: sni}",
        )
        .replace(
            "mom-laptop: {person: mom, ips: [127.0.0.3]}",
            "mom-phone: {person: mom, ips: [127.0.0.3], inspect: sni}",
        )
    )


def test_blocked_sni_device_gets_its_connect_refused(make_gate) -> None:  # type: ignore[no-untyped-def]
    gate: Gate = make_gate(sni_household())
    # the tablet trusts only the real service's CA, not the gate's
    with (
        gate.http(KID, verify=gate.pki.ca_cert) as client,
        pytest.raises(httpx.ProxyError, match="403"),
    ):
        client.post("https://api.openai.com/v1/chat/completions", json={"model": "x"})
    [row] = gate.rows("device = 'alice-tablet'")
    assert (row["method"], row["stage"], row["allowed"], row["status"]) == (
        "CONNECT",
        "time_rule",
        0,
        403,
    )
    assert row["model"] is None and row["path"] == ""


def test_allowed_sni_device_is_tunnelled_untouched(make_gate, fake_llm) -> None:  # type: ignore[no-untyped-def]
    gate: Gate = make_gate(sni_household())
    with gate.http(PARENT, verify=gate.pki.ca_cert) as client:
        r = client.post(
            "https://api.openai.com/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": []},
        )
    assert r.status_code == 200  # verified against the service's own certificate
    [row] = gate.rows("device = 'mom-phone'")
    assert (row["method"], row["allowed"]) == ("CONNECT", 1)
    # a decrypting gate would have logged the model; a tunnel cannot see it
    assert row["model"] is None


def test_sni_policies_by_provider_apply_without_decryption(make_gate) -> None:  # type: ignore[no-untyped-def]
    rules = sni_household().replace(
        "time_rules:",
        """policies:
  - {name: no-chatbots-for-mom, when: {people: [mom], providers: [anthropic]}, action: block}
time_rules:""",
    )
    gate: Gate = make_gate(rules)
    with gate.http(PARENT, verify=gate.pki.ca_cert) as client:
        with pytest.raises(httpx.ProxyError):
            client.get("https://api.anthropic.com/v1/models")
        assert client.get("https://api.openai.com/").status_code == 200
    [row] = gate.rows("provider = 'anthropic'")
    assert (row["stage"], row["rule"]) == ("policy", "no-chatbots-for-mom")
