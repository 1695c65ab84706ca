"""The admin API through the real admin port: every endpoint with a parent token, a viewer
token and no token; writes audited; a change takes effect on the very next request."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import KID, Gate, cli, household, start_gate

pytestmark = pytest.mark.e2e
G = "/api/governance"
CHAT = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, pki, fake_llm) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("admin")
    proc = start_gate(tmp, household(), pki, fake_llm)
    gate = Gate(proc, tmp / "state", tmp / "household.yaml", pki)
    tokens = {}
    for name, role in (("mom", "parent"), ("grandpa", "viewer")):
        out = cli(gate, "admin", "add", name, "--role", role, "--as", "setup")
        tokens[role] = re.search(r"hg_\S+", out).group(0)  # type: ignore[union-attr]
    yield {"gate": gate, **tokens}
    proc.stop()


def call(
    api: dict[str, Any], method: str, path: str, role: str | None, body: Any = None
) -> httpx.Response:
    headers = {"authorization": f"Bearer {api[role]}"} if role else {}
    return httpx.request(
        method, api["gate"].admin_url + path, headers=headers, json=body, timeout=30
    )


READS = [
    f"{G}/emergency/status",
    f"{G}/emergency/history",
    f"{G}/allowlist",
    f"{G}/allowlist/check/192.168.1.5",
    f"{G}/time-rules",
    f"{G}/time-rules/check?device=alice-laptop",
    f"{G}/consent/pending",
    f"{G}/override/abc/exists",
    f"{G}/evaluate/simple?device_ip=alice-laptop",
    f"{G}/statistics",
    f"{G}/pause",
    "/api/decisions?limit=5",
    "/api/audit",
]
WRITES = [
    ("POST", f"{G}/allowlist", {"identifier": "10.9.9.9", "reason": "test"}),
    ("DELETE", f"{G}/allowlist/10.9.9.9", None),
    ("POST", f"{G}/time-rules", {"name": "api-rule", "start": "01:00", "end": "02:00"}),
    ("DELETE", f"{G}/time-rules/api-rule", None),
    ("POST", f"{G}/emergency", {"duration_minutes": 5, "reason": "api test"}),
    ("POST", f"{G}/emergency/extend", {"additional_minutes": 5}),
    ("DELETE", f"{G}/emergency", None),
    ("POST", f"{G}/unlock", {"device": "mom-laptop", "minutes": 5}),
    ("POST", f"{G}/pause", {"target": "mom-laptop", "minutes": 5}),
    ("POST", f"{G}/resume", {"target": "mom-laptop"}),
    ("POST", f"{G}/bonus", {"person": "alice", "minutes": 10}),
    (
        "POST",
        f"{G}/consent",
        {"change_type": "unlock", "payload": {"device": "mom-laptop", "minutes": 5}},
    ),
    ("POST", f"{G}/evaluate", {"device_ip": "alice-laptop", "model": "gpt-4o"}),
]


@pytest.mark.parametrize("path", READS)
def test_reads(api: dict[str, Any], path: str) -> None:
    assert call(api, "GET", path, None).status_code == 401
    assert call(api, "GET", path, "viewer").status_code == 200
    assert call(api, "GET", path, "parent").status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_writes(api: dict[str, Any], method: str, path: str, body: Any) -> None:
    assert call(api, method, path, None, body).status_code == 401
    if path.endswith("/evaluate"):  # evaluate reads only
        assert call(api, method, path, "viewer", body).status_code == 200
        return
    assert call(api, method, path, "viewer", body).status_code == 403
    assert call(api, method, path, "parent", body).status_code in (200, 202)


def test_writes_are_audited_with_the_authenticated_actor(api: dict[str, Any]) -> None:
    call(api, "POST", f"{G}/allowlist", "parent", {"identifier": "AA-BB-CC-00-00-01"})
    audit = call(api, "GET", "/api/audit?limit=1", "viewer").json()[0]
    assert (audit["actor"], audit["action"], audit["target"]) == (
        "mom",
        "allowlist.add",
        "mac:aa:bb:cc:00:00:01",
    )


def test_change_takes_effect_on_the_next_request(api: dict[str, Any]) -> None:
    gate: Gate = api["gate"]
    with pytest.raises(openai.PermissionDeniedError):
        gate.openai(KID).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    r = call(
        api, "POST", f"{G}/emergency", "parent", {"duration_minutes": 10, "reason": "homework"}
    )
    assert r.status_code == 200 and r.json()["activated_by"] == "mom"
    assert gate.openai(KID).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    call(api, "DELETE", f"{G}/emergency", "parent")
    with pytest.raises(openai.PermissionDeniedError):
        gate.openai(KID).chat.completions.create(model="gpt-4o-mini", messages=CHAT)


def test_override_flow_and_evaluate(api: dict[str, Any]) -> None:
    gate: Gate = api["gate"]
    with pytest.raises(openai.PermissionDeniedError) as info:
        gate.openai(KID).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    request_id = info.value.response.headers["x-hearthgate-request-id"]
    gate.rows("request_id = ?", (request_id,))
    made = call(
        api, "POST", f"{G}/override", "parent", {"request_id": request_id, "expires_in_minutes": 5}
    ).json()
    assert re.fullmatch(r"\d{6}", made["pin"])
    exists = call(api, "GET", f"{G}/override/{request_id}/exists", "viewer").json()
    assert exists["exists"] is True
    checked = call(
        api,
        "POST",
        f"{G}/override/validate",
        "parent",
        {"request_id": request_id, "pin": made["pin"]},
    ).json()
    assert checked["valid"] is True and checked["device"] == "alice-laptop"
    verdict = call(api, "POST", f"{G}/evaluate", "viewer", {"device_ip": "alice-laptop"}).json()
    assert verdict["allowed"] is True and verdict["stage"] == "override"


def test_bad_input_is_a_clear_4xx(api: dict[str, Any]) -> None:
    bad = [
        ("POST", f"{G}/emergency", {"duration_minutes": 0, "reason": "x"}, 422),
        ("POST", f"{G}/emergency", {"duration_minutes": 5}, 422),
        ("POST", f"{G}/allowlist", {"identifier": "grandmas-ipad"}, 400),
        ("POST", f"{G}/unlock", {"device": "nobody", "minutes": 5}, 400),
        ("POST", f"{G}/time-rules", {"name": "x", "start": "25:00", "end": "1:00"}, 422),
        ("POST", f"{G}/override", {"request_id": "nope"}, 400),
        ("POST", f"{G}/consent/999/approve", None, 400),
        ("POST", f"{G}/emergency/extend", {"additional_minutes": 5}, 400),
    ]
    for method, path, body, status in bad:
        r = call(api, method, path, "parent", body)
        assert r.status_code == status, (path, r.text)
        assert "detail" in r.json()


def test_no_wildcard_cors_and_health_and_metrics_are_open(api: dict[str, Any]) -> None:
    gate: Gate = api["gate"]
    r = httpx.options(
        gate.admin_url + f"{G}/allowlist",
        headers={"origin": "http://evil.example", "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in r.headers
    assert httpx.get(gate.admin_url + "/healthz").status_code == 200
    assert httpx.get(gate.admin_url + "/metrics").status_code == 200
    pac = httpx.get(gate.admin_url + "/proxy.pac")
    assert pac.headers["content-type"].startswith("application/x-ns-proxy-autoconfig")
    assert f"PROXY 127.0.0.1:{gate.proc.port}" in pac.text and "api.openai.com" in pac.text


def test_repeated_bad_tokens_are_slowed_down(api: dict[str, Any]) -> None:
    gate: Gate = api["gate"]
    timings = []
    for _ in range(8):
        started = time.monotonic()
        r = httpx.get(
            gate.admin_url + f"{G}/allowlist",
            headers={"authorization": "Bearer hg_deadbeef_wrong"},
            timeout=30,
        )
        timings.append(time.monotonic() - started)
        assert r.status_code == 401
    assert sum(timings[-3:]) > 1.0, timings  # the 6th..8th failures wait before answering


def test_revoked_token_stops_working(api: dict[str, Any]) -> None:
    gate: Gate = api["gate"]
    out = cli(gate, "admin", "add", "aunt", "--role", "viewer")
    token = re.search(r"hg_\S+", out).group(0)  # type: ignore[union-attr]
    assert (
        httpx.get(
            gate.admin_url + "/api/audit", headers={"authorization": f"Bearer {token}"}
        ).status_code
        == 200
    )
    cli(gate, "admin", "revoke", "aunt")
    time.sleep(1.5)  # the gate sees another process's change within a second
    assert (
        httpx.get(
            gate.admin_url + "/api/audit", headers={"authorization": f"Bearer {token}"}
        ).status_code
        == 401
    )


def test_schemathesis_finds_no_server_errors(api: dict[str, Any]) -> None:
    """Property-based requests generated from /openapi.json: none may end in a 500."""
    import subprocess
    import sys
    from pathlib import Path

    schemathesis = str(Path(sys.executable).with_name("schemathesis"))
    done = subprocess.run(
        [
            schemathesis,
            "run",
            api["gate"].admin_url + "/openapi.json",
            "-H",
            f"Authorization: Bearer {api['parent']}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "5",
            "--phases",
            "coverage,fuzzing",
            "--seed",
            "292451909486959668105952860334926296026",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_metrics_parse_and_match_the_decision_log(api: dict[str, Any]) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from tests.e2e.conftest import PARENT
    from tests.support.proxyproc import wait_until

    gate: Gate = api["gate"]
    gate.openai(PARENT).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    # (blocked requests were made by the earlier tests of this module)

    def families() -> dict[str, Any]:
        return {f.name: f for f in text_string_to_metric_families(gate.metrics())}

    def decisions_total() -> float:
        return sum(
            s.value
            for s in families()["hearthgate_decisions"].samples
            if s.name == "hearthgate_decisions_total"
        )

    wait_until(
        lambda: decisions_total() == len(gate.sql("SELECT id FROM decisions")),
        10,
        "every counted decision to be in the log",
    )
    found = families()
    blocked_log = len(gate.sql("SELECT id FROM decisions WHERE action = 'block'"))
    blocked_metric = sum(
        s.value
        for s in found["hearthgate_decisions"].samples
        if s.name.endswith("_total") and s.labels["action"] == "block"
    )
    assert blocked_metric == blocked_log > 0
    devices = {s.labels["device"] for s in found["hearthgate_decisions"].samples}
    assert devices <= {"alice-laptop", "mom-laptop", "unknown"}  # bounded labels
    tokens = {
        (s.labels["device"], s.labels["direction"]): s.value
        for s in found["hearthgate_tokens"].samples
        if s.name.endswith("_total")
    }
    assert tokens[("mom-laptop", "in")] >= 11
    for name in (
        "hearthgate_emergency_active",
        "hearthgate_decision_log_queue_depth",
        "hearthgate_decision_log_written",
        "hearthgate_decision_log_dropped",
        "hearthgate_rules_reloads",
        "hearthgate_override_attempts",
        "hearthgate_errors",
        "hearthgate_decision_duration_seconds",
    ):
        assert name in found, name
    written = found["hearthgate_decision_log_written"].samples[0].value
    assert written == len(gate.sql("SELECT id FROM decisions"))
