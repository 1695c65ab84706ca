"""Parents' prompt regexes, matched case-insensitively and fast.

Python's regex engine finds a literal start quickly, but not under IGNORECASE and not behind
a leading ``\\b``. A pattern that is case-safe (no capital letters, no ``\\B``/``\\D``/``\\S``/
``\\W``-style escapes) is therefore matched case-sensitively against a lower-cased copy of
the prompt, with a leading ``\\b`` checked by hand at each candidate; any other pattern is
matched with IGNORECASE as written. Both give the same answer.

On the fast path the literal text every match must contain is found with ``str.find`` (far
faster than the regex engine's own scan): when the pattern starts with a literal, the engine
is only asked to match where that literal occurs; when it merely contains one, a prompt
without it is answered at once.
"""

from __future__ import annotations

import re
import re._constants as _constants
import re._parser as _parser
from dataclasses import dataclass

_UPPER_ESCAPE = re.compile(r"\\[A-Z]")


@dataclass(frozen=True, slots=True)
class PromptRegex:
    pattern: re.Pattern[str]
    on_lower: bool  # match against the lower-cased prompt
    word_start: bool  # a leading \b was removed and is checked by hand
    fallback: re.Pattern[str]  # the pattern as written, IGNORECASE
    prefix: str = ""  # every match starts with this (fast path only)
    required: str = ""  # every match contains this (fast path only)

    def search(self, text: str, lower: str) -> str | None:
        """The matched text, or None."""
        if not self.on_lower or len(lower) != len(text):
            # a few characters (such as "İ") change length when lower-cased
            hit = self.fallback.search(text)
            return hit.group(0) if hit else None
        if self.required and self.required not in lower:
            return None
        if self.prefix:
            return self._at_prefixes(lower)
        pos = 0
        while (hit := self.pattern.search(lower, pos)) is not None:
            if not self.word_start or _boundary(lower, hit.start()):
                return hit.group(0)
            pos = hit.start() + 1
        return None

    def _at_prefixes(self, lower: str) -> str | None:
        find, match, prefix = lower.find, self.pattern.match, self.prefix
        # a \b before a prefix that starts with a word character: no word character before it
        word_before = self.word_start and _word(prefix[0])
        at = find(prefix)
        while at != -1:
            if word_before:
                ok = at == 0 or not _word(lower[at - 1])
            else:
                ok = not self.word_start or _boundary(lower, at)
            if ok and (hit := match(lower, at)) is not None:
                return hit.group(0)
            at = find(prefix, at + 1)
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
    body = source[2:] if leading_boundary else source
    prefix, required = _literals(body)
    return PromptRegex(re.compile(body), True, leading_boundary, fallback, prefix, required)


def _literals(source: str) -> tuple[str, str]:
    """(the literal every match starts with, the longest literal every match contains).

    Read from the parsed pattern's top level: consecutive literal characters, across
    zero-width anchors such as ``\\b``. Anything unusual gives ("", "") — no shortcut.
    """
    try:
        parsed = _parser.parse(source)
        if parsed.state.flags & re.IGNORECASE:
            return "", ""
        pieces: list[str] = []
        current: list[str] = []
        for op, value in parsed:
            if op is _constants.LITERAL:
                current.append(chr(value))
            elif op is not _constants.AT:
                pieces.append("".join(current))
                current = []
        pieces.append("".join(current))
    except Exception:  # noqa: BLE001 - a private module changed: go without the shortcut
        return "", ""
    prefix = pieces[0] if len(pieces[0]) >= 2 else ""
    required = max(pieces, key=len)
    return prefix, required if len(required) >= 3 else ""


def _boundary(text: str, at: int) -> bool:
    before = at > 0 and _word(text[at - 1])
    after = at < len(text) and _word(text[at])
    return before != after


def _word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"
