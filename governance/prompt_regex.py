"""Parents' prompt regexes, matched case-insensitively and fast.

Python's regex engine finds a literal start quickly, but not under IGNORECASE and not behind
a leading ``\\b``. A pattern that is case-safe is therefore matched case-sensitively against
a lower-cased copy of the prompt, with a leading ``\\b`` checked by hand at each candidate;
any other pattern is matched with IGNORECASE as written. Both give the same answer.

Case-safe means: no capital letter however it is spelled (``A``, ``\\x41``, ``[\\x41-\\x5a]``),
no ``\\B``/``\\D``/``\\S``/``\\W``-style escapes, no ASCII or LOCALE flag, no ``(?-i:...)``,
and no ``ı`` or ``ſ`` (which IGNORECASE takes for a plain ``i`` or ``s``). A few letters
IGNORECASE pairs with one that is not their lower case (``s``/``ſ``, ``i``/``ı``,
``σ``/``ς``, ``в``/``ᲀ`` ...): a prompt holding the partner of one of the pattern's letters
is matched the slow way.

On the fast path the literal text every match must contain is found with ``str.find`` (far
faster than the regex engine's own scan): when the pattern starts with a literal, the engine
is only asked to match where that literal occurs; when it merely contains one, a prompt
without it is answered at once.
"""

from __future__ import annotations

import re
import re._casefix as _casefix
import re._constants as _constants
import re._parser as _parser
from dataclasses import dataclass
from typing import Any

_UPPER_ESCAPE = re.compile(r"\\[A-Z]")
# per lower-case letter, the letters IGNORECASE also takes for it although neither is the
# other's lower case ("s": "ſ", "σ": "ς", "в": "ᲀ")
_ODD_FOLDS: dict[str, str] = {
    chr(key): "".join(map(chr, partners)) for key, partners in _casefix._EXTRA_CASES.items()
}
_SAFE_FLAGS = re.UNICODE | re.VERBOSE | re.DOTALL | re.MULTILINE | re.IGNORECASE
_LARGEST_RANGE = 0x3000  # wider character ranges are not inspected: slow path


@dataclass(frozen=True, slots=True)
class PromptRegex:
    pattern: re.Pattern[str]
    on_lower: bool  # match against the lower-cased prompt
    word_start: bool  # a leading \b was removed and is checked by hand
    fallback: re.Pattern[str]  # the pattern as written, IGNORECASE
    prefix: str = ""  # every match starts with this (fast path only)
    required: str = ""  # every match contains this (fast path only)
    # letters that IGNORECASE would take for one of the pattern's: a prompt holding one is
    # matched the slow way (fast path only; none are ASCII)
    odd_partners: re.Pattern[str] | None = None

    def search(self, text: str, lower: str) -> str | None:
        """The matched text, or None."""
        if (
            not self.on_lower
            # a few characters (such as "İ") change length when lower-cased
            or len(lower) != len(text)
            or (
                self.odd_partners is not None
                and not lower.isascii()
                and self.odd_partners.search(lower) is not None
            )
        ):
            hit = self.fallback.search(text)
            return hit.group(0) if hit else None
        if self.required and self.required not in lower:
            return None
        if self.prefix:
            return self._at_prefixes(lower)
        pos, end = 0, len(lower)
        while pos <= end and (hit := self.pattern.search(lower, pos)) is not None:
            if not self.word_start or _boundary(lower, hit.start()):
                return hit.group(0)
            pos = hit.start() + 1  # past the end: search would find the same empty match
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
    parsed = _parser.parse(source)
    partners: set[str] = set()
    if not _case_safe(source, parsed, partners):
        return PromptRegex(fallback, False, False, fallback)
    leading_boundary = (
        source.startswith(r"\b")
        and not source.startswith(r"\b\b")
        and len(source) > 2
        and source[2] not in "*+?{|)"
        # "\bc|x" is "(\bc)|x": the \b belongs to one alternative only
        and len(parsed) > 1
        and parsed[0] == (_constants.AT, _constants.AT_BOUNDARY)
    )
    body = source[2:] if leading_boundary else source
    prefix, required = _literals(body)
    odd = re.compile("[" + re.escape("".join(sorted(partners))) + "]") if partners else None
    return PromptRegex(re.compile(body), True, leading_boundary, fallback, prefix, required, odd)


def _case_safe(source: str, parsed: Any, partners: set[str]) -> bool:
    """True when matching lower-cased text case-sensitively equals IGNORECASE matching,
    provided the text holds none of ``partners`` (filled in here)."""
    if source != source.lower() or _UPPER_ESCAPE.search(source):
        return False
    if parsed.state.flags & ~_SAFE_FLAGS:
        return False
    try:
        return _items_case_safe(parsed, partners)
    except Exception:  # noqa: BLE001 - a private module changed: take the slow path
        return False


def _items_case_safe(items: Any, partners: set[str]) -> bool:
    for op, value in items:
        if op in (_constants.LITERAL, _constants.NOT_LITERAL):
            ok = _char_safe(chr(value), partners)
        elif op is _constants.RANGE:
            low, high = value
            ok = high - low <= _LARGEST_RANGE and all(
                _char_safe(chr(code), partners) for code in range(low, high + 1)
            )
        elif op is _constants.SUBPATTERN:
            _group, add_flags, del_flags, sub = value
            # (?-i:...) matches case-sensitively: lower-casing the text would change that
            ok = not (add_flags & ~_SAFE_FLAGS or del_flags) and _items_case_safe(sub, partners)
        elif (nested := _nested(op, value)) is not None:
            ok = all(_items_case_safe(sub, partners) for sub in nested)
        else:  # anything this check does not know takes the slow path, which is always right
            ok = op in _CASELESS
        if not ok:
            return False
    return True


_CASELESS = (
    _constants.AT,
    _constants.ANY,
    _constants.CATEGORY,
    _constants.NEGATE,
    _constants.GROUPREF,
)


def _nested(op: Any, value: Any) -> list[Any] | None:
    """The item lists inside a repeat, branch, set, lookaround or conditional."""
    if op is _constants.IN or op is _constants.ATOMIC_GROUP:
        return [value]
    if op is _constants.BRANCH:
        return list(value[1])
    if op in (_constants.MAX_REPEAT, _constants.MIN_REPEAT, _constants.POSSESSIVE_REPEAT):
        return [value[2]]
    if op in (_constants.ASSERT, _constants.ASSERT_NOT):
        return [value[1]]
    if op is _constants.GROUPREF_EXISTS:
        return [part for part in value[1:] if part is not None]
    return None


def _char_safe(ch: str, partners: set[str]) -> bool:
    """A lower-case (or caseless) letter whose odd IGNORECASE partners, if any, are not
    ASCII: a prompt is checked for those only when it is not ASCII itself."""
    if ch.lower() != ch:
        return False
    odd = _ODD_FOLDS.get(ch, "")
    if any(partner.isascii() for partner in odd):
        return False  # "ſ" or "ı" in the pattern: IGNORECASE takes a plain "s" or "i" for it
    partners.update(odd)
    return True


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
