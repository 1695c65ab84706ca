"""Dashboard buttons over ASGI: each goes through the store (audited, consent-gated), the
gate's state is refreshed at once, and refusals come back as messages, not errors."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.proxy.admin.dashboard.test_session import RULES, Dash, csrf_of, running, sign_in


@pytest.fixture
async def dash(tmp_path: Path) -> AsyncIterator[Dash]:
    async with running(tmp_path) as d:
        yield d


def audit(d: Dash) -> list[tuple[str, str, str]]:
    with sqlite3.connect(d.state_dir / "hearthgate.db") as conn:
        return conn.execute("SELECT actor, action, target FROM audit ORDER BY id").fetchall()


async def press(client: httpx.AsyncClient, path: str, **fields: str) -> str:
    """POST a dashboard form and return the text of the page it leads back to."""
    csrf = await csrf_of(client)
    r = await client.post(path, data={"csrf": csrf, **fields})
    assert r.status_code == 303, r.text
    return (await client.get(r.headers["location"])).text


def messages(page: str) -> list[str]:
    return re.findall(r'<p class="flash (?:ok|info|error)" role="status">(.*?)</p>', page)


async def test_emergency_on_and_off(dash: Dash) -> None:
    async with dash.client() as client:
        await sign_in(client, dash.tokens["mom"])
        page = await press(client, "/dashboard/emergency/on", minutes="45", reason="trip")
        assert messages(page) == [
            "Emergency override is on for 45 minutes: every request is allowed."
        ]
        assert "Emergency override is ON" in page and "&quot;" not in messages(page)[0]
        emergency = dash.gate.cache.state.emergency
        assert emergency is not None and emergency.activated_by == "mom"
        page = await press(client, "/dashboard/emergency/extend", minutes="15")
        assert "extended by 15 minutes" in messages(page)[0]
        page = await press(client, "/dashboard/emergency/off")
        assert dash.gate.cache.state.emergency is None
        assert "Emergency override is off" in page and len(messages(page)) == 1
    assert [a[:2] for a in audit(dash)[-3:]] == [
        ("mom", "emergency.on"),
        ("mom", "emergency.extend"),
        ("mom", "emergency.off"),
    ]


async def test_refusals_are_messages(dash: Dash) -> None:
    async with dash.client() as client:
        await sign_in(client, dash.tokens["mom"])
        page = await press(client, "/dashboard/emergency/off")
        assert messages(page) == ["Not done: no emergency override is active"]
        page = await press(client, "/dashboard/emergency/on", minutes="lots", reason="x")
        assert "must be a whole number" in messages(page)[0]
        page = await press(client, "/dashboard/unlock", device="toaster", minutes="30")
        assert "unknown device &#x27;toaster&#x27;" in messages(page)[0]
        page = await press(client, "/dashboard/consent/99/approve")
        assert messages(page) == ["Not done: there is no consent request 99"]
        r = await client.post(
            "/dashboard/consent/abc/approve", data={"csrf": await csrf_of(client)}
        )
        assert r.status_code == 404


async def test_unlock_takes_effect_and_is_audited(dash: Dash) -> None:
    async with dash.client() as client:
        await sign_in(client, dash.tokens["mom"])
        page = await press(client, "/dashboard/unlock", device="alice-laptop", minutes="30")
    assert messages(page) == ["alice-laptop is unlocked for 30 minutes."]
    assert "alice-laptop" in dash.gate.cache.state.unlocks
    assert audit(dash)[-1] == ("mom", "unlock.unlock", "alice-laptop")


async def test_pin_is_shown_once(dash: Dash) -> None:
    dash.add_decision(request_id="blocked-1")
    async with dash.client() as client:
        await sign_in(client, dash.tokens["mom"])
        page = await press(
            client, "/dashboard/override", request_id="blocked-1", minutes="10", back="/x"
        )
        shown = re.search(r"PIN for request blocked-1 on alice-laptop: (\d{6})", page)
        assert shown, messages(page)
        again = (await client.get("/dashboard")).text
        assert shown.group(1) not in again
    assert audit(dash)[-1] == ("mom", "override.create", "blocked-1")


async def test_consent_waits_for_another_parent(dash: Dash) -> None:
    dash.gate.rules.path.write_text(RULES + "consent: {approvers: 1, actions: [unlock]}\n")
    assert await dash.gate.rules.check()
    mom, dad = dash.client(), dash.client()
    async with mom, dad:
        await sign_in(mom, dash.tokens["mom"])
        page = await press(mom, "/dashboard/unlock", device="alice-laptop", minutes="20")
        assert messages(page)[0].startswith("Waiting for approval — this change needs approval")
        assert "alice-laptop" not in dash.gate.cache.state.unlocks
        assert "Your request: another parent must approve it." in page
        assert 'action="/dashboard/consent/1/approve"' not in page
        page = await press(mom, "/dashboard/consent/1/approve")
        assert "cannot approve it" in messages(page)[0]

        await sign_in(dad, dash.tokens["dad"])
        home = (await dad.get("/dashboard")).text
        assert "unlock alice-laptop for 20 minutes" in home
        assert 'action="/dashboard/consent/1/approve"' in home
        page = await press(dad, "/dashboard/consent/1/approve")
        assert messages(page) == ["Approved request 1: the change is in force."]
    assert "alice-laptop" in dash.gate.cache.state.unlocks
    # the unlock is applied inside the approval's transaction, with the requester as actor
    assert sorted(a[:2] for a in audit(dash)[-3:]) == [
        ("dad", "consent.approve"),
        ("mom", "consent.request"),
        ("mom", "unlock.unlock"),
    ]


async def test_reject_with_a_reason(dash: Dash) -> None:
    dash.gate.rules.path.write_text(RULES + "consent: {approvers: 1, actions: [emergency]}\n")
    assert await dash.gate.rules.check()
    async with dash.client() as client:
        await sign_in(client, dash.tokens["mom"])
        await press(client, "/dashboard/emergency/on", minutes="30", reason="<party>")
        page = await press(client, "/dashboard/consent/1/reject", reason="school night")
    assert messages(page) == ["Rejected request 1."]
    assert dash.gate.cache.state.emergency is None and "Waiting for approval" not in page


async def test_one_tap_pause_resume_unlock_and_extra_time(dash: Dash) -> None:
    async with dash.client() as client:
        await sign_in(client, dash.tokens["mom"])
        page = await press(client, "/dashboard/pause", person="alice", minutes="60")
        assert messages(page)[0].startswith("alice is paused until ")
        assert [p.target for p in dash.gate.cache.state.pauses] == ["alice"]
        page = await press(client, "/dashboard/resume", person="alice")
        assert messages(page) == ["alice is no longer paused."]
        assert dash.gate.cache.state.pauses == ()
        page = await press(client, "/dashboard/unlock-person", person="alice", minutes="30")
        assert messages(page) == ["alice is unlocked for 30 minutes (alice-laptop)."]
        assert "alice-laptop" in dash.gate.cache.state.unlocks
        page = await press(client, "/dashboard/bonus", person="alice", minutes="30")
        assert messages(page) == ["alice has 30 minutes more today."]
        assert dash.gate.cache.state.bonuses["alice"].minutes == 30
        page = await press(client, "/dashboard/bonus", person="nobody", minutes="30")
        assert messages(page)[0].startswith("Not done: there is no person")
    assert [a[1] for a in audit(dash)][-4:] == ["pause", "resume", "unlock.unlock", "bonus"]
