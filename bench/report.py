"""The report: Markdown tables (readable on a terminal too), one per section, plus a verdict.

``Report`` collects sections as they finish and the target verdicts they produce;
``render`` puts the machine description and the verdicts first. Numbers are formatted
here only: the section modules hand over raw measurements.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field


def number(value: float, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def times(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}x"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """A Markdown table with padded columns; the first ``left`` columns align left."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        out = [
            str(c).ljust(w) if i < left else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(out) + " |"

    rule = ["-" * w if i < left else "-" * (w - 1) + ":" for i, w in enumerate(widths)]
    return "\n".join([line(headers), "| " + " | ".join(rule) + " |", *map(line, rows)])


@dataclass(frozen=True)
class Verdict:
    target: str
    measured: str
    ok: bool | None  # None: not measured (skipped)
    level: bool = False  # missed, but by less than the turns' spread: see ``status``

    @property
    def status(self) -> str:
        if self.ok is None:
            return "skipped"
        return "LEVEL" if self.level and not self.ok else verdict(self.ok)


@dataclass
class Report:
    title: str
    machine: dict[str, str]
    verdicts: list[Verdict] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def target(self, target: str, measured: str, ok: bool | None, level: bool = False) -> None:
        """``level``: a missed comparison that the paired turns cannot tell from a tie."""
        self.verdicts.append(Verdict(target, measured, ok, level))

    def section(self, title: str, *parts: str) -> None:
        self.sections.append("\n\n".join([f"## {title}", *[p for p in parts if p]]))

    def render(self) -> str:
        machine = "\n".join(f"- {k}: {v}" for k, v in self.machine.items())
        rows = [[v.target, v.measured, v.status] for v in self.verdicts]
        summary = table(["SPEC section 9 target", "measured", "result"], rows, left=2)
        parts = [f"# {self.title}", "## Machine", machine, "## Targets", summary, *self.sections]
        if self.notes:
            parts += ["## Notes", "\n".join(f"- {n}" for n in self.notes)]
        return "\n\n".join(parts) + "\n"
