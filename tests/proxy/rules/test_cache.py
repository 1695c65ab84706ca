"""The compiled-rules cache: a hit is the very snapshot a full load gives, anything else a miss."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import pickle
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from pydantic import BaseModel

from governance.snapshot import Snapshot
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


def hit(path: Path, state: Path) -> Snapshot | None:
    return cache.read_cache(state / cache.CACHE_FILE, cache.cache_key(path.read_bytes()))


def plain(value: Any) -> Any:
    """A snapshot as nested data: a pydantic model and its cache Record look the same."""
    if isinstance(value, BaseModel):
        return (type(value).__name__, {k: plain(v) for k, v in value.__dict__.items()})
    if isinstance(value, cache.Record):
        return (value._model, {k: plain(v) for k, v in value._fields.items()})
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return (type(value).__name__, fields)
    if isinstance(value, dict | MappingProxyType):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, frozenset | set):
        return frozenset(plain(v) for v in value)
    return value


@pytest.mark.parametrize("rules", RULES_FILES, ids=lambda p: p.name)
def test_a_hit_holds_what_a_full_load_gives(rules: Path, state: Path) -> None:
    first = cache.load_rules(rules, state)  # a miss: loaded and written
    cached = hit(rules, state)
    assert cached is not None and cached is not first
    assert plain(cached) == plain(first) == plain(load_rules_file(rules))
    assert isinstance(cached.rules, cache.Record)  # no pydantic model in the cache
    assert cached.rules.settings.timezone == first.rules.settings.timezone
    assert cached.version == first.version and cached.zone == first.zone
    assert (state / cache.CACHE_FILE).stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("rules", RULES_FILES, ids=lambda p: p.name)
def test_a_hit_decides_as_a_full_load(rules: Path, state: Path) -> None:
    from governance.state import EMPTY_STATE
    from proxy.rules import explain

    fresh = cache.load_rules(rules, state)
    cached = hit(rules, state)
    assert cached is not None
    prompts = [None, "my email is kid@example.com, call 0151 2345678", "how do I cheat " * 300]
    for device in [*fresh.devices, "192.168.1.250"]:
        for hour in (3, 12, 21, 23):
            at = datetime(2026, 11, 20, hour, 30, tzinfo=fresh.zone)
            for model, prompt in itertools.product(("gpt-4o", "gpt-4o-mini", None), prompts):
                decided = []
                for snap in (fresh, cached):
                    facts = explain.hypothetical(
                        snap, device, "api.openai.com", model, prompt, "chat", None
                    )
                    steps = explain.explain(snap, EMPTY_STATE, facts, at)
                    final = explain.evaluate(snap, EMPTY_STATE, facts, at)
                    decided.append((steps, final.stage, final.action, final.reason, final.rule))
                assert decided[0] == decided[1], (device, hour, model, prompt)


def probe(code: str) -> list[str]:
    """The lines ``code`` prints in a fresh interpreter (``Path`` imported), and last the
    pydantic and PyYAML modules it loaded."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom pathlib import Path\n"
            + code
            + "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'yaml')))\n",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_reading_the_cache_loads_neither_pydantic_nor_yaml(state: Path) -> None:
    rules = RULES_FILES[0]
    cache.load_rules(rules, state)
    zone, loaded = probe(
        "from proxy.rules.cache import load_rules\n"
        f"snap = load_rules({str(rules)!r}, Path({str(state)!r}))\n"
        "print(snap.rules.settings.timezone, snap.version)\n"
    )
    assert zone.split()[1] == load_rules_file(rules).version
    assert loaded == "[]"


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
    assert plain(cache.load_rules(rules, tmp_path / "nowhere")) == plain(load_rules_file(rules))
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
    assert plain(cache.load_rules(rules, state)) == plain(load_rules_file(rules))
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
    assert plain(cache.load_rules(rules, state)) == plain(load_rules_file(rules))


def test_the_key_follows_the_loader_and_the_libraries_that_shape_a_snapshot() -> None:
    stamp = cache._code_stamp()
    for part in ("governance/schema.py", "proxy/rules/loader.py", "pydantic", "yaml"):
        assert part in stamp
    assert "confusable_homoglyphs" in stamp


# ---- rules show's document, kept beside the cache ---------------------------------------


@pytest.mark.parametrize("rules", RULES_FILES, ids=lambda p: p.name)
def test_rules_show_reads_the_dump_a_full_load_gives(rules: Path, state: Path) -> None:
    fresh = load_rules_file(rules).rules.model_dump(mode="json")
    assert cache.load_shown(rules, state) == fresh  # a miss: loaded, both files written
    assert (state / cache.SHOWN_FILE).stat().st_mode & 0o777 == 0o600
    assert cache.load_shown(rules, state) == fresh  # a hit
    shown, loaded = probe(
        "import json\nfrom proxy.rules.cache import load_shown\n"
        f"print(json.dumps(load_shown({str(rules)!r}, Path({str(state)!r}))))\n"
    )
    assert json.loads(shown) == fresh
    assert loaded == "[]"  # neither pydantic nor yaml


def test_rules_show_never_prints_a_dump_of_other_bytes(tmp_path: Path, state: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nsettings: {timezone: Europe/Berlin}\n")
    assert cache.load_shown(rules, state)["settings"]["timezone"] == "Europe/Berlin"
    rules.write_text("version: 1\nsettings: {timezone: Asia/Tokyo}\n")
    assert cache.load_shown(rules, state)["settings"]["timezone"] == "Asia/Tokyo"
    target = state / cache.SHOWN_FILE
    data = target.read_bytes()
    for planted in (data[:-5], data.replace(b"Asia/Tokyo", b"Asia/Seoul")[:40] + b"{"):
        target.write_bytes(planted)  # cut short, or not JSON: loaded again
        assert cache.load_shown(rules, state)["settings"]["timezone"] == "Asia/Tokyo"
    target.chmod(0o666)  # others may write to it: not read
    target.write_bytes(data.replace(b"Asia/Tokyo", b"Asia/Seoul"))
    assert cache.load_shown(rules, state)["settings"]["timezone"] == "Asia/Tokyo"
    rules.write_text("version: 1\nsetings: {}\n")
    with pytest.raises(RulesFileError):
        cache.load_shown(rules, state)
    with pytest.raises(RulesFileError, match="cannot read the rules file"):
        cache.load_shown(tmp_path / "missing.yaml", state)
