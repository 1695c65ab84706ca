"""The compiled rules kept in the state directory, so a CLI command skips YAML and pydantic.

Validating the rules file (PyYAML, pydantic and the schema of twenty models) costs a command
most of its 300 ms budget; the snapshot it compiles to is read back from
``STATE_DIR/rules.cache`` in about a millisecond, without importing pydantic at all: the
rules-file models inside the snapshot (``snap.rules``, a policy's quota) come back as
``Record`` objects, their fields as read-only attributes — what the CLI's commands read.
``rules show`` prints the models' JSON dump, written beside the cache as ``rules.shown``
under the same key; the running gate reads the cache too, filled by a child process when it
misses (``offload.py``).

The cache is keyed by the SHA-256 of the file's bytes together with the code that compiled
it (every ``governance`` and ``proxy.rules`` source file's size and modification time, the
files of pydantic, PyYAML and the confusables package, and the interpreter's version): an
edited rules file or an upgraded gate is a miss, and a miss is a full load that writes the
cache again. A failed load is never cached, so a broken file
reports its problems each time.

The file is a pickle, so it is only read when the user running the command (or root) owns
it and nobody else may write to it, never through a symlink, and it is unpickled with a
whitelist: the classes of ``governance``, ``Record``, a time of day, a time zone, a compiled
regex, an IP network, a read-only mapping, and an attribute lookup that yields only an enum
member or ``ZoneInfo``'s own unpickler. Anything else in it is a miss.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import sys
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from governance.snapshot import Snapshot

CACHE_FILE = "rules.cache"
MAGIC = b"hearthgate rules cache 2\n"
SHOWN_FILE = "rules.shown"  # rules show's JSON, under the same key
SHOWN_MAGIC = b"hearthgate rules shown 1\n"
MAX_CACHE_BYTES = 32 * 1024 * 1024
_GOVERNANCE = Path(__file__).resolve().parents[2] / "governance"
# packages whose files are rewritten by every install or upgrade of them (top-level names:
# finding a submodule would import its package)
_LIBRARIES = ("pydantic", "pydantic_core", "yaml", "confusable_homoglyphs")


def load_rules(path: str | Path, state_dir: Path | None) -> Snapshot:
    """The snapshot of the rules at ``path``, from the cache when it holds these bytes.

    Raises ``RulesFileError`` exactly as ``loader.load_rules_file`` does.
    """
    raw = _source(path)
    key = cache_key(raw)
    if state_dir is not None:
        from_file = read_cache(state_dir / CACHE_FILE, key)
        if from_file is not None:
            return from_file
    return _fresh(raw, key, path, state_dir)


def _source(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError:
        from proxy.rules.loader import load_rules_file

        load_rules_file(path)  # which reports the problem in its own words
        raise


def _fresh(raw: bytes, key: bytes, path: str | Path, state_dir: Path | None) -> Snapshot:
    """A full load of ``raw``, written to the cache (and rules.shown) on the way."""
    from proxy.rules.loader import load_rules_bytes

    snap = load_rules_bytes(raw, str(path))  # the bytes hashed: no second read to race
    if state_dir is not None:
        write_cache(state_dir, key, snap)
    return snap


def cache_key(raw: bytes) -> bytes:
    digest = hashlib.sha256(raw)
    digest.update(b"\0" + _code_stamp().encode())
    return digest.hexdigest().encode()


def _code_stamp() -> str:
    """What compiles the rules: the interpreter, governance and the rules loader, and the
    libraries that shape the snapshot (the schema's validation, YAML, the confusables that
    fold keywords), each by its files' size and modification time (found, not imported)."""
    parts = [sys.version]
    sources = sorted(_GOVERNANCE.glob("*.py")) + sorted(Path(__file__).parent.glob("*.py"))
    for source in sources + _library_files():
        st = source.stat()
        parts.append(f"{source}:{st.st_size}:{st.st_mtime_ns}")
    return "\n".join(parts)


def _library_files() -> list[Path]:
    from importlib.util import find_spec

    found = []
    for name in _LIBRARIES:
        try:
            spec = find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin:
            found.append(Path(spec.origin))
    return found


def read_cache(path: Path, key: bytes) -> Snapshot | None:
    """The snapshot the cache at ``path`` holds for ``key``; None for any miss."""
    data = _read_private(path, MAGIC + key + b"\n")
    if data is None:
        return None
    try:
        snap = _Unpickler(io.BytesIO(data)).load()
    except Exception:  # a truncated, foreign or stale file is a miss, never an error
        return None
    from governance.snapshot import Snapshot

    return snap if isinstance(snap, Snapshot) else None


def load_shown(path: str | Path, state_dir: Path | None) -> dict[str, Any]:
    """``rules show``'s document: the rules as loaded, every default filled in (the models'
    JSON dump), from ``STATE_DIR/rules.shown`` when it was written for these bytes (beside
    the cache, by ``write_cache``). Raises ``RulesFileError`` as ``load_rules`` does."""
    raw = _source(path)
    key = cache_key(raw)
    if state_dir is not None:
        data = _read_private(state_dir / SHOWN_FILE, SHOWN_MAGIC + key + b"\n")
        try:
            shown = json.loads(data) if data is not None else None
        except ValueError:
            shown = None
        if isinstance(shown, dict):
            return shown
    return _shown(_fresh(raw, key, path, state_dir))


def _shown(snap: Snapshot) -> dict[str, Any]:
    dump: dict[str, Any] = snap.rules.model_dump(mode="json")
    return dump


def write_cache(state_dir: Path, key: bytes, snap: Snapshot) -> bool:
    """Best effort: a state directory that is missing or read-only just keeps no cache
    (False). ``snap`` is a fresh load (its rules pydantic models): ``rules show``'s
    document is written beside it."""
    if not state_dir.is_dir():
        return False
    buffer = io.BytesIO()
    pickler = _Pickler(buffer, protocol=5)
    try:
        pickler.dump(snap)
        shown = json.dumps(_shown(snap)).encode()
    except (pickle.PicklingError, TypeError, AttributeError, ValueError):
        return False
    written = _write_private(state_dir, CACHE_FILE, MAGIC + key + b"\n" + buffer.getvalue())
    return _write_private(state_dir, SHOWN_FILE, SHOWN_MAGIC + key + b"\n" + shown) and written


def _read_private(path: Path, head: bytes) -> bytes | None:
    """What follows ``head`` in the file at ``path``: None unless the file starts with it,
    is no symlink, belongs to this user (or root) and nobody else may write to it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_uid not in (os.geteuid(), 0) or st.st_mode & 0o022:
                return None
            if st.st_size > MAX_CACHE_BYTES:
                return None
            data = f.read()
    except OSError:
        return None
    return data[len(head) :] if data.startswith(head) else None


def _write_private(state_dir: Path, name: str, data: bytes) -> bool:
    """``data`` as ``state_dir/name``, mode 0600, replaced in one step."""
    import tempfile  # and shutil, random ...: only when writing

    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=state_dir)  # mode 0600
    except OSError:
        return False
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, state_dir / name)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False
    return True


class Record:
    """A rules-file model (``governance.schema``) read back from the cache: its fields as
    read-only attributes, nested models as records too. Equal to another record of the same
    model with the same fields."""

    __slots__ = ("_fields", "_model")

    def __init__(self, model: str, fields: dict[str, Any]) -> None:
        object.__setattr__(self, "_model", model)
        object.__setattr__(self, "_fields", fields)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(f"{self._model} has no field {name!r}") from None

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{self._model} is read-only")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return (self._model, self._fields) == (other._model, other._fields)

    def __hash__(self) -> int:
        return hash((self._model, tuple(self._fields.items())))

    def __repr__(self) -> str:
        return f"{self._model}({', '.join(f'{k}={v!r}' for k, v in self._fields.items())})"


def _record(model: str, fields: dict[str, Any]) -> Record:
    return Record(model, fields)


def _mapping(items: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(items)


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        from pydantic import BaseModel  # loaded already: the snapshot was just validated

        if isinstance(obj, BaseModel):
            return _record, (type(obj).__name__, dict(obj.__dict__))
        if isinstance(obj, MappingProxyType):
            return _mapping, (dict(obj),)
        return NotImplemented


def _attribute(owner: object, name: str) -> object:
    """``getattr`` as pickle uses it for enum members and ``ZoneInfo._unpickle``, and no more."""
    from zoneinfo import ZoneInfo

    if owner is ZoneInfo and name == "_unpickle":
        return ZoneInfo._unpickle  # type: ignore[attr-defined]
    if (
        isinstance(owner, type)
        and issubclass(owner, Enum)
        and owner.__module__.startswith("governance.")
        and name in owner.__members__
    ):
        return owner.__members__[name]
    raise pickle.UnpicklingError(f"attribute {name!r} is not allowed")


_ALLOWED = {
    ("datetime", "time"),
    ("zoneinfo", "ZoneInfo"),
    ("re", "_compile"),
    ("ipaddress", "IPv4Network"),
    ("ipaddress", "IPv6Network"),
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and name == "getattr":
            return _attribute
        if module == __name__ and name in ("_mapping", "_record"):
            return _mapping if name == "_mapping" else _record
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if module.startswith("governance.") and module != "governance.schema" and "." not in name:
            found = super().find_class(module, name)
            if isinstance(found, type):
                return found
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a rules cache")
