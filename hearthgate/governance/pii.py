"""Personal data in prompt text: e-mail, phone, payment card (Luhn), street address, national id.

Detectors are tuned to miss rather than cry wolf on ordinary homework text, and to be cheap
on long prompts (the target is about 1 ms per 100 KB). The text is scanned once for digit
runs (cached per text, shared by every detector and every policy); phone numbers, cards and
ids are recognised from how those runs are grouped, and the few regular expressions left are
anchored at a run or an ``@`` — nothing scans or backtracks across the whole prompt.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache

_DIGIT_CHARS = frozenset("0123456789")
_STREET_END = frozenset("eEgGzZ.")  # last characters of the German street words below
_MARK = str.maketrans("0123456789", "##########")
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
_ID_AFTER_WORD = re.compile(r"\D{0,20}\d[\d -]{6,14}\d")
_GAP_CARD = frozenset({" ", "-"})
_GAP_PHONE = frozenset({" ", "-", ".", ") ", ")", " (", "(", ")-", ").", "-(", ". "})


@lru_cache(maxsize=8)
def _runs(text: str) -> tuple[tuple[int, int], ...]:
    """Start and end of every run of digits (computed once per text).

    ``str.translate`` marks every digit with ``#`` at C speed; the marks are then found with
    ``str.find``. A ``#`` that was in the prompt itself is recognised by looking at the
    original character.
    """
    marked = text.translate(_MARK)
    runs: list[tuple[int, int]] = []
    at = marked.find("#")
    size = len(text)
    while at != -1:
        if text[at] in _DIGIT_CHARS:
            end = at + 1
            while end < size and text[end] in _DIGIT_CHARS:
                end += 1
            runs.append((at, end))
            at = marked.find("#", end)
        else:
            at = marked.find("#", at + 1)
    return tuple(runs)


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
    """Every digit-based kind in ``text``, from one pass over its digit runs."""
    found: set[str] = set()
    runs = _runs(text)
    count, i = len(runs), 0
    while i < count:
        start, end = runs[i]
        j = i
        # extend the group while the next run follows after a short separator
        while (
            j + 1 < count
            and runs[j + 1][0] - runs[j][1] <= 2
            and text[runs[j][1] : runs[j + 1][0]] in _GAP_PHONE
        ):
            j += 1
        if j == i and end - start < 8:
            # the common case, a lone short number ("page 12"): only an address starts here
            if (
                end - start <= 5
                and "address" not in found
                and (
                    text[end + 1 : end + 2].isupper()
                    or text[end + 2 : end + 3].isupper()
                    or text[start - 2 : start - 1] in _STREET_END
                )
                and _address_at(text, start, end)
            ):
                found.add("address")
        else:
            found |= _group_kinds(text, list(runs[i : j + 1]))
        if len(found) == 4:
            break
        i = j + 1
    return frozenset(found)


def _group_kinds(text: str, group: list[tuple[int, int]]) -> set[str]:
    kinds: set[str] = set()
    sizes = [e - s for s, e in group]
    total = sum(sizes)
    start, end = group[0][0], group[-1][1]
    gaps = [text[group[i][1] : group[i + 1][0]] for i in range(len(group) - 1)]
    if 13 <= total <= 19 and all(g in _GAP_CARD for g in gaps) and _is_card(_digits(text, group)):
        kinds.add("card")
    elif 8 <= total <= 15 and _phone_shaped(text, group, sizes, start, end):
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
    word_end = _lower(text)[max(0, start - 8) : start].rstrip()
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


def _has_national_id(text: str) -> bool:
    if "national_id" in _digit_kinds(text):
        return True
    lower = _lower(text)
    for word in _ID_WORDS:
        pos = lower.find(word)
        while pos != -1:
            if _ID_AFTER_WORD.match(text, pos + len(word)):
                return True
            pos = lower.find(word, pos + 1)
    return False


def _valid_ssn(digits: str) -> bool:
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


@lru_cache(maxsize=4)
def lowered(text: str) -> str:
    """``text.lower()``, computed once per text for every detector and keyword check."""
    return text.lower()


_lower = lowered


_DETECTORS: dict[str, Callable[[str], bool]] = {
    "email": _has_email,
    "phone": lambda text: "phone" in _digit_kinds(text),
    "card": lambda text: "card" in _digit_kinds(text),
    "address": lambda text: "address" in _digit_kinds(text),
    "national_id": _has_national_id,
}


def find_pii(text: str, kinds: Iterable[str], *, first: bool = False) -> list[str]:
    """The kinds of personal data found in ``text``, out of those asked for; with ``first``
    only the first one found (a policy needs to know whether, not everything)."""
    if not text:
        return []
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
