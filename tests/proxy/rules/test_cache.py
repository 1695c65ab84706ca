"""The compiled-rules cache: a hit is the very snapshot a full load gives, anything else a miss."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from proxy.rules import cache
from proxy.rules.loader import RulesFileError, load_rules_file

ROOT = Path(__file__).resolve().parents[3]
RULES_FILES = sorted(
    [ROOT / "rules" / "household.yaml", *(ROOT / "rules" / "examples").glob("*.yaml")]
)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    (tmp_path / "state").mkdir()
    return tmp_path / "state"


def hit(path: Path, state: Path) -> object:
    return cache._read(state / cache.CACHE_FILE, cache.cache_key(path.read_bytes()))


@pytest.mark.parametrize("rules", RULES_FILES, ids=lambda p: p.name)
def test_a_hit_is_the_snapshot_a_full_load_gives(rules: Path, state: Path) -> None:
    first = cache.load_rules(rules, state)  # a miss: loaded and written
    cached = hit(rules, state)
    assert cached is not None and cached is not first
    assert cached == first == load_rules_file(rules)
    assert cache.load_rules(rules, state) == first
    assert (state / cache.CACHE_FILE).stat().st_mode & 0o777 == 0o600


def test_an_edited_file_is_loaded_again(tmp_path: Path, state: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nsettings: {timezone: Europe/Berlin}\n")
    assert str(cache.load_rules(rules, state).zone) == "Europe/Berlin"
    rules.write_text("version: 1\nsettings: {timezone: Asia/Tokyo}\n")
    assert str(cache.load_rules(rules, state).zone) == "Asia/Tokyo"


def test_a_broken_file_is_never_cached_and_reports_each_time(tmp_path: Path, state: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nsettings: {mode: sleepy}\n")
    for _ in range(2):
        with pytest.raises(RulesFileError) as err:
            cache.load_rules(rules, state)
        assert f"{rules}:2:" in str(err.value)
    assert not (state / cache.CACHE_FILE).exists()
    with pytest.raises(RulesFileError, match="cannot read the rules file"):
        cache.load_rules(tmp_path / "missing.yaml", state)


def test_no_state_directory_means_no_cache(tmp_path: Path) -> None:
    rules = RULES_FILES[0]
    assert cache.load_rules(rules, tmp_path / "nowhere") == load_rules_file(rules)
    assert not (tmp_path / "nowhere").exists()


class Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, ("touch pwned",)


def test_a_planted_pickle_is_refused(
    tmp_path: Path, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = RULES_FILES[0]
    head = cache.MAGIC + cache.cache_key(rules.read_bytes()) + b"\n"
    target = state / cache.CACHE_FILE
    target.write_bytes(head + pickle.dumps(Evil()))
    target.chmod(0o600)
    monkeypatch.chdir(tmp_path)
    assert cache.load_rules(rules, state) == load_rules_file(rules)
    assert not (tmp_path / "pwned").exists()
    assert hit(rules, state) is not None  # the planted file was replaced by a real one


def test_a_cache_others_may_write_is_not_read(state: Path) -> None:
    rules = RULES_FILES[0]
    cache.load_rules(rules, state)
    target = state / cache.CACHE_FILE
    target.chmod(0o666)
    assert hit(rules, state) is None
    target.chmod(0o600)
    assert hit(rules, state) is not None
    link = state / "elsewhere"
    target.rename(link)
    target.symlink_to(link)
    assert hit(rules, state) is None  # never followed


@pytest.mark.parametrize("cut", [0, 10, 100, -1])
def test_a_truncated_or_foreign_cache_is_a_miss(state: Path, cut: int) -> None:
    rules = RULES_FILES[0]
    cache.load_rules(rules, state)
    target = state / cache.CACHE_FILE
    data = target.read_bytes()
    target.write_bytes(
        data[:cut] if cut >= 0 else data.replace(cache.MAGIC, b"x" * len(cache.MAGIC))
    )
    assert hit(rules, state) is None
    assert cache.load_rules(rules, state) == load_rules_file(rules)
