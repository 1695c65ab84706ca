"""The CLI in process: every subcommand has --help; explain, log, stats and pin hash work."""

from __future__ import annotations

import argparse
import io
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from governance import pins
from proxy.cli import common as cli_common
from proxy.cli.common import local_times, show_times_in
from proxy.cli.main import build_parser, main
from tests.proxy.store.helpers import blocked_request

RULES = """\
version: 1
settings: {timezone: Europe/Berlin}
groups: {kids: {}}
people: {alice: {groups: [kids]}}
devices: {alice-laptop: {person: alice, ips: [192.168.1.50]}}
time_rules:
  - {name: bedtime, start: "21:00", end: "07:00", applies_to: {groups: [kids]}}
policies:
  - {name: no-big-models, when: {groups: [kids], models: ["gpt-4o"]}, action: block}
"""


def subcommands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((*prefix, name))
                found += subcommands(sub, (*prefix, name))
    return found


ALL = subcommands(build_parser())


def test_the_spec_commands_exist() -> None:
    for path in [
        ("run",),
        ("ca",),
        ("rules", "check"),
        ("rules", "show"),
        ("rules", "explain"),
        ("emergency", "on"),
        ("emergency", "extend"),
        ("emergency", "off"),
        ("emergency", "status"),
        ("emergency", "history"),
        ("allow", "add"),
        ("allow", "list"),
        ("allow", "remove"),
        ("unlock",),
        ("override", "create"),
        ("override", "list"),
        ("pin", "hash"),
        ("consent", "request"),
        ("consent", "approve"),
        ("consent", "reject"),
        ("consent", "list"),
        ("log",),
        ("stats",),
    ]:
        assert path in ALL, path


@pytest.mark.parametrize("path", ALL, ids=" ".join)
def test_every_subcommand_has_help(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main([*path, "--help"])
    assert done.value.code == 0
    assert "usage: hearthgate" in capsys.readouterr().out


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "rules.yaml").write_text(RULES)
    monkeypatch.setenv("HEARTHGATE_RULES", str(tmp_path / "rules.yaml"))
    monkeypatch.setenv("HEARTHGATE_STATE_DIR", str(tmp_path / "state"))
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def test_explain_prints_every_stage(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(
        capsys,
        "rules",
        "explain",
        "--device",
        "alice-laptop",
        "--at",
        "2026-11-20T22:30",
        "--model",
        "gpt-4o-mini",
    )
    assert code == 0
    assert "time rules                         block  time rule 'bedtime'" in out
    assert "Fri 2026-11-20 22:30 CET" in out
    code, out = run(
        capsys,
        "rules",
        "explain",
        "--device",
        "alice-laptop",
        "--at",
        "2026-11-20T12:00",
        "--model",
        "gpt-4o",
        "--json",
    )
    data = json.loads(out)
    assert data["decision"] == {
        "stage": "policy",
        "action": "block",
        "reason": "policy 'no-big-models' blocks this request (model gpt-4o)",
    }
    assert [s["stage"] for s in data["stages"]][0] == "emergency"


def test_explain_sees_runtime_state(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "emergency", "on", "--minutes", "60", "--reason", "test", "--as", "mom")
    code, out = run(capsys, "rules", "explain", "--device", "alice-laptop", "--json")
    assert json.loads(out)["decision"]["stage"] == "emergency"


def test_log_and_stats_formats(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from proxy.store.db import Db

    with Db(env / "state") as db:
        blocked_request(db, "r1")
    code, out = run(capsys, "log", "--json", "--device", "alice-laptop", "--blocked")
    assert code == 0 and json.loads(out)[0]["request_id"] == "r1"
    code, out = run(capsys, "log", "--csv")
    assert out.splitlines()[0].startswith("id,ts,request_id") and "r1" in out
    code, out = run(capsys, "stats", "--since", "3650d", "--json")
    assert json.loads(out)["blocked"] == 1
    code, out = run(capsys, "stats", "--since", "3650d")
    assert "1 decisions, 0 allowed, 1 blocked" in out


def test_log_and_stats_by_category(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from proxy.store.db import Db

    with Db(env / "state") as db:
        blocked_request(db, "r1", provider="openai")
        blocked_request(db, "r2", provider="character-ai")
    code, out = run(capsys, "log", "--json", "--category", "companion")
    rows = json.loads(out)
    assert code == 0 and [(r["request_id"], r["category"]) for r in rows] == [("r2", "companion")]
    code, out = run(capsys, "log")
    assert "companion" in out and "api" in out
    code, out = run(capsys, "stats", "--since", "3650d", "--json")
    assert json.loads(out)["by_category"] == {
        "api": {"total": 1, "allowed": 0, "blocked": 1},
        "companion": {"total": 1, "allowed": 0, "blocked": 1},
    }
    code, out = run(capsys, "stats", "--since", "3650d")
    [line] = [x for x in out.splitlines() if x.startswith("by category: ")]
    assert "api 1 (1 blocked)" in line and "companion 1 (1 blocked)" in line


def test_rules_providers_by_category(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "rules", "providers", "--category", "companion", "--json")
    items = json.loads(out)
    assert code == 0 and items and {i["category"] for i in items} == {"companion"}
    assert {"character-ai", "replika"} <= {i["name"] for i in items}
    assert all(i["note"] and i["docs"] and i["display"] for i in items)
    code, out = run(capsys, "rules", "providers")
    assert "vertex-ai" in out and "*-aiplatform.googleapis.com" in out
    with pytest.raises(SystemExit):
        run(capsys, "rules", "providers", "--category", "friends")


def test_refusals_exit_1_with_a_message(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "emergency", "on", "--minutes", "5000", "--reason", "x")
    assert code == 1 and "1 to 1440 minutes" in out
    code, out = run(capsys, "allow", "add", "grandmas-ipad")
    assert code == 1 and "not a device in the rules" in out
    code, out = run(capsys, "unlock", "nobodys-laptop", "--minutes", "5")
    assert code == 1 and "unknown device" in out
    code, out = run(capsys, "override", "create", "no-such-id")
    assert code == 1 and "no request" in out


def test_pin_hash_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("4711\n"))
    code, out = run(capsys, "pin", "hash")
    assert code == 0 and pins.verify_pin("4711", out.strip())
    assert "4711" not in out


def test_run_refuses_a_log_queue_that_holds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    monkeypatch.setenv("HEARTHGATE_LOG_QUEUE", "0")
    assert main(["run", "--rules", str(rules), "--state-dir", str(tmp_path / "var")]) == 2
    assert (
        "HEARTHGATE_LOG_QUEUE must be a whole number of rows, at least 1" in capsys.readouterr().err
    )
    assert not (tmp_path / "var").exists()  # refused before anything was started or created


def test_a_reason_that_looks_like_a_bad_time_is_printed_as_written(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reason = "exam moved to 2026-02-30T10:00Z"
    code, _ = run(capsys, "emergency", "on", "--minutes", "30", "--reason", reason, "--as", "mom")
    assert code == 0
    code, out = run(capsys, "emergency", "status")
    assert code == 0 and reason in out


def test_text_output_shows_times_in_the_rules_zone(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(capsys, "emergency", "on", "--minutes", "60", "--reason", "exam", "--as", "mom")
    assert code == 0
    code, out = run(capsys, "emergency", "status", "--json")
    until = datetime.fromisoformat(json.loads(out)["until"])
    assert until.utcoffset() == timedelta(0)  # JSON stays UTC
    code, out = run(capsys, "emergency", "status")
    local = until.astimezone(ZoneInfo("Europe/Berlin"))
    assert local.strftime("%Y-%m-%d %H:%M:%S %Z") in out  # the rules say Europe/Berlin
    assert not re.search(r"\d\d:\d\d(:\d\d)?(\.\d+)?Z", out)  # no UTC stamp left
    code, out = run(capsys, "emergency", "history")
    assert local.strftime("%Y-%m-%d %H:%M:%S %Z") in out


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("until 2026-11-22T21:30:05.123Z.", "until 2026-11-22 22:30:05 CET."),
        ("2026-07-01T10:00:00+00:00", "2026-07-01 12:00:00 CEST"),  # summer time
        ("2026-03-29T01:00Z", "2026-03-29 03:00:00 CEST"),  # the hour the clocks skip
        ("2026-11-22T21:30:05+01:00", "2026-11-22T21:30:05+01:00"),  # not UTC: left alone
        ("request 2026-11-22T21:30:05Zx", "request 2026-11-22T21:30:05Zx"),  # part of a word
        # shaped like a time but not one (a reason or a model name can say anything)
        ("moved to 2026-02-30T10:00Z", "moved to 2026-02-30T10:00Z"),
        ("2026-11-22T24:00Z", "2026-11-22T24:00Z"),
        ("2026-11-22T23:59:60Z", "2026-11-22T23:59:60Z"),
        ("9999-12-31T23:30:00Z", "9999-12-31T23:30:00Z"),  # past year 9999 in Berlin
        ("٢٠٢٦-١١-٢٢T10:00Z", "٢٠٢٦-١١-٢٢T10:00Z"),
    ],
)
def test_local_times(text: str, shown: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_common, "_display_zone", [])
    show_times_in(ZoneInfo("Europe/Berlin"))
    assert local_times(text) == shown


def test_explain_in_local_time_unknown_device_and_no_unlock_in_the_past(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(capsys, "rules", "explain", "--device", "alice-laptop")
    assert code == 0 and re.search(r"at \w{3} \d{4}-\d\d-\d\d \d\d:\d\d CE[S]?T ->", out)
    code, out = run(capsys, "rules", "explain", "--device", "alices-phone")
    assert code == 1 and "neither a device in the rules nor an IP" in out
    assert "alice-laptop" in out  # says which devices there are
    run(capsys, "unlock", "alice-laptop", "--minutes", "60", "--as", "mom")
    code, out = run(capsys, "rules", "explain", "--device", "alice-laptop", "--json")
    assert json.loads(out)["decision"]["stage"] == "override"
    code, out = run(
        capsys, "rules", "explain", "--device", "alice-laptop", "--at", "2026-11-20T22:30"
    )
    assert "decision: block (time_rule)" in out  # today's unlock did not exist then


def test_stats_text_in_local_time(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "stats", "--since", "2026-11-20T10:00")
    assert code == 0 and out.splitlines()[0] == "since 2026-11-20 10:00:00 CET"
    assert "None" not in out  # no decisions: no decision time to print


def test_rules_check_reports_schema_and_reference_problems_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\n"
        "settings: {mode: watch}\n"
        "groups: {kids: {}}\n"
        "people: {alice: {groups: [kid]}}\n"
        "devices: {alice-laptop: {person: alice, ips: [999.1.1.1]}, pc: {person: bob}}\n"
        "time_rules:\n"
        '  - {name: bedtime, start: "25:00", end: "07:00"}\n'
        '  - {name: school, start: "08:00", end: "13:00", applies_to: {people: [charlie]}}\n'
        "policies:\n"
        "  - {name: p2, when: {groups: [teenz]}}\n"
    )
    code, out = run(capsys, "rules", "check", str(bad))
    assert code == 2
    lines = [line for line in out.splitlines() if line.startswith(str(bad) + ":")]
    for expected in (
        ":2:",  # the mode
        "unknown group 'kid'",
        "999.1.1.1",
        "unknown person 'bob'",
        "'25:00'",
        "unknown person 'charlie'",
        "unknown group 'teenz'",
    ):
        assert any(expected in line for line in lines), expected
    assert ":10:" in next(line for line in lines if "teenz" in line)  # its own line


def test_report_for_a_week(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "report", "--week", "2026-11-20", "--json")
    data = json.loads(out)
    assert code == 0 and data["week"] == {"start": "2026-11-16", "end": "2026-11-22"}
    assert [p["person"] for p in data["people"]] == ["alice"]
    code, out = run(capsys, "report", "--week", "--person", "alice")
    assert code == 0 and "requests: 0 (week before 0, 0)" in out
    code, out = run(capsys, "report", "--person", "charlie")
    assert code == 1 and "no person 'charlie'" in out
    code, out = run(capsys, "report", "--week", "someday")
    assert code == 1 and "like 2026-11-20" in out
