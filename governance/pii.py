"""Personal data in prompt text: e-mail, phone, payment card (Luhn), street address, national id.

Detectors are tuned to miss rather than cry wolf on ordinary homework text, and to be cheap
on long prompts (the target is about 1 ms per 100 KB). The text is scanned once for digit
runs (cached per text, shared by every detector and every policy); phone numbers, cards and
ids are recognised from how those runs are grouped, and the few regular expressions left are
anchored at a run or an ``@`` — nothing scans or backtracks across the whole prompt.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from functools import lru_cache

from governance.textnorm import lowered, normalised

_DIGIT_MASK = bytes(0 if chr(i).isdigit() and i < 128 else 1 for i in range(256))
_UPPER = frozenset(i for i in range(256) if chr(i).isupper())
_STREET_END = frozenset(b"eEgGzZ.")  # last characters of the German street words below
_LOCAL = r"[A-Za-z0-9._%+-]{1,64}"
_EMAIL_AT = re.compile(rf"{_LOCAL}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{{2,}}")
_STREET = (
    r"street|st\.?|avenue|ave\.?|road|rd\.?|lane|ln\.?|drive|dr\.?|boulevard|blvd\.?|"
    r"court|ct\.?|way|place|pl\.?|terrace|close|rue|chemin|via|calle|avenida"
)
# "42 Maple Street": a house number, one to three capitalised words, a street word
_ADDRESS_EN = re.compile(rf"[a-z]?\s+(?:[A-ZÄÖÜ][\w'-]{{0,30}}\s+){{1,3}}(?i:{_STREET})(?!\w)")
# "Hauptstraße 12": a street name ending in a German street word, then the number
_ADDRESS_DE = re.compile(
    r"[A-ZÄÖÜ][a-zäöüß-]{0,30}(?:straße|strasse|str\.|weg|gasse|allee|"
    r"platz)\s+$"
)
_NI_BEFORE = re.compile(r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\s?$")
_NI_AFTER = re.compile(r"\s?[A-D]\b")
_ID_WORDS = ("ssn", "social security", "steuer-id", "steuerid", "tax id", "national id", "passport")
_ID_WORD_MAX = max(map(len, _ID_WORDS))
_ID_REACH = 20  # at most this many characters, none a digit, between the word and the number
_ID_NUMBER = re.compile(r"[0-9](?:[ -]?[0-9]){7,15}")  # 8-16 digits, single spaces or dashes
_KINDS = 5  # what _digit_kinds can find: card, phone, address, national_id, id_word


@lru_cache(maxsize=1)
def _maybe_digit() -> re.Pattern[str]:
    """A character class holding every non-ASCII decimal digit ("１", "٣", "४", "𝟏") and as
    few other characters as keeps it quick: exact ranges in the BMP, one span over the
    digits of historic scripts and mathematics beyond it, and the segmented digits. Emoji
    fall outside, so text full of them is scanned quickly too. Built on first use (about
    15 ms), by the first prompt beyond Latin-1 that is scanned for digits."""
    codes = [c for c in range(128, 0x20000) if unicodedata.category(chr(c)) == "Nd"]
    spans: list[list[int]] = []
    for code in codes:
        if spans and (spans[-1][1] == code - 1 or 0x10000 <= spans[-1][1] and code < 0x1F000):
            spans[-1][1] = code
        else:
            spans.append([code, code])
    ranges = "".join(f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in spans)
    return re.compile(f"[{ranges}]")  # ranges rather than \d: "is there any?" is quick


_OTHER_DIGIT = re.compile(r"(?![0-9])\d")
_GAP_CARD = frozenset({" ", "-"})
_GAP_PHONE = frozenset({" ", "-", ".", ") ", ")", " (", "(", ")-", ").", "-(", ". "})
_GAP_JOIN = _GAP_PHONE | {"/"}  # "/" joins a card's groups; a phone is never split by one
# a card split by dots or slashes only counts in the grouping cards are printed with, one
# separator throughout: decimals ("3.14159265358979") and dates stay what they are
_GAP_CARD_PRINTED = frozenset({".", "/"})
_CARD_GROUPS = frozenset({(4, 4, 4, 4), (4, 6, 5), (4, 6, 4), (4, 4, 4, 4, 3), (4, 4, 5)})


def _digits(text: str, group: list[tuple[int, int]]) -> str:
    return "".join(text[s:e] for s, e in group)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _is_card(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and len(set(digits)) > 1 and _luhn_ok(digits)


@lru_cache(maxsize=8)
def _digit_kinds(text: str) -> frozenset[str]:
    """Every digit-based kind in ``text``, in one pass: card, phone, address, national_id
    (by its shape) and id_word (a national id number after a word such as "SSN").

    Digits of other scripts are first written as ASCII digits (Latin-1 has none, so only a
    prompt beyond it is looked at). The text is encoded to Latin-1 once (a character beyond
    it becomes ``?``, one byte for one character, so positions stay those of ``text``) and
    translated at C speed to a mask:
    0 for a digit, 1 for anything else. ``bytes.find`` then jumps from run to run, so the
    loop runs once per number, never once per character. Numbers close together
    ("+49 170 1234567", "123-45-6789") are gathered into a group and judged together.
    """
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        text = _ascii_digits(text)
        raw = text.encode("latin-1", "replace")
    marked = raw.translate(_DIGIT_MASK)
    find = marked.find
    size = len(raw)
    found: set[str] = set()
    before = 0  # where the digit run before the current one ended
    at = find(0)
    while at != -1:
        end = find(1, at)
        if end == -1:
            end = size
        nxt = find(0, end)
        if end - at < 8 and (nxt - end > 2 or not _joined(text, end, nxt)):
            # the common case, a lone short number ("page 12"): only an address starts here
            if (
                end - at <= 5
                and (
                    (end + 1 < size and raw[end + 1] in _UPPER)
                    or (end + 2 < size and raw[end + 2] in _UPPER)
                    or (at >= 2 and raw[at - 2] in _STREET_END)
                )
                and "address" not in found
                and _address_at(text, at, end)
            ):
                found.add("address")
        else:  # a long number, or numbers close together: gather and judge the group
            group = [(at, end)]
            while _joined(text, end, nxt):
                at = nxt
                end = find(1, at)
                if end == -1:
                    end = size
                group.append((at, end))
                nxt = find(0, end)
            found |= _group_kinds(text, group)
            if "id_word" not in found and _id_word_before(text, before, group[0][0]):
                found.add("id_word")
        if len(found) == _KINDS:
            break
        before = end
        at = nxt
    return frozenset(found)


def _ascii_digits(text: str) -> str:
    """``text`` with every decimal digit of another script ("１２３", "١٢٣") written as an
    ASCII digit, one character for one so positions stay put: a number typed in full-width
    or Arabic-Indic digits is still a number to the model that reads it."""
    if _maybe_digit().search(text) is None:
        return text
    return _OTHER_DIGIT.sub(lambda digit: str(unicodedata.decimal(digit.group())), text)


def _joined(text: str, end: int, nxt: int) -> bool:
    """Whether the digit run at ``nxt`` continues the number that ends at ``end``."""
    return nxt != -1 and nxt - end <= 2 and text[end:nxt] in _GAP_JOIN


def _id_word_before(text: str, before: int, start: int) -> bool:
    """An id number at ``start`` with an id word ("SSN", "Steuer-ID", ...) before it: at
    most 20 characters, none a digit, between the word and the number."""
    if not _ID_NUMBER.match(text, start):
        return False
    lo = max(before, start - _ID_REACH - _ID_WORD_MAX)
    window = text[lo:start].lower()
    for word in _ID_WORDS:
        at = window.rfind(word)
        if at != -1 and len(window) - at - len(word) <= _ID_REACH:
            return True
    return False


def _group_kinds(text: str, group: list[tuple[int, int]]) -> set[str]:
    kinds: set[str] = set()
    sizes = [e - s for s, e in group]
    total = sum(sizes)
    start, end = group[0][0], group[-1][1]
    gaps = [text[group[i][1] : group[i + 1][0]] for i in range(len(group) - 1)]
    if 13 <= total <= 19 and _card_gaps(gaps, sizes) and _is_card(_digits(text, group)):
        kinds.add("card")
    elif 8 <= total <= 15 and "/" not in gaps and _phone_shaped(text, group, sizes, start, end):
        kinds.add("phone")
    if sizes == [3, 2, 4] and gaps == ["-", "-"] and _valid_ssn(_digits(text, group)):
        kinds.add("national_id")
    elif (
        sizes == [2, 2, 2]
        and all(g in ("", " ") for g in gaps)
        and _NI_BEFORE.search(text, max(0, start - 3), start)
        and _NI_AFTER.match(text, end)
    ):
        kinds.add("national_id")
    if any(_address_at(text, s, e) for s, e in group if e - s <= 5):
        kinds.add("address")
    return kinds


def _card_gaps(gaps: list[str], sizes: list[int]) -> bool:
    if all(g in _GAP_CARD for g in gaps):
        return True
    return len(set(gaps)) == 1 and gaps[0] in _GAP_CARD_PRINTED and tuple(sizes) in _CARD_GROUPS


def _phone_shaped(
    text: str, group: list[tuple[int, int]], sizes: list[int], start: int, end: int
) -> bool:
    before = text[start - 1] if start else ""
    after = text[end] if end < len(text) else ""
    if after.isalnum() or before.isalnum():
        return False
    # written as a phone number: a country code, brackets or separators; "3.14159" is not
    if before not in ("+", "(") and (len(group) < 2 or sizes[0] < 2):
        return False
    return not _is_date(text, group) and not _is_card(_digits(text, group))


def _address_at(text: str, start: int, end: int) -> bool:
    if start and text[start - 1].isalnum():
        return False
    nxt = text[end : end + 3]
    if (
        nxt[1:2].isupper() and nxt[:1].isspace() or nxt[2:3].isupper() and nxt[:1].isalpha()
    ) and _ADDRESS_EN.match(text, end, end + 120):
        return True
    # "Hauptstraße 12": only worth a look after a space that follows a letter
    # German street names end in -straße/-strasse/-gasse/-allee (e), -weg (g), -platz (z)
    # or the abbreviation "str." — one character rules almost every other word out
    if start < 2 or not text[start - 1].isspace() or text[start - 2] not in "eEgGzZ.":
        return False
    word_end = text[max(0, start - 8) : start].lower().rstrip()
    if not word_end.endswith(("straße", "strasse", "str.", "weg", "gasse", "allee", "platz")):
        return False
    return _ADDRESS_DE.search(text, max(0, start - 40), start) is not None


def _is_date(text: str, group: list[tuple[int, int]]) -> bool:
    sizes = [e - s for s, e in group]
    return (
        len(group) == 3
        and sizes in ([4, 2, 2], [2, 2, 4])
        and all(text[group[i][1]] in "-." for i in range(2))
    )


def _has_email(text: str) -> bool:
    at = text.find("@")
    while at != -1:
        window = text[max(0, at - 64) : at + 256]
        if _EMAIL_AT.search(window):
            return True
        at = text.find("@", at + 1)
    return False


def _valid_ssn(digits: str) -> bool:
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


_lower = lowered


_DETECTORS: dict[str, Callable[[str], bool]] = {
    "email": _has_email,
    "phone": lambda text: "phone" in _digit_kinds(text),
    "card": lambda text: "card" in _digit_kinds(text),
    "address": lambda text: "address" in _digit_kinds(text),
    "national_id": lambda text: not _digit_kinds(text).isdisjoint(("national_id", "id_word")),
}


def find_pii(text: str, kinds: Iterable[str], *, first: bool = False) -> list[str]:
    """The kinds of personal data found in ``text``, out of those asked for; with ``first``
    only the first one found (a policy needs to know whether, not everything). The text is
    read normalised (``textnorm``): full-width ``＠`` and digits, zero-width characters and
    soft hyphens inside a number or an address do not hide it."""
    if not text:
        return []
    text = normalised(text)
    found = []
    for kind in kinds:
        if _found(text, kind):
            found.append(kind)
            if first:
                break
    return found


@lru_cache(maxsize=16)
def _found(text: str, kind: str) -> bool:
    return _DETECTORS[kind](text)
