"""Every exception hearthgate raises on purpose.

    HearthgateError
    ├── RulesError          the rules file is unusable; .problems lists (location, message)
    └── StateError          a runtime action is refused (bad duration, unknown entry ...)
        └── ConsentRequired the action waits for other parents' approval

Pure code raises ``ValueError`` with a message naming the field and value; the edges turn
these into a rules-file error with line and column, an HTTP 4xx, or a CLI exit code.
"""

from __future__ import annotations

Location = tuple[str | int, ...]


class HearthgateError(Exception):
    """Base of the exceptions hearthgate raises deliberately."""


class RulesError(HearthgateError):
    """The rules are invalid. ``problems`` holds (location in the document, message) pairs."""

    def __init__(self, problems: list[tuple[Location, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{_dotted(loc)}: {msg}" for loc, msg in problems))


class StateError(HearthgateError):
    """A runtime change was refused; the message says why, in words a parent understands."""


class ConsentRequired(StateError):
    """The change is stored as a consent request and takes effect once approved."""

    def __init__(self, request_id: int, message: str) -> None:
        self.request_id = request_id
        super().__init__(message)


def _dotted(loc: Location) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"
