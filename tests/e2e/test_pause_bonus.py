"""A parent's everyday controls through the real gate: pause now and resume, minutes of use
running out, extra time for today, and what the emergency override leaves uncounted."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import openai
import pytest

from proxy.store.db import Db
from tests.e2e.conftest import KID, PARENT, Gate, cli, household
from tests.support.proxyproc import wait_until

pytestmark = pytest.mark.e2e
CHAT = [{"role": "user", "content": "help with my essay"}]
MINUTES = """policies:
  - name: kids-time
    when: {groups: [kids]}
    quota: {per: person, minutes_per_day: 1}
"""


def ask(gate: Gate, source: str = KID) -> str | None:
    answer = gate.openai(source).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    return answer.choices[0].message.content


def allowed(gate: Gate, source: str = KID) -> bool:
    try:
        return bool(ask(gate, source))
    except openai.APIStatusError:
        return False


def soon(predicate: Callable[[], bool], what: str) -> None:
    """A change from the CLI (another process) is in force within two seconds."""
    started = time.monotonic()
    wait_until(predicate, timeout=5, what=what)
    assert time.monotonic() - started < 3


def test_pause_blocks_at_once_and_resume_lets_through(make_gate) -> None:  # type: ignore[no-untyped-def]
    gate: Gate = make_gate(household(bedtime=False))
    assert ask(gate)
    out = cli(gate, "pause", "kids", "--minutes", "60", "--as", "mom")
    assert "kids is paused until" in out
    soon(lambda: not allowed(gate), "the pause")
    with pytest.raises(openai.PermissionDeniedError) as info:
        ask(gate)
    assert "A parent paused AI services until" in str(info.value)
    assert "group kids paused by mom" in str(info.value)
    assert ask(gate, PARENT)  # only the kids are paused
    row = gate.rows("rule = 'pause'")[0]
    assert (row["stage"], row["action"], row["allowed"]) == ("time_rule", "block", 0)
    assert "kids is no longer paused" in cli(gate, "resume", "kids", "--as", "mom")
    soon(lambda: allowed(gate), "the resume")
    audit = gate.sql("SELECT actor, action, target FROM audit ORDER BY id")
    assert [tuple(r) for r in audit] == [
        ("mom", "pause", "group:kids"),
        ("mom", "resume", "group:kids"),
    ]


def test_minutes_run_out_a_bonus_gives_more_and_the_emergency_is_not_counted(  # type: ignore[no-untyped-def]
    make_gate, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    today = datetime.now(UTC).date().isoformat()  # the household's zone is UTC
    with Db(state) as db, db.transaction() as conn:  # a minute used today, before a restart
        conn.execute(
            "INSERT INTO usage (key, day, minutes, last_minute) VALUES ('person:alice', ?, 1, 5)",
            (today,),
        )
    gate: Gate = make_gate(household(bedtime=False, extra=MINUTES), state=state)
    with pytest.raises(openai.RateLimitError) as info:
        ask(gate)
    assert "Today's 1 minutes are used up. They come back at 00:00" in str(info.value)
    assert int(info.value.response.headers["retry-after"]) > 0

    if datetime.now(UTC).second >= 50:  # the next two requests share one minute
        time.sleep(61 - datetime.now(UTC).second)
    cli(gate, "bonus", "alice", "--minutes", "1", "--as", "dad")
    soon(lambda: allowed(gate), "the bonus")
    assert ask(gate)  # the same minute again: free
    audit = gate.sql("SELECT actor, action FROM audit ORDER BY id DESC LIMIT 1")
    assert tuple(audit[0]) == ("dad", "bonus")

    def minutes() -> int:
        rows = gate.sql(
            "SELECT minutes FROM usage WHERE key = 'person:alice' AND day = ?", (today,)
        )
        return int(rows[0][0])

    # the counters are queued at the next beat and written then or at the one after
    wait_until(lambda: minutes() == 2, timeout=5, what="the second minute on disk")
    time.sleep(1)
    assert minutes() == 2  # and no more

    cli(gate, "emergency", "on", "--minutes", "5", "--reason", "exam", "--as", "mom")
    before = _counted(gate)  # waits 1.5 s: the emergency is in force by then
    for _ in range(3):
        assert ask(gate)
    gate.rows("stage = 'emergency'", expect=3)
    assert _counted(gate) == before  # let through by the emergency: not counted


def _counted(gate: Gate) -> int:
    time.sleep(2.5)  # queued at the next beat, written then or at the one after
    rows = gate.sql("SELECT sum(requests) FROM usage WHERE key = 'person:alice'")
    return int(rows[0][0] or 0)
