"""Reading the rules file: YAML -> pydantic -> snapshot, with errors a parent can act on.

Every problem is reported as ``file:line:column: message``. The YAML is composed into nodes
first so that a pydantic error location (``devices.alice-laptop.ips.0``) can be traced back
to the line and column it came from; duplicate keys, which YAML would silently collapse,
are errors too.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from governance.errors import Location, RulesError
from governance.references import check_references
from governance.schema import Rules
from governance.snapshot import Snapshot, compile_rules
from proxy.rules.problems import Problem, RulesFileError

__all__ = [
    "MAX_RULES_BYTES",
    "Problem",
    "RulesFileError",
    "load_rules_bytes",
    "load_rules_file",
    "load_rules_text",
]

MAX_RULES_BYTES = 1024 * 1024


def load_rules_file(path: str | Path) -> Snapshot:
    """The compiled snapshot of the rules at ``path``; RulesFileError if unusable."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise RulesFileError(
            [Problem(name, 1, 1, f"cannot read the rules file: {exc.strerror or exc}")]
        ) from None
    return load_rules_bytes(raw, name)


def load_rules_bytes(raw: bytes, name: str = "<rules>") -> Snapshot:
    """The compiled snapshot of a rules file's bytes, as read; RulesFileError if unusable."""
    if len(raw) > MAX_RULES_BYTES:
        raise RulesFileError([Problem(name, 1, 1, "the rules file is larger than 1 MiB")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RulesFileError(
            [Problem(name, 1, 1, f"the rules file is not UTF-8 text (byte {exc.start})")]
        ) from None
    return load_rules_text(text, name)


def load_rules_text(text: str, name: str = "<rules>") -> Snapshot:
    node = _compose(text, name)
    data = _construct(node, name)
    try:
        rules = Rules.model_validate(data)
    except ValidationError as exc:
        problems = _validation_problems(exc, node, name) + _references_despite(
            exc, data, node, name
        )
        unique = {(p.line, p.column, p.message): p for p in problems}
        raise RulesFileError(sorted(unique.values(), key=lambda p: (p.line, p.column))) from None
    try:
        return compile_rules(rules, text)
    except RulesError as exc:
        raise RulesFileError([_locate(node, loc, msg, name) for loc, msg in exc.problems]) from None
    except ValueError as exc:
        raise RulesFileError([Problem(name, 1, 1, str(exc))]) from None


def _compose(text: str, name: str) -> yaml.Node:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or "invalid YAML"
        raise RulesFileError([Problem(name, line, col, f"not valid YAML: {what}")]) from None
    except yaml.YAMLError as exc:
        raise RulesFileError([Problem(name, 1, 1, f"not valid YAML: {exc}")]) from None
    if node is None:
        raise RulesFileError(
            [Problem(name, 1, 1, "the rules file is empty; it needs at least `version: 1`")]
        )
    if not isinstance(node, yaml.MappingNode):
        raise RulesFileError(
            [
                _at(
                    node,
                    name,
                    "the rules file must be a mapping of sections (version, settings, devices ...)",
                )
            ]
        )
    _check_duplicate_keys(node, name)
    return node


def _construct(node: yaml.Node, name: str) -> Any:
    try:
        return yaml.SafeLoader("").construct_document(node)
    except yaml.YAMLError as exc:
        raise RulesFileError([Problem(name, 1, 1, f"not valid YAML: {exc}")]) from None


def _check_duplicate_keys(node: yaml.Node, name: str) -> None:
    problems = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        problems.append(_at(key, name, f"{key.value!r} appears twice here"))
                    seen.add(key.value)
                stack.append(value)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
    if problems:
        raise RulesFileError(sorted(problems, key=lambda p: (p.line, p.column)))


def _references_despite(
    exc: ValidationError, data: Any, root: yaml.Node, name: str
) -> list[Problem]:
    """Names that refer to nothing, found in the parts of the file that are valid: each
    broken entry is left out and the rest validated again, so one run reports everything."""
    if not isinstance(data, dict):
        return []
    trimmed = copy.deepcopy(data)
    # section -> the original index of each list item still in the trimmed copy
    kept = {k: list(range(len(v))) for k, v in trimmed.items() if isinstance(v, list)}
    for _ in range(10):
        broken: dict[str, set[int]] = {}
        for err in exc.errors(include_url=False):
            loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
            _drop(trimmed, loc, broken)
        for section, indexes in broken.items():
            items = trimmed[section]
            trimmed[section] = [x for i, x in enumerate(items) if i not in indexes]
            kept[section] = [o for i, o in enumerate(kept[section]) if i not in indexes]
        try:
            rules = Rules.model_validate(trimmed)
        except ValidationError as again:
            exc = again
            continue
        problems = []
        for loc, msg in check_references(rules):
            if loc and loc[0] in kept and len(loc) > 1 and isinstance(loc[1], int):
                loc = (loc[0], kept[str(loc[0])][loc[1]], *loc[2:])
            problems.append(_locate(root, loc, msg, name))
        return problems
    return []


_NAMED = ("groups", "people", "devices")


def _drop(data: dict[str, Any], loc: Location, broken: dict[str, set[int]]) -> None:
    """Leave out what holds an error: a list item (marked in ``broken``), the contents of a
    named group, person or device (the name stays: others refer to it), or the section."""
    if not loc or not isinstance(loc[0], str):
        return
    section = data.get(loc[0])
    key = loc[1] if len(loc) > 1 else None
    if isinstance(section, list) and isinstance(key, int) and key < len(section):
        broken.setdefault(loc[0], set()).add(key)
    elif (
        isinstance(section, dict) and key is not None and loc[0] in ("groups", "people", "devices")
    ):
        section[key] = {}  # kept by name (others refer to it), emptied of what is broken
    else:
        data.pop(loc[0], None)


def _validation_problems(exc: ValidationError, root: yaml.Node, name: str) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(part for part in err["loc"] if not _is_union_tag(part))
        problem = _locate(root, loc, _message(err), name)
        if err["type"] == "extra_forbidden":
            problem = _at_key(root, loc, problem, name)
        problems.append(problem)
    unique = {(p.line, p.column, p.message): p for p in problems}
    return sorted(unique.values(), key=lambda p: (p.line, p.column))


# pydantic adds a union member's type name to error locations inside unions
# (``groups.kids.Group.description``); a key the parent wrote is never one of these
_UNION_TAGS = frozenset({"Group", "none"})


def _is_union_tag(part: object) -> bool:
    return isinstance(part, str) and part in _UNION_TAGS


def _message(err: ErrorDetails) -> str:
    kind, msg = err["type"], err["msg"]
    loc = err["loc"]
    if kind == "extra_forbidden":
        return f"unknown key {loc[-1]!r} (check the spelling; see rules/schema.json)"
    if kind == "missing":
        return f"{loc[-1]!r} is required here"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if kind == "literal_error":
        return f"{msg} (got {err.get('input')!r})"
    return msg


def _locate(root: yaml.Node, loc: Location, message: str, name: str) -> Problem:
    """The problem placed at the deepest node of ``loc`` that exists in the document."""
    node = root
    for part in loc:
        child = _child(node, part)
        if child is None:
            break
        node = child
    where = ".".join(str(p) for p in loc)
    return _at(node, name, f"{where}: {message}" if where else message)


def _at_key(root: yaml.Node, loc: Location, problem: Problem, name: str) -> Problem:
    """The same problem placed on the offending key rather than its value."""
    if not loc:
        return problem
    parent: yaml.Node | None = root
    for part in loc[:-1]:
        parent = _child(parent, part) if parent is not None else None
    if isinstance(parent, yaml.MappingNode):
        for key, _ in parent.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(loc[-1]):
                return _at(key, name, problem.message)
    return problem


def _child(node: yaml.Node, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                # point at the key for unknown-key errors and at the value otherwise
                return value if not isinstance(value, yaml.ScalarNode) or value.value else key
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        item: yaml.Node = node.value[part]  # the stubs leave Node.value untyped
        return item
    return None


def _at(node: yaml.Node, name: str, message: str) -> Problem:
    mark = node.start_mark
    return Problem(name, mark.line + 1, mark.column + 1, message)
