"""Two real gates on one real PostgreSQL server: what one gate does, the other enforces.

Each gate is a ``hearthgate run`` process with its own state directory (CA, run.json) and
the same rules file and ``--database``; the clients are the official SDKs. The server is
the session's (``tests/support/postgres.py``); each test gets an empty schema of its own.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from proxy.store.db import Db
from tests.e2e.conftest import HEARTHGATE, KID, PARENT, ROOT, Gate, household
from tests.support.proxyproc import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
CHAT = [{"role": "user", "content": "is it bedtime yet?"}]


class Pair:
    def __init__(self, a: Gate, b: Gate, url: str) -> None:
        self.a, self.b, self.url = a, b, url

    def cli(self, gate: Gate, *args: str, check: bool = True) -> str:
        done = subprocess.run(
            [HEARTHGATE, *args, "--state-dir", str(gate.state_dir), "--rules", str(gate.rules)],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=ROOT,
            env={"HEARTHGATE_DATABASE": self.url, "PATH": "/usr/bin:/bin"},
        )
        if check and done.returncode != 0:
            raise AssertionError(f"hearthgate {args} failed:\n{done.stdout}{done.stderr}")
        return done.stdout + done.stderr

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with Db(self.url) as db:
            return db.rows(sql, params)

    def wait_rows(self, sql: str, expect: int, timeout: float = 10) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []

        def enough() -> bool:
            nonlocal found
            found = self.rows(sql)
            return len(found) >= expect

        wait_until(enough, timeout, f"{expect} rows of {sql}")
        return found


@pytest.fixture
def pair(make_gate, pg_url: str, tmp_path: Path) -> Callable[[str], Pair]:  # type: ignore[no-untyped-def]
    def start(rules: str) -> Pair:
        gates = [
            make_gate(rules, "--database", pg_url, "--instance", name, state=tmp_path / name)
            for name in ("gate-a", "gate-b")
        ]
        return Pair(gates[0], gates[1], pg_url)

    return start


def kid_allowed(gate: Gate) -> bool:
    try:
        gate.openai(KID).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        return True
    except openai.PermissionDeniedError:
        return False


def test_one_decision_log_and_each_gate_says_who_it_is(pair) -> None:  # type: ignore[no-untyped-def]
    p: Pair = pair(household(bedtime=False))
    p.a.openai(PARENT).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    p.b.anthropic(PARENT).messages.create(
        model="claude-3-5-haiku-latest", max_tokens=16, messages=CHAT
    )
    rows = p.wait_rows("SELECT provider, device FROM decisions ORDER BY id", 2)
    assert sorted(r["provider"] for r in rows) == ["anthropic", "openai"]
    log = json.loads(p.cli(p.b, "log", "--json"))
    assert {r["provider"] for r in log} == {"anthropic", "openai"}
    for gate, name in ((p.a, "gate-a"), (p.b, "gate-b")):
        health = gate.health()
        assert (health["instance"], health["database_backend"]) == (name, "postgresql")
        assert health["database_reachable"] and health["status"] == "ok"
        assert f'hearthgate_gate_info{{backend="postgresql",gate="{name}"}} 1.0' in (gate.metrics())


def test_an_emergency_from_gate_as_cli_is_enforced_by_gate_b_within_2s(pair) -> None:  # type: ignore[no-untyped-def]
    p: Pair = pair(household())
    assert not kid_allowed(p.b)
    p.cli(p.a, "emergency", "on", "--minutes", "30", "--reason", "exam", "--as", "mom")
    started = time.monotonic()
    wait_until(lambda: kid_allowed(p.b), 5, "gate B to see gate A's emergency")
    assert time.monotonic() - started < 2.5
    p.cli(p.b, "emergency", "off", "--as", "dad")
    wait_until(lambda: not kid_allowed(p.a), 5, "gate A to see gate B's 'off'")


def test_one_active_emergency_whichever_gates_api_is_asked(pair) -> None:  # type: ignore[no-untyped-def]
    p: Pair = pair(household())
    out = p.cli(p.a, "admin", "add", "mom", "--role", "parent", "--as", "mom")
    token = next(w for w in out.split() if w.startswith("hg_"))
    headers = {"Authorization": f"Bearer {token}"}
    body = {"duration_minutes": 30, "reason": "exam"}

    def switch_on(gate: Gate) -> int:
        url = f"{gate.admin_url}/api/governance/emergency"
        return httpx.post(url, json=body, headers=headers, timeout=10).status_code

    codes: list[int] = []
    threads = [
        threading.Thread(target=lambda g=g: codes.append(switch_on(g)))
        for g in (p.a, p.b, p.a, p.b)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(codes) == [200, 409, 409, 409], codes
    assert p.rows("SELECT count(*) AS n FROM emergency WHERE active = 1") == [{"n": 1}]
    wait_until(lambda: kid_allowed(p.a) and kid_allowed(p.b), 5, "both gates to let Alice in")


QUOTA = """policies:
  - name: kids-daily
    when: {groups: [kids]}
    quota: {per: person, requests_per_day: 5}
"""


def test_thirty_requests_at_once_on_two_gates_get_exactly_the_five_allowed(pair) -> None:  # type: ignore[no-untyped-def]
    p: Pair = pair(household(bedtime=False, extra=QUOTA))
    outcomes: list[str] = []
    barrier = threading.Barrier(30)

    def ask(gate: Gate) -> None:
        client = gate.openai(KID)
        barrier.wait()
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
            outcomes.append("ok")
        except openai.RateLimitError:
            outcomes.append("429")
        except Exception as exc:  # noqa: BLE001 - counted, and shown if the test fails
            outcomes.append(repr(exc))

    threads = [threading.Thread(target=ask, args=((p.a, p.b)[i % 2],)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["429"] * 25 + ["ok"] * 5, outcomes
    assert p.rows("SELECT requests FROM usage WHERE key = 'person:alice'") == [{"requests": 5}]
    rows = p.wait_rows("SELECT allowed FROM decisions", 30)
    assert sum(r["allowed"] for r in rows) == 5
    # the metrics count the decision that stood: 5 allowed, 25 refused by the quota
    counted: dict[str, float] = {"allow": 0, "block": 0}
    for gate in (p.a, p.b):
        for line in gate.metrics().splitlines():
            if line.startswith("hearthgate_decisions_total{") and 'device="alice-laptop"' in line:
                action = line.split('action="', 1)[1].split('"', 1)[0]
                counted[action] = counted.get(action, 0) + float(line.rsplit(" ", 1)[1])
    assert counted == {"allow": 5, "block": 25}, counted


OVERRIDES = """overrides: {max_attempts: 3, lockout_minutes: 15}
"""


def blocked_request_id(p: Pair, gate: Gate) -> str:
    with pytest.raises(openai.PermissionDeniedError) as info:
        gate.openai(KID).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    request_id = info.value.response.headers["x-hearthgate-request-id"]
    p.wait_rows(f"SELECT 1 FROM decisions WHERE request_id = '{request_id}'", 1)
    return request_id


def with_pin(gate: Gate, pin: str, request_id: str) -> str:
    client = gate.openai(KID).with_options(
        default_headers={"X-Hearthgate-Pin": pin, "X-Hearthgate-Request-Id": request_id}
    )
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        return "ok"
    except openai.PermissionDeniedError as err:
        return str(err)


def test_a_pin_works_once_when_both_gates_get_it_at_the_same_moment(pair) -> None:  # type: ignore[no-untyped-def]
    p: Pair = pair(household(extra=OVERRIDES))
    request_id = blocked_request_id(p, p.a)
    p.cli(p.a, "override", "create", request_id, "--pin", "2468", "--as", "mom")
    results: list[str] = []
    barrier = threading.Barrier(2)

    def present(gate: Gate) -> None:
        barrier.wait()
        results.append(with_pin(gate, "2468", request_id))

    threads = [threading.Thread(target=present, args=(g,)) for g in (p.a, p.b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results.count("ok") == 1, results
    assert "already used" in next(r for r in results if r != "ok")
    assert len(p.rows("SELECT 1 FROM overrides WHERE used_at IS NOT NULL")) == 1
    assert len(p.rows("SELECT 1 FROM unlocks WHERE source = 'pin'")) == 1


def test_wrong_pins_on_both_gates_count_towards_one_lockout(pair) -> None:  # type: ignore[no-untyped-def]
    p: Pair = pair(household(extra=OVERRIDES))
    request_id = blocked_request_id(p, p.a)
    p.cli(p.a, "override", "create", request_id, "--pin", "2468", "--as", "mom")
    answers = [with_pin(g, "1111", request_id) for g in (p.a, p.b, p.a)]
    assert ["attempt(s) left" in a for a in answers] == [True, True, True], answers
    assert "0 attempt(s) left" in answers[-1]
    locked = with_pin(p.b, "2468", request_id)  # the right PIN, too late, on the other gate
    assert "too many wrong PINs" in locked, locked


def test_while_postgres_is_away_gates_decide_from_memory_and_catch_up(  # type: ignore[no-untyped-def]
    pair, postgres
) -> None:
    p: Pair = pair(household(extra=QUOTA))
    out = p.cli(p.a, "admin", "add", "mom", "--role", "parent", "--as", "mom")
    token = next(w for w in out.split() if w.startswith("hg_"))
    p.a.openai(PARENT).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    p.wait_rows("SELECT 1 FROM decisions", 1)
    postgres.stop()
    try:
        # what needs the database says so: the API with 503, the CLI with its message
        answer = httpx.get(
            f"{p.b.admin_url}/api/governance/emergency/status",
            headers={"Authorization": f"Bearer {token}"},
            timeout=20,
        )
        assert answer.status_code == 503 and "cannot be reached" in answer.json()["detail"]
        failed = p.cli(p.b, "emergency", "status", check=False)
        assert "cannot be used" in failed and "Traceback" not in failed
        wait_until(lambda: p.a.health()["status"] == "degraded", 10, "gate A to notice")
        health = p.a.health()
        assert health["database_reachable"] is False and health["database_error"]
        assert "hearthgate_database_up 0.0" in p.a.metrics()
        # decided from memory: the parent is let through, Alice's bedtime still holds
        for _ in range(3):
            p.a.openai(PARENT).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        assert not kid_allowed(p.b)
        wait_until(lambda: p.a.health()["decision_log_queue_depth"] >= 3, 10, "rows to wait")
    finally:
        postgres.start_again()
    wait_until(lambda: p.a.health()["status"] == "ok", 20, "gate A to reconnect")
    wait_until(lambda: p.a.health()["decision_log_queue_depth"] == 0, 20, "the queue to drain")
    rows = p.wait_rows("SELECT device FROM decisions", 5)
    assert [r["device"] for r in rows].count("mom-laptop") == 4


def test_anthropic_sdk_is_refused_by_the_shared_quota_too(pair) -> None:  # type: ignore[no-untyped-def]
    p: Pair = pair(household(bedtime=False, extra=QUOTA.replace("5", "1")))
    p.a.openai(KID).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    with pytest.raises(anthropic.RateLimitError):
        p.b.anthropic(KID).messages.create(
            model="claude-3-5-haiku-latest", max_tokens=16, messages=CHAT
        )
