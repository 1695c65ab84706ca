"""Dashboard sign-in, sessions, CSRF and roles, against ``create_app`` over ASGI.

The gate is real (rules file, SQLite in tmp_path, started state cache); so are the admin
tokens. The fixtures here are shared with the other tests/proxy/admin/dashboard/ files.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from proxy.admin.server import create_app
from proxy.gate import Gate
from proxy.metrics import Metrics
from proxy.runtime import RulesHolder, StateCache
from proxy.store import admins
from proxy.store.db import Db
from proxy.store.writer import Writer

RULES = """\
version: 1
settings: {timezone: UTC}
groups: {kids: {}, parents: {}}
people:
  alice: {groups: [kids]}
  mom: {groups: [parents]}
devices:
  alice-laptop: {person: alice, ips: [10.0.0.2]}
  mom-laptop: {person: mom, ips: [10.0.0.3]}
policies:
  - name: kid-allowance
    when: {groups: [kids]}
    action: allow
    quota: {per: person, requests_per_day: 40, tokens_per_day: 10000}
  - name: no-big-models
    priority: 10
    when: {groups: [kids], models: [gpt-4o]}
    action: block
"""
BASE = "http://testserver"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Dash:
    gate: Gate
    app: Any
    state_dir: Path
    tokens: dict[str, str]

    def client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app)
        return httpx.AsyncClient(transport=transport, base_url=BASE)

    def add_decision(self, **fields: Any) -> None:
        row = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "request_id": "r0",
            "device": "alice-laptop",
            "person": "alice",
            "provider": "openai",
            "host": "api.openai.com",
            "stage": "time_rule",
            "rule": "bedtime",
            "action": "block",
            "allowed": 0,
            "enforced": 1,
            "reason": "bedtime until 07:00",
            **fields,
        }
        with sqlite3.connect(self.state_dir / "hearthgate.db") as conn:
            conn.execute(
                f"INSERT INTO decisions ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                tuple(row.values()),
            )


@asynccontextmanager
async def running(tmp_path: Path) -> AsyncIterator[Dash]:
    """A gate with its state cache started, and tokens for mom, dad (parents), grandpa."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    metrics = Metrics()
    holder = RulesHolder(rules, metrics)
    writer = Writer(tmp_path)
    cache = StateCache(tmp_path, writer, lambda: holder.snapshot.zone, metrics)
    await cache.start()
    gate = Gate(holder, cache, writer, metrics)
    tokens = {}
    with Db(tmp_path) as db:
        for name, role in (("mom", "parent"), ("dad", "parent"), ("grandpa", "viewer")):
            tokens[name] = admins.add(db, "setup", name, role, datetime.now(UTC))[1]
    try:
        yield Dash(gate, create_app(gate), tmp_path, tokens)
    finally:
        await cache.stop()


@pytest.fixture
async def dash(tmp_path: Path) -> AsyncIterator[Dash]:
    async with running(tmp_path) as d:
        yield d


async def sign_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    form = await client.get("/login")
    csrf = CSRF.search(form.text).group(1)  # type: ignore[union-attr]
    return await client.post("/login", data={"csrf": csrf, "token": token, "next": "/dashboard"})


async def csrf_of(client: httpx.AsyncClient, path: str = "/dashboard") -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return CSRF.search(page.text).group(1)  # type: ignore[union-attr]


async def test_pages_need_a_session(dash: Dash) -> None:
    async with dash.client() as client:
        for path in ("/", "/dashboard", "/dashboard/decisions?device=x"):
            r = await client.get(path)
            assert r.status_code == 303
        r = await client.get("/dashboard/decisions?device=x")
        assert r.headers["location"] == "/login?next=%2Fdashboard%2Fdecisions%3Fdevice%3Dx"


async def test_bad_token_fails_and_good_token_signs_in(dash: Dash) -> None:
    async with dash.client() as client:
        bad = await sign_in(client, "hg_00000000_not-the-secret")
        assert bad.status_code == 401 and "not valid" in bad.text
        assert "hg_session" not in client.cookies
        good = await sign_in(client, dash.tokens["mom"])
        assert good.status_code == 303 and good.headers["location"] == "/dashboard"
        cookie = good.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert dash.tokens["mom"] not in cookie  # the token is not the session
        home = await client.get("/dashboard")
        assert home.status_code == 200 and "mom" in home.text


async def test_sign_in_form_needs_its_csrf_token(dash: Dash) -> None:
    async with dash.client() as client:
        await client.get("/login")
        r = await client.post("/login", data={"csrf": "forged", "token": dash.tokens["mom"]})
        assert r.status_code == 403 and "hg_session" not in client.cookies


async def test_post_without_or_with_wrong_csrf_is_refused(dash: Dash) -> None:
    async with dash.client() as client:
        await sign_in(client, dash.tokens["mom"])
        good = await csrf_of(client)
        form = {"minutes": "30", "reason": "trip"}
        assert (await client.post("/dashboard/emergency/on", data=form)).status_code == 403
        wrong = {**form, "csrf": "x" + good}
        assert (await client.post("/dashboard/emergency/on", data=wrong)).status_code == 403
        foreign = await client.post(
            "/dashboard/emergency/on",
            data={**form, "csrf": good},
            headers={"origin": "http://evil.example"},
        )
        assert foreign.status_code == 403
        cross_site = await client.post(
            "/dashboard/emergency/on",
            data={**form, "csrf": good},
            headers={"sec-fetch-site": "cross-site", "origin": "null"},
        )
        assert cross_site.status_code == 403
        assert dash.gate.cache.state.emergency is None
        # what a browser sends for our own form under Referrer-Policy: no-referrer
        own = {"origin": "null", "sec-fetch-site": "same-origin"}
        ok = await client.post("/dashboard/emergency/on", data={**form, "csrf": good}, headers=own)
        assert ok.status_code == 303 and dash.gate.cache.state.emergency is not None


async def test_viewer_sees_no_write_forms_and_cannot_post(dash: Dash) -> None:
    async with dash.client() as client:
        await sign_in(client, dash.tokens["grandpa"])
        for path in ("/dashboard", "/dashboard/devices", "/dashboard/decisions"):
            page = await client.get(path)
            assert page.status_code == 200
            actions = re.findall(r'<form method="post" action="([^"]+)"', page.text)
            assert actions == ["/logout"], (path, actions)
        csrf = await csrf_of(client)
        r = await client.post("/dashboard/emergency/on", data={"csrf": csrf, "minutes": "5"})
        assert r.status_code == 403 and "viewer" in r.text
        assert dash.gate.cache.state.emergency is None


async def test_sign_out_ends_the_session(dash: Dash) -> None:
    async with dash.client() as client:
        await sign_in(client, dash.tokens["mom"])
        csrf = await csrf_of(client)
        old = client.cookies["hg_session"]
        assert (await client.post("/logout", data={"csrf": "wrong"})).status_code == 403
        assert (await client.post("/logout", data={"csrf": csrf})).status_code == 303
        client.cookies.set("hg_session", old)  # a stolen cookie is no use after sign-out
        assert (await client.get("/dashboard")).status_code == 303


async def test_revoking_the_token_ends_its_sessions(dash: Dash, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("proxy.admin.dashboard.session.RECHECK", 0.0)
    async with dash.client() as client:
        await sign_in(client, dash.tokens["mom"])
        assert (await client.get("/dashboard")).status_code == 200
        with Db(dash.state_dir) as db:
            admins.revoke(db, "dad", "mom", datetime.now(UTC))
        assert (await client.get("/dashboard")).status_code == 303


async def test_security_headers_and_schema(dash: Dash) -> None:
    async with dash.client() as client:
        page = await client.get("/login")
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "<script>" not in page.text and "style=" not in page.text
        css = await client.get("/dashboard/static/dashboard.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        assert (await client.get("/dashboard/static/../admin.py")).status_code == 404
        paths = (await client.get("/openapi.json")).json()["paths"]
        assert not [p for p in paths if p == "/" or p.startswith(("/dashboard", "/log"))]


async def test_no_open_redirect_after_sign_in(dash: Dash) -> None:
    async with dash.client() as client:
        form = await client.get("/login?next=//evil.example/")
        csrf = CSRF.search(form.text).group(1)  # type: ignore[union-attr]
        r = await client.post(
            "/login",
            data={"csrf": csrf, "token": dash.tokens["mom"], "next": "https://evil.example/"},
        )
        assert r.headers["location"] == "/dashboard"
