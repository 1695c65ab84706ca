"""Policies by category on the wire: a companion app blocked for kids, an assistant allowed."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import KID, PARENT, Gate, cli, household, start_gate
from tests.support.fake_llm import FakeLLM
from tests.support.pki import Pki

pytestmark = pytest.mark.e2e
CHAT = [{"role": "user", "content": "What is a prime number?"}]

RULES = household(
    bedtime=False,
    extra="""\
policies:
  - name: no-companions-for-kids
    when: {groups: [kids], categories: [companion]}
    action: block
    message: No AI companions, Alice.
providers:
  # example.org plays a companion app the catalog does not know
  - {name: pocket-pal, hosts: [example.org], api: web, category: companion}
""",
)


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory, pki: Pki, fake_llm: FakeLLM) -> Iterator[Gate]:
    tmp = tmp_path_factory.mktemp("categories")
    proc = start_gate(tmp, RULES, pki, fake_llm)
    try:
        yield Gate(proc, tmp / "state", tmp / "household.yaml", pki)
    finally:
        proc.stop()


def test_companion_app_is_blocked_for_a_kid(gate: Gate, fake_llm: FakeLLM) -> None:
    before = len(fake_llm.requests)
    with gate.http(KID) as client:
        r = client.get("https://character.ai/chat", headers={"accept": "text/html"})
    assert r.status_code == 403 and "No AI companions, Alice." in r.text
    request_id = r.headers["x-hearthgate-request-id"]
    [row] = gate.rows("request_id = ?", (request_id,))
    assert (row["provider"], row["stage"], row["rule"], row["allowed"]) == (
        "character-ai",
        "policy",
        "no-companions-for-kids",
        0,
    )
    assert len(fake_llm.requests) == before, "a blocked request must never reach the upstream"


def test_companion_added_by_the_rules_file_is_blocked_too(gate: Gate) -> None:
    with gate.http(KID) as client:
        r = client.get("https://example.org/", headers={"accept": "text/html"})
    assert r.status_code == 403 and "No AI companions" in r.text


def test_assistant_and_api_stay_allowed_for_the_kid(gate: Gate, fake_llm: FakeLLM) -> None:
    with gate.http(KID) as client:
        r = client.get("https://chatgpt.com/backend-api/me")
    assert r.status_code != 403 and "x-hearthgate-reason" not in r.headers
    assert any(q.host.startswith("chatgpt.com") for q in fake_llm.requests)
    reply = gate.openai(KID).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    assert reply.choices[0].message.content.startswith("fake reply to: What is a prime")


def test_companion_rule_concerns_kids_only(gate: Gate) -> None:
    with gate.http(PARENT) as client:
        r = client.get("https://example.org/", headers={"accept": "text/html"})
    assert "No AI companions" not in r.text and r.status_code != 403


def test_log_metrics_and_api_group_by_category(gate: Gate) -> None:
    with gate.http(KID) as client:
        client.get("https://character.ai/", headers={"accept": "text/html"})
    gate.rows("provider = 'character-ai'")
    metrics = gate.metrics()
    assert re.search(
        r'hearthgate_decisions_total\{[^}]*category="companion"[^}]*provider="character-ai"',
        metrics,
    ), "decisions are counted with the service's category"
    assert re.search(
        r'hearthgate_decisions_total\{[^}]*category="api"[^}]*provider="openai"', metrics
    )
    out = cli(gate, "admin", "add", "mom", "--role", "viewer", "--as", "setup")
    token = re.search(r"hg_\S+", out).group(0)  # type: ignore[union-attr]
    headers = {"authorization": f"Bearer {token}"}
    rows = httpx.get(
        f"{gate.admin_url}/api/decisions", params={"category": "companion"}, headers=headers
    ).json()
    assert rows and {(r["provider"], r["category"]) for r in rows} <= {
        ("character-ai", "companion"),
        ("pocket-pal", "companion"),
    }
    bad = httpx.get(
        f"{gate.admin_url}/api/decisions", params={"category": "friends"}, headers=headers
    )
    assert bad.status_code == 422
    stats = httpx.get(f"{gate.admin_url}/api/governance/statistics", headers=headers).json()
    assert stats["by_category"]["companion"]["blocked"] >= 1
    text = cli(gate, "log", "--category", "companion", "--json")
    assert {r["category"] for r in json.loads(text)} == {"companion"}
