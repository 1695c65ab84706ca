"""Dashboard pages over ASGI: escaping, the decision log's filters and pages, charts, quota
bars, the rules page and its "what would happen" form."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.proxy.admin.dashboard.test_session import Dash, running, sign_in


@pytest.fixture
async def dash(tmp_path: Path) -> AsyncIterator[Dash]:
    async with running(tmp_path) as d:
        yield d


EVIL_DEVICE = "<script>alert('d')</script>"
EVIL_REASON = '"><img src=x onerror=alert(1)> & more'


def rows_on(page: str) -> int:
    return len(re.findall(r'<td data-label="Time">', page))


async def test_log_escapes_hostile_values(dash: Dash) -> None:
    dash.add_decision(device=EVIL_DEVICE, person=None, reason=EVIL_REASON, rule="<b>r</b>")
    async with dash.client() as client:
        await sign_in(client, dash.tokens["mom"])
        for path in ("/dashboard/decisions", "/dashboard", "/dashboard/devices"):
            text = (await client.get(path)).text
            assert "<script>alert" not in text and "<img src=x" not in text, path
            assert "&lt;script&gt;alert(&#x27;d&#x27;)&lt;/script&gt;" in text, path
        log = (await client.get("/dashboard/decisions")).text
        assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt; &amp; more" in log
        assert "&lt;b&gt;r&lt;/b&gt;" in log


async def test_log_is_paginated_newest_first(dash: Dash) -> None:
    start = datetime.now(UTC) - timedelta(minutes=200)
    for i in range(120):
        ts = (start + timedelta(minutes=i)).isoformat(timespec="milliseconds")
        dash.add_decision(ts=ts.replace("+00:00", "Z"), request_id=f"req-{i:03d}")
    async with dash.client() as client:
        await sign_in(client, dash.tokens["grandpa"])
        first = (await client.get("/dashboard/decisions")).text
        assert rows_on(first) == 50 and "req-119" in first and "req-069" not in first
        assert 'rel="next"' in first and 'rel="prev"' not in first
        second = (await client.get("/dashboard/decisions?period=24h&page=2")).text
        assert rows_on(second) == 50 and "req-069" in second and "req-119" not in second
        assert 'rel="next"' in second and 'rel="prev"' in second
        third = (await client.get("/dashboard/decisions?page=3")).text
        assert rows_on(third) == 20 and 'rel="next"' not in third
        junk = await client.get("/dashboard/decisions?page=abc&period=forever")
        assert junk.status_code == 200 and rows_on(junk.text) == 50


async def test_log_filters(dash: Dash) -> None:
    dash.add_decision(request_id="kid-block")
    dash.add_decision(
        request_id="mom-ok",
        device="mom-laptop",
        person="mom",
        action="allow",
        allowed=1,
        stage="default",
        rule=None,
        reason="no rule matched",
    )
    old = (datetime.now(UTC) - timedelta(days=3)).isoformat().replace("+00:00", "Z")
    dash.add_decision(request_id="old-one", ts=old)
    async with dash.client() as client:
        await sign_in(client, dash.tokens["mom"])

        async def shown(query: str) -> set[str]:
            text = (await client.get(f"/dashboard/decisions?{query}")).text
            return set(re.findall(r"<code>([a-z-]+)</code>", text))

        assert await shown("") == {"kid-block", "mom-ok"}
        assert await shown("period=7d") == {"kid-block", "mom-ok", "old-one"}
        assert await shown("device=mom-laptop") == {"mom-ok"}
        assert await shown("person=alice&period=all") == {"kid-block", "old-one"}
        assert await shown("blocked=1") == {"kid-block"}
        assert await shown("provider=anthropic") == set()
        page = (await client.get("/dashboard/decisions")).text
        assert "time rule</strong> · bedtime — bedtime until 07:00" in page  # the why
        services = re.search(r'<select name="provider".*?</select>', page, re.S)
        assert services is not None  # only the services seen in the log are offered
        assert re.findall(r'<option value="([^"]+)"', services.group(0)) == ["openai"]


async def test_log_filter_by_kind_of_service(dash: Dash) -> None:
    dash.add_decision(request_id="api-call")  # openai: api
    dash.add_decision(request_id="pal-chat", provider="character-ai", host="character.ai")
    async with dash.client() as client:
        await sign_in(client, dash.tokens["mom"])

        async def shown(query: str) -> set[str]:
            text = (await client.get(f"/dashboard/decisions?{query}")).text
            return set(re.findall(r"<code>([a-z-]+)</code>", text))

        assert await shown("category=companion") == {"pal-chat"}
        assert await shown("category=api") == {"api-call"}
        assert await shown("category=music") == set()
        page = (await client.get("/dashboard/decisions")).text
        assert "companion · character.ai" in page and 'name="category"' in page


async def test_home_draws_charts_and_quota_bars(dash: Dash) -> None:
    dash.add_decision()
    dash.add_decision(request_id="r1", action="allow", allowed=1)
    today = datetime.now(UTC).date()
    dash.gate.cache.add_usage(("person:alice", "device:alice-laptop"), today, 10, 300, 200)
    await dash.gate.cache.refresh(force=True)
    async with dash.client() as client:
        await sign_in(client, dash.tokens["mom"])
        home = (await client.get("/dashboard")).text
    assert "Requests per hour, last 24 hours: 2 in all, 1 blocked" in home
    card = home[home.index('id="person-alice"') : home.index("</article>")]
    assert "10 of 40 requests today" in card and "500 of 10000 tokens today" in card
    assert card.count('class="meter"') == 2
    assert '<p class="now ok" role="status">Allowed</p>' in card
    for button in ("Pause 1 h", "Unlock 30 min", "+30 minutes"):
        assert button in card
    assert home.index('id="person-alice"') < home.index("The whole household")
    assert 'id="person-mom"' in home  # every person has a card
    assert "Emergency override is off" in home


async def test_devices_page_shows_people_groups_and_last_seen(dash: Dash) -> None:
    dash.add_decision(ts="2030-01-02T03:04:05.000Z")
    async with dash.client() as client:
        await sign_in(client, dash.tokens["mom"])
        page = (await client.get("/dashboard/devices")).text
    assert '<time datetime="2030-01-02T03:04:05+00:00">' in page
    assert "alice-laptop" in page and "kids" in page and "parents" in page
    assert page.count('action="/dashboard/unlock"') == 2
    assert 'action="/dashboard/override"' in page


async def test_rules_page_and_what_would_happen(dash: Dash) -> None:
    dash.gate.rules.last_error = "rules.yaml:3:1: <oops>"
    dash.gate.rules.last_error_at = datetime.now(UTC)
    async with dash.client() as client:
        await sign_in(client, dash.tokens["grandpa"])
        page = (await client.get("/dashboard/rules")).text
        assert str(dash.gate.rules.path) in page and "rules.yaml:3:1: &lt;oops&gt;" in page
        assert "kid-allowance" in page
        asked = await client.get(
            "/dashboard/rules",
            params={"device": "alice-laptop", "at": "2030-01-01T12:00", "model": "gpt-4o"},
        )
        assert asked.status_code == 200
        assert "policy</strong> · no-big-models" in asked.text
        assert '<td data-label="Stage"><div>emergency</div></td>' in asked.text
        unknown = await client.get("/dashboard/rules", params={"device": "toaster"})
        assert unknown.status_code == 200 and "neither a device in the rules" in unknown.text
        bad_time = await client.get("/dashboard/rules", params={"device": "x", "at": "soon"})
        assert "cannot read the time" in bad_time.text
