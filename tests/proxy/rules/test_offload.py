"""The running gate's rules load: compiled by a child process into the cache, read back
without pydantic; a broken file is the same RulesFileError; anything else loads in process."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from proxy.rules import cache, offload
from proxy.rules.loader import load_rules_file
from proxy.rules.problems import RulesFileError
from tests.proxy.rules.test_cache import RULES_FILES, plain, probe

BROKEN = "version: 1\npolicies:\n  - {name: p, when: {groups: [nobody]}, action: blok}\n"


@pytest.fixture
def state(tmp_path: Path) -> Path:
    (tmp_path / "state").mkdir()
    return tmp_path / "state"


@pytest.mark.parametrize("rules", RULES_FILES[:3], ids=lambda p: p.name)
def test_a_miss_is_compiled_by_a_child_into_the_cache(rules: Path, state: Path) -> None:
    snap, raw = offload.load_for_gate(rules, state)
    assert raw == rules.read_bytes()
    assert isinstance(snap.rules, cache.Record)  # read back from the cache the child wrote
    assert (state / cache.CACHE_FILE).exists()
    assert plain(snap) == plain(load_rules_file(rules))
    again, _ = offload.load_for_gate(rules, state)
    assert plain(again) == plain(snap)


def test_the_gate_process_never_loads_pydantic_for_its_rules(tmp_path: Path, state: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nsettings: {timezone: Europe/Berlin}\n")
    zones, loaded = probe(
        "from proxy.rules.offload import load_for_gate\n"
        f"rules, state = Path({str(rules)!r}), Path({str(state)!r})\n"
        "first = load_for_gate(rules, state)[0]\n"  # a miss: the child compiles
        "rules.write_text('version: 1\\nsettings: {timezone: Asia/Tokyo}\\n')\n"
        "second = load_for_gate(rules, state)[0]\n"  # an edit: the child again
        "print(first.zone, second.zone)\n"
    )
    assert zones == "Europe/Berlin Asia/Tokyo"
    assert loaded == "[]"


def test_a_broken_file_raises_what_a_full_load_raises(tmp_path: Path, state: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(BROKEN)
    with pytest.raises(RulesFileError) as in_process:
        load_rules_file(rules)
    with pytest.raises(RulesFileError) as offloaded:
        offload.load_for_gate(rules, state)
    assert str(offloaded.value) == str(in_process.value)
    assert "blok" in str(offloaded.value)
    assert offloaded.value.file_problems == in_process.value.file_problems
    assert not (state / cache.CACHE_FILE).exists()  # a failed load is never cached


def test_a_missing_file_says_so(tmp_path: Path, state: Path) -> None:
    with pytest.raises(RulesFileError) as exc:
        offload.load_for_gate(tmp_path / "nowhere.yaml", state)
    assert "nowhere.yaml" in str(exc.value)


def test_a_state_dir_that_cannot_hold_the_cache_loads_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    children = []
    run = offload.subprocess.run
    monkeypatch.setattr(
        offload.subprocess, "run", lambda *a, **k: children.append(a) or run(*a, **k)
    )
    for _ in range(2):
        snap, _ = offload.load_for_gate(RULES_FILES[0], tmp_path / "missing")
        assert not isinstance(snap.rules, cache.Record)
        assert plain(snap) == plain(load_rules_file(RULES_FILES[0]))
    assert len(children) == 1  # the child is not asked again where it cannot write


def test_without_a_state_dir_or_when_the_child_fails_it_loads_in_process(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snap, _ = offload.load_for_gate(RULES_FILES[0], None)
    assert not isinstance(snap.rules, cache.Record)
    monkeypatch.setattr(sys, "executable", str(state / "no-such-python"))
    snap, _ = offload.load_for_gate(RULES_FILES[0], state)
    assert not isinstance(snap.rules, cache.Record)
    assert not (state / cache.CACHE_FILE).exists()


def test_a_child_writing_something_else_is_not_trusted(
    tmp_path: Path, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a child that claims problems but writes no valid list: the gate reads the file itself
    fake = tmp_path / "fake-python"
    fake.write_text("#!/bin/sh\ncat >/dev/null\necho 'not json'\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    snap, _ = offload.load_for_gate(RULES_FILES[0], state)
    assert plain(snap) == plain(load_rules_file(RULES_FILES[0]))


def test_models_of_a_cached_snapshot_are_the_rules_models(state: Path) -> None:
    rules = RULES_FILES[0]
    snap, raw = offload.load_for_gate(rules, state)
    models = offload.models_of(snap, raw, str(rules))
    assert models == load_rules_file(rules).rules
    assert models.model_dump(mode="json")["version"] == 1
    direct = load_rules_file(rules)
    assert offload.models_of(direct, b"", str(rules)) is direct.rules


def test_what_the_running_gate_reads_from_its_rules_works_on_a_cached_snapshot(
    tmp_path: Path, state: Path
) -> None:
    # the rules' consumers in the gate read fields, never the models' methods: the weekly
    # report's schedule, its targets, the service catalog
    from datetime import UTC, datetime

    from proxy.catalog.services import catalog_for
    from proxy.reports import schedule
    from tests.governance.helpers import BASE

    rules = tmp_path / "rules.yaml"
    rules.write_text(
        textwrap.dedent(BASE)
        + "reports: {weekly: {day: sat, at: '09:30'}}\n"
        + "notifications: [{url: 'https://ntfy.example/kids', 'on': [report]}]\n"
    )
    cached, _ = offload.load_for_gate(rules, state)
    direct = load_rules_file(rules)
    assert isinstance(cached.rules, cache.Record)
    saturday = datetime(2026, 11, 21, 8, 31, tzinfo=UTC)
    for snap in (cached, direct):
        assert schedule.due_week(snap, saturday, None) is not None
        assert [t.url for t in schedule.targets(snap)] == ["https://ntfy.example/kids"]
    assert catalog_for(cached).providers == catalog_for(direct).providers
