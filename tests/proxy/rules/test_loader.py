from __future__ import annotations

import json
from pathlib import Path

import pytest

from proxy.cli import rules as cli_rules
from proxy.cli.main import main as cli_main
from proxy.cli.rules import schema_document
from proxy.rules.loader import RulesFileError, load_rules_file, load_rules_text

ROOT = Path(__file__).resolve().parents[3]
GOOD = """\
version: 1
settings: {timezone: Europe/Berlin}
groups: {kids: {}}
people: {alice: {groups: [kids]}}
devices:
  alice-laptop: {person: alice, ips: [192.168.1.50], macs: ["AA-BB-CC-DD-EE-01"]}
time_rules:
  - {name: bedtime, start: "21:00", end: "07:00", applies_to: {groups: [kids]}}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(RulesFileError) as info:
        load_rules_text(text, "house.yaml")
    return [str(p) for p in info.value.file_problems]


def test_good_file_compiles_with_normalised_identifiers() -> None:
    snap = load_rules_text(GOOD)
    assert snap.device_by_mac == {"aa:bb:cc:dd:ee:01": "alice-laptop"}
    assert snap.devices["alice-laptop"].groups == {"kids"}


@pytest.mark.parametrize("path", sorted((ROOT / "rules").rglob("*.yaml")), ids=lambda p: p.name)
def test_shipped_rules_files_are_valid(path: Path) -> None:
    load_rules_file(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "house.yaml:1:1: the rules file is empty"),
        ("# only a comment\n", "house.yaml:1:1: the rules file is empty"),
        ("version: 1\nsettings: [\n", "house.yaml:3:1: not valid YAML"),
        ("- just\n- a list\n", "house.yaml:1:1: the rules file must be a mapping"),
        ("version: 1\nsetings: {}\n", "house.yaml:2:1: setings: unknown key 'setings'"),
        ("version: 1\nGroups: {}\n", "house.yaml:2:1: Groups: unknown key 'Groups'"),
        ("version: 1\ngroups: {kids: {descriptio: x}}\n", "groups.kids.descriptio: unknown key"),
        ("version: 2\n", "house.yaml:1:10: version: Input should be 1"),
        ("settings: {}\n", "version' is required"),
        ("version: 1\nsettings: {timezone: Mars/Olympus}\n", "unknown time zone 'Mars/Olympus'"),
        (
            "version: 1\nsettings: {mode: sometimes}\n",
            "house.yaml:2:18: settings.mode: Input should be 'enforce' or 'observe'",
        ),
        ("version: 1\ndevices: {tv: {ips: [300.1.1.1]}}\n", "'300.1.1.1' is not an IP address"),
        ("version: 1\ndevices: {tv: {macs: [zz]}}\n", "'zz' is not a MAC address"),
        (
            "version: 1\ngroups: {kids: {}}\ngroups: {x: {}}\n",
            "house.yaml:3:1: 'groups' appears twice here",
        ),
        (
            "version: 1\ntime_rules: [{name: a, start: '25:00', end: '07:00'}]\n",
            'expected a time like "21:00"',
        ),
        (
            "version: 1\npeople: {bob: {groups: [kid]}}\ngroups: {kids: {}}\n",
            "house.yaml:2:25: people.bob.groups.0: unknown group 'kid'; defined groups: kids",
        ),
        ("version: 1\ndevices: {tv: {person: nobody}}\n", "unknown person 'nobody'"),
        ("version: 1\noverrides: {master_pin: '1234'}\n", "must be a hash made by"),
        ("version: 1\npolicies: [{name: p, when: {prompt: {regex: ['(']}}}]\n", "does not compile"),
        (
            "version: 1\nallowlist: [{device: a, mac: 'aa:bb:cc:dd:ee:ff'}]\n",
            "exactly one of device, cidr, ip, mac, user",
        ),
        (
            "version: 1\ntime_rules: [{name: a, start: '1:00', end: '2:00'}, "
            "{name: a, start: '01:00', end: '02:00'}]\n",
            "used twice",
        ),
    ],
)
def test_each_kind_of_bad_file_names_line_and_column(text: str, expected: str) -> None:
    found = problems(text)
    assert any(expected in p for p in found), found


def test_unquoted_times_are_read_as_clock_times() -> None:
    snap = load_rules_text("version: 1\ntime_rules: [{name: a, start: 21:00, end: 07:00}]\n")
    assert snap.time_rules[0].start.hour == 21 and snap.time_rules[0].end.hour == 7


def test_not_utf8_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"version: 1\n\xff\xfe")
    with pytest.raises(RulesFileError, match="not UTF-8"):
        load_rules_file(bad)
    with pytest.raises(RulesFileError, match="cannot read"):
        load_rules_file(tmp_path / "missing.yaml")


def test_rules_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(GOOD)
    bad.write_text("version: 1\nsetings: {}\n")
    assert cli_main(["rules", "check", str(good)]) == 0
    assert "ok" in capsys.readouterr().out
    assert cli_main(["rules", "check", str(bad)]) == 2
    assert f"{bad}:2:1:" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["rules/schema.json", "proxy/rules/schema.json"])
def test_committed_schema_json_is_current(where: str) -> None:
    committed = json.loads((ROOT / where).read_text())
    assert committed == json.loads(json.dumps(schema_document())), (
        f"{where} is stale: run `make schema`"
    )


def test_rules_schema_prints_the_packaged_copy_only_while_its_sources_are_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    packaged = tmp_path / "schema.json"
    packaged.write_text('{"stamped": "' + cli_rules.schema_stamp() + '"}\n')
    monkeypatch.setattr(cli_rules, "PACKAGED_SCHEMA", packaged)
    assert cli_main(["rules", "schema"]) == 0
    assert json.loads(capsys.readouterr().out) == {"stamped": cli_rules.schema_stamp()}
    packaged.write_text('{"stamped": "sources sha256:0123"}\n')  # made from other sources
    assert cli_main(["rules", "schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(schema_document()))
    packaged.unlink()
    assert cli_main(["rules", "schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "hearthgate rules file"
