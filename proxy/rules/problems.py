"""A rules file's problems, each with file, line and column: cheap to import (the CLI catches
``RulesFileError`` without loading YAML or pydantic)."""

from __future__ import annotations

from dataclasses import dataclass

from governance.errors import RulesError


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


class RulesFileError(RulesError):
    """A rules file that cannot be used; ``file_problems`` carry line and column."""

    def __init__(self, file_problems: list[Problem]) -> None:
        self.file_problems = file_problems
        super().__init__([((), str(p)) for p in file_problems])

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.file_problems)
