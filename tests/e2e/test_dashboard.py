"""The dashboard in a real headless browser (Debian's chromium, driven by Playwright) against
the real ``hearthgate run``: sign in, watch a proxied request appear, switch the emergency
override on and off, approve another parent's request, and a viewer's read-only pages.

Every page is checked at a phone's width (390 x 844: no horizontal scrolling) and saved as a
screenshot in test-artifacts/dashboard/. Without chromium (or the playwright package) these
tests skip on a developer's machine and fail in CI (CI=true); tools/ensure-browser installs
chromium. Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.e2e.conftest import KID, ROOT, Gate, cli, start_gate, window_around_now

pytestmark = pytest.mark.e2e
CHROMIUM = os.environ.get("HEARTHGATE_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = ROOT / "test-artifacts" / "dashboard"
PHONE = {"width": 390, "height": 844}
BOB = "127.0.0.4"  # a second kid's tablet, for the consent test
CHAT = [{"role": "user", "content": "hi"}]


def rules_text() -> str:
    start, end = window_around_now()
    return f"""\
version: 1
settings: {{timezone: UTC}}
groups: {{parents: {{}}, kids: {{}}}}
people:
  alice: {{groups: [kids]}}
  bob: {{groups: [kids]}}
  mom: {{groups: [parents]}}
devices:
  alice-laptop: {{person: alice, ips: [{KID}]}}
  bob-tablet: {{person: bob, ips: [{BOB}]}}
time_rules:
  - {{name: bedtime, start: "{start}", end: "{end}", applies_to: {{groups: [kids]}}}}
policies:
  - name: kids-allowance
    when: {{groups: [kids]}}
    action: allow
    quota: {{per: person, requests_per_day: 50, minutes_per_day: 60}}
consent: {{approvers: 1, actions: [unlock]}}
"""


def need_browser() -> Any:
    """Playwright's sync API, or skip (a developer's machine) / fail (CI) saying why."""
    reason = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "the playwright package is missing: pip install -e '.[test]'"
    if reason is None and not os.access(CHROMIUM, os.X_OK):
        reason = f"no chromium at {CHROMIUM}: run tools/ensure-browser (as root) to install it"
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run in CI: {reason}")
        pytest.skip(reason)
    return sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright = need_browser()
    with sync_playwright() as pw:
        # launch() gives every run a new, empty profile directory
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, pki, fake_llm) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("dashboard")
    proc = start_gate(tmp, rules_text(), pki, fake_llm)
    gate = Gate(proc, tmp / "state", tmp / "household.yaml", pki)
    tokens = {}
    for name, role in (("mom", "parent"), ("dad", "parent"), ("grandpa", "viewer")):
        out = cli(gate, "admin", "add", name, "--role", role, "--as", "setup")
        tokens[name] = re.search(r"hg_\S+", out).group(0)  # type: ignore[union-attr]
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield {"gate": gate, **tokens}
    proc.stop()


def open_as(browser: Any, site: dict[str, Any], who: str) -> Any:
    """A new browser context (its own cookies) at phone size, signed in as ``who``."""
    context = browser.new_context(viewport=PHONE, base_url=site["gate"].admin_url)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto("/login")
    page.get_by_label("Admin token").fill(site[who])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard")
    return page


def follow(page: Any, target: Any) -> None:
    """Click a link or a form's button and wait for the page it leads to (a click alone
    returns before the navigation, and the next read would see the old page or none)."""
    with page.expect_navigation():
        target.click()


def look(page: Any, name: str) -> None:
    """The page fits a phone's width; save what it looks like."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + 2, f"{name}: {width}px wide, scrolls sideways at 390px"
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def kid_asks(gate: Gate, source: str = KID) -> Any:
    return gate.openai(source).chat.completions.create(model="gpt-4o-mini", messages=CHAT)


def test_sign_in_and_see_a_proxied_decision(browser: Any, site: dict[str, Any]) -> None:
    gate: Gate = site["gate"]
    with pytest.raises(openai.PermissionDeniedError):
        kid_asks(gate)
    request_id = gate.rows("device = 'alice-laptop'")[-1]["request_id"]

    context = browser.new_context(viewport=PHONE, base_url=gate.admin_url)
    page = context.new_page()
    page.goto("/")
    page.wait_for_url("**/login?next=*")
    page.get_by_label("Admin token").fill("hg_12345678_wrong")
    page.get_by_role("button", name="Sign in").click()
    assert "not valid" in page.locator(".flash.error").inner_text()
    look(page, "01-login-refused")
    context.close()

    page = open_as(browser, site, "mom")
    assert "Emergency override is off" in page.inner_text("main")
    assert page.locator("svg.chart").count() == 1 and page.locator("svg.meter").count() == 4
    look(page, "02-home")
    follow(page, page.get_by_role("link", name="Decisions"))
    row = page.locator("tr", has_text=request_id)
    assert "bedtime" in row.inner_text() and "blocked" in row.inner_text()
    look(page, "03-decisions")
    page.goto("/dashboard/rules?device=alice-laptop&model=gpt-4o")
    assert "time_rule · bedtime" in page.locator(".verdict").inner_text()
    look(page, "04-rules")
    page.context.close()


def test_emergency_override_takes_effect(browser: Any, site: dict[str, Any]) -> None:
    gate: Gate = site["gate"]
    page = open_as(browser, site, "mom")
    page.get_by_role("spinbutton", name="Minutes").fill("30")
    page.get_by_label("Reason").fill("school trip <translation>")
    follow(page, page.get_by_role("button", name="Switch emergency override on"))
    assert "Emergency override is ON" in page.inner_text("main")
    assert "school trip <translation>" in page.inner_text("main")
    look(page, "05-emergency-on")
    assert kid_asks(gate).choices  # the very next request goes through

    follow(page, page.get_by_role("button", name="Switch off"))
    assert "the rules apply again" in page.locator(".flash.ok").inner_text()
    with pytest.raises(openai.PermissionDeniedError):
        kid_asks(gate)
    page.context.close()


def test_second_parent_approves_an_unlock(browser: Any, site: dict[str, Any]) -> None:
    gate: Gate = site["gate"]
    with pytest.raises(openai.PermissionDeniedError):
        kid_asks(gate, BOB)
    mom = open_as(browser, site, "mom")
    follow(mom, mom.get_by_role("link", name="Devices & people"))
    look(mom, "06-devices")
    follow(mom, mom.locator("tr", has_text="bob-tablet").get_by_role("button", name="Unlock"))
    assert "Waiting for approval" in mom.locator(".flash.info").inner_text()
    with pytest.raises(openai.PermissionDeniedError):
        kid_asks(gate, BOB)  # not yet

    dad = open_as(browser, site, "dad")
    waiting = dad.locator(".item", has_text="unlock bob-tablet for 30 minutes")
    look(dad, "07-approval-waiting")
    follow(dad, waiting.get_by_role("button", name="Approve"))
    assert "the change is in force" in dad.locator(".flash.ok").inner_text()
    assert "bob-tablet" in dad.locator("section", has_text="Unlocked devices").inner_text()
    assert kid_asks(gate, BOB).choices
    mom.context.close()
    dad.context.close()


def test_viewer_sees_no_write_forms(browser: Any, site: dict[str, Any]) -> None:
    page = open_as(browser, site, "grandpa")
    for path in ("/dashboard", "/dashboard/decisions", "/dashboard/devices", "/dashboard/rules"):
        page.goto(path)
        forms = page.locator("form[method=post]")
        assert forms.count() == 1 and forms.get_attribute("action") == "/logout", path
    page.goto("/dashboard/devices")
    assert page.get_by_role("button", name="Unlock").count() == 0
    look(page, "08-viewer-devices")
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    refused = page.request.post(
        "/dashboard/emergency/on", form={"csrf": csrf, "minutes": "5", "reason": "sneaky"}
    )
    assert refused.status == 403
    page.context.close()


def test_people_cards_pause_extra_time_and_the_report(browser: Any, site: dict[str, Any]) -> None:
    gate: Gate = site["gate"]
    page = open_as(browser, site, "mom")
    alice = page.locator("#person-alice")
    assert "Blocked by “bedtime” until" in alice.locator(".now").inner_text()
    assert "minutes" in alice.inner_text() and "requests" in alice.inner_text()
    look(page, "09-home-people")

    follow(page, alice.get_by_role("button", name="Pause 1 h"))
    assert "alice is paused until" in page.locator(".flash.ok").inner_text()
    assert page.locator("#person-alice .now").inner_text().startswith("Paused until")
    with pytest.raises(openai.PermissionDeniedError) as info:
        kid_asks(gate)
    assert "paused" in str(info.value)
    look(page, "10-paused")
    follow(page, page.locator("#person-alice").get_by_role("button", name="Resume now"))
    assert "no longer paused" in page.locator(".flash.ok").inner_text()
    assert "bedtime" in page.locator("#person-alice .now").inner_text()

    follow(page, page.locator("#person-alice").get_by_role("button", name="+30 minutes"))
    assert "alice has 30 minutes more today" in page.locator(".flash.ok").inner_text()
    assert "of 90 minutes today (+30 extra today)" in page.locator("#person-alice").inner_text()
    look(page, "11-extra-time")

    follow(page, page.get_by_role("link", name="Report"))
    main = page.inner_text("main")
    assert "alice" in main and "bob" in main and "Blocked" in main
    report = page.locator("section", has=page.get_by_role("heading", name="alice", exact=True))
    assert "bedtime" in report.inner_text()
    look(page, "12-report")
    follow(page, page.get_by_role("link", name="Rules"))
    assert "Bedtime for kids: every day" in page.inner_text("main")
    look(page, "13-rules-in-words")
    page.context.close()
