"""The dashboard's pure parts: escaping by default, SVG charts, and who a quota covers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from governance.schema import Rules
from governance.snapshot import compile_rules
from governance.state import RuntimeState, UsageCount
from proxy.admin.dashboard import charts
from proxy.admin.dashboard.data import Counts, quota_bars, redacted_rules
from proxy.admin.dashboard.html import Html, esc, h, table

NOW = datetime(2030, 1, 9, 15, 30, tzinfo=UTC)  # a Wednesday


def test_everything_is_escaped_unless_it_is_markup() -> None:
    assert h("<p>{}</p>", "<b>&'\"") == "<p>&lt;b&gt;&amp;&#x27;&quot;</p>"
    assert h("<p>{}</p>", Html("<b>ok</b>")) == "<p><b>ok</b></p>"
    assert h('<a title="{t}">', t='" onmouseover="x') == '<a title="&quot; onmouseover=&quot;x">'
    joined = Html("<i>") + "<script>" + Html("</i>")
    assert joined == "<i>&lt;script&gt;</i>" and isinstance(joined, Html)
    assert "<x>" + Html("<br>") == "&lt;x&gt;<br>"
    assert esc(None) == "" and esc(3) == "3"


def test_table_labels_each_cell_for_phones() -> None:
    out = table(("Device", "Why"), [("<d>", Html("<b>r</b>"))])
    assert '<td data-label="Device"><div>&lt;d&gt;</div></td>' in out
    assert '<td data-label="Why"><div><b>r</b></div></td>' in out
    assert "Nothing yet" in table(("A",), [])


@pytest.mark.parametrize(("value", "top"), [(0, 1), (1, 1), (3, 5), (7, 10), (11, 20), (450, 500)])
def test_axis_tops_are_round(value: int, top: int) -> None:
    assert charts.nice_max(value) == top


def test_hourly_chart_stacks_blocked_on_allowed() -> None:
    hours = [(NOW - timedelta(hours=23 - i), Counts()) for i in range(24)]
    hours[-1] = (hours[-1][0], Counts(total=10, allowed=6))
    svg = charts.hourly_chart(hours, UTC)
    assert svg.startswith('<svg class="chart" viewBox="0 0 360 170"')
    assert 'aria-label="Requests per hour, last 24 hours: 10 in all, 4 blocked"' in svg
    assert svg.count("<title>15:00 6 allowed, 4 blocked</title>") == 2  # two stacked bars
    assert "style=" not in svg  # the CSP allows no inline styles


def test_meter_colour_follows_the_share_used() -> None:
    assert charts.ALLOWED in charts.meter(10, 100, "x")
    assert "#b7791f" in charts.meter(90, 100, "x")
    assert charts.BLOCKED in charts.meter(150, 100, "x")
    assert 'width="360.0"' in charts.meter(150, 100, "x")  # capped at the full width


def test_quota_bars_cover_the_people_and_devices_the_policy_names() -> None:
    snap = compile_rules(
        Rules.model_validate(
            {
                "version": 1,
                "groups": {"kids": {}},
                "people": {"alice": {"groups": ["kids"]}, "mom": {}},
                "devices": {"tv": {"groups": ["kids"]}, "mom-phone": {"person": "mom"}},
                "overrides": {},
                "notifications": [{"url": "https://ntfy.sh/x", "token": "secret"}],
                "policies": [
                    {
                        "name": "kids",
                        "when": {"groups": ["kids"]},
                        "quota": {"per": "person", "requests_per_day": 20},
                    },
                    {
                        "name": "tv",
                        "when": {"devices": ["tv"]},
                        "quota": {"per": "device", "tokens_per_week": 900},
                    },
                ],
            }
        )
    )
    usage = {"person:alice": UsageCount(NOW.date(), requests=5, week_tokens=1)}
    usage["device:tv"] = UsageCount(NOW.date() - timedelta(days=1), requests=9, week_tokens=300)
    bars = quota_bars(snap, RuntimeState(usage=usage), NOW)
    got = [(b.who, b.policy, b.what, b.used, b.limit) for b in bars]
    assert got == [
        ("alice", "kids", "requests today", 5, 20),
        ("device tv", "tv", "tokens this week", 300, 900),  # yesterday counts in the week
    ]
    assert redacted_rules(snap.rules)["notifications"][0]["token"] == "(set; hidden)"
