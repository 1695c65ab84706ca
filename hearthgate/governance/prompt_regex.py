"""Parents' prompt regexes, matched case-insensitively and fast.

Python's regex engine finds a literal start quickly, but not under IGNORECASE and not behind
a leading ``\\b``. A pattern that is case-safe (no capital letters, no ``\\B``/``\\D``/``\\S``/
``\\W``-style escapes) is therefore matched case-sensitively against a lower-cased copy of
the prompt, with a leading ``\\b`` checked by hand at each candidate; any other pattern is
matched with IGNORECASE as written. Both give the same answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UPPER_ESCAPE = re.compile(r"\\[A-Z]")


@dataclass(frozen=True, slots=True)
class PromptRegex:
    pattern: re.Pattern[str]
    on_lower: bool  # match against the lower-cased prompt
    word_start: bool  # a leading \b was removed and is checked by hand
    fallback: re.Pattern[str]  # the pattern as written, IGNORECASE

    def search(self, text: str, lower: str) -> str | None:
        """The matched text, or None."""
        if not self.on_lower or len(lower) != len(text):
            # a few characters (such as "İ") change length when lower-cased
            hit = self.fallback.search(text)
            return hit.group(0) if hit else None
        pos = 0
        while (hit := self.pattern.search(lower, pos)) is not None:
            if not self.word_start or _boundary(lower, hit.start()):
                return hit.group(0)
            pos = hit.start() + 1
        return None


def compile_prompt_regex(source: str) -> PromptRegex:
    fallback = re.compile(source, re.IGNORECASE)
    case_safe = source == source.lower() and not _UPPER_ESCAPE.search(source)
    if not case_safe:
        return PromptRegex(fallback, False, False, fallback)
    leading_boundary = (
        source.startswith(r"\b")
        and not source.startswith(r"\b\b")
        and len(source) > 2
        and source[2] not in "*+?{|)"
    )
    if leading_boundary:
        return PromptRegex(re.compile(source[2:]), True, True, fallback)
    return PromptRegex(re.compile(source), True, False, fallback)


def _boundary(text: str, at: int) -> bool:
    before = at > 0 and _word(text[at - 1])
    after = at < len(text) and _word(text[at])
    return before != after


def _word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"
