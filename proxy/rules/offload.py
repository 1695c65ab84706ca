"""The running gate's rules load: compiled in a child process, read back from the cache.

Validating a rules file takes PyYAML, pydantic and the schema's twenty models: about 10 MiB
that a long-running gate would carry for good after its first load, on a box where memory is
what there is least of. So the gate reads its snapshot from the cache (``cache.py``, about a
millisecond and no pydantic) when the cache holds the file's bytes, and otherwise hands the
bytes to ``python -m proxy.rules.offload`` on stdin: the child validates and compiles them,
writes the cache and exits, and the gate reads the cache. A file with problems is reported
by the child as JSON and raised here as the same ``RulesFileError``.

Whatever else goes wrong (no state directory, a cache that cannot be written, a child that
fails or takes over a minute), the gate loads the file itself, as it always could.
The admin API and dashboard, which need the rules as models (to show them), get them from
``models_of`` on demand.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proxy.rules.cache import CACHE_FILE, Record, cache_key, read_cache, write_cache
from proxy.rules.problems import Problem, RulesFileError

if TYPE_CHECKING:
    from governance.schema import Rules
    from governance.snapshot import Snapshot

CHILD_TIMEOUT = 60.0  # seconds; a rules file is at most 1 MiB
_PROBLEMS = 3  # the child's exit status for a file with problems (JSON on stdout)
_NO_CACHE = 4  # the child's exit status when the state directory cannot hold the cache
# state directories whose cache the child could not write: loaded in process from then on
# (pydantic is then in the gate anyway; a child for every reload would only cost time)
_UNWRITABLE: set[Path] = set()
log = logging.getLogger(__name__)


def load_for_gate(path: Path, state_dir: Path | None) -> tuple[Snapshot, bytes]:
    """The snapshot of the rules at ``path`` and the bytes it was compiled from.

    Raises ``RulesFileError`` exactly as ``loader.load_rules_file`` does."""
    try:
        raw = path.read_bytes()
    except OSError:
        from proxy.rules.loader import load_rules_file

        return load_rules_file(path), b""  # which reports the problem in its own words
    key = cache_key(raw)
    if state_dir is not None:
        snap = read_cache(state_dir / CACHE_FILE, key)
        if (
            snap is None
            and state_dir not in _UNWRITABLE
            and _compile_in_child(raw, path, state_dir)
        ):
            snap = read_cache(state_dir / CACHE_FILE, key)
        if snap is not None:
            return snap, raw
    from proxy.rules.loader import load_rules_bytes

    return load_rules_bytes(raw, str(path)), raw


def models_of(snap: Snapshot, raw: bytes, name: str) -> Rules:
    """The rules-file models behind ``snap`` (a snapshot read from the cache holds records,
    which cannot dump themselves): validated again from the same bytes when needed."""
    if not isinstance(snap.rules, Record):
        return snap.rules
    from proxy.rules.loader import load_rules_bytes

    return load_rules_bytes(raw, name).rules


def _compile_in_child(raw: bytes, path: Path, state_dir: Path) -> bool:
    """True when the child wrote the cache; RulesFileError for a file with problems.
    Anything else is logged, and the gate loads the file itself."""
    name = str(path)
    try:
        done = subprocess.run(
            # -P: the working directory is not put on the child's path (a "proxy" package
            # there would run in its place)
            [sys.executable, "-P", "-m", "proxy.rules.offload", name, str(state_dir)],
            input=raw,
            capture_output=True,
            timeout=CHILD_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning(
            "rules: compiling %s in a child process failed (%s); loading it here", name, exc
        )
        return False
    if done.returncode == 0:
        return True
    if done.returncode == _PROBLEMS:
        problems = _problems(done.stdout)
        if problems:
            raise RulesFileError(problems)
    if done.returncode == _NO_CACHE:
        _UNWRITABLE.add(state_dir)
        log.warning("rules: %s cannot hold the rules cache; the rules are loaded here", state_dir)
        return False
    last = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
    log.warning(
        "rules: the child compiling %s exited with %s (%s); loading it here",
        name,
        done.returncode,
        last[0][:300],
    )
    return False


def _problems(out: bytes) -> list[Problem]:
    try:
        items: Any = json.loads(out)
        return [Problem(str(p), int(ln), int(col), str(m)) for p, ln, col, m in items]
    except (ValueError, TypeError):
        return []  # not what the child writes: the gate reads the file itself


def main(argv: list[str]) -> int:
    """The child: the rules bytes on stdin, compiled into the cache of ``state_dir``."""
    name, state_dir = argv
    raw = sys.stdin.buffer.read()
    from proxy.rules.loader import load_rules_bytes

    try:
        snap = load_rules_bytes(raw, name)
    except RulesFileError as exc:
        problems = [[p.path, p.line, p.column, p.message] for p in exc.file_problems]
        sys.stdout.write(json.dumps(problems))
        return _PROBLEMS
    return 0 if write_cache(Path(state_dir), cache_key(raw), snap) else _NO_CACHE


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
