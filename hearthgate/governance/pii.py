"""Personal data in prompt text: e-mail, phone, payment card (Luhn), street address, national id.

Detectors are tuned to miss rather than cry wolf on ordinary homework text; each returns on
the first hit. Text is scanned up to the prompt cap the proxy applies.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# international (+country) or national numbers with separators; 8-15 digits in all
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,5}\)[\s.-]?)?\d{2,8}(?:[\s.-]\d{2,8}){0,4}(?!\w)"
)
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_STREET_WORDS = (
    r"street|st\.?|avenue|ave\.?|road|rd\.?|lane|ln\.?|drive|dr\.?|boulevard|blvd\.?|court|"
    r"ct\.?|way|place|pl\.?|terrace|close|straße|strasse|str\.|weg|gasse|allee|platz|rue|"
    r"chemin|via|calle|avenida"
)
# names start with a capital letter ("42 Maple Street"), street words in any case
_ADDRESS = re.compile(
    rf"\b\d{{1,5}}[a-z]?\s+(?:[A-ZÄÖÜ][\w'-]+\s+){{1,3}}(?i:{_STREET_WORDS})(?!\w)"
    rf"|\b[A-ZÄÖÜ][\wäöüß-]*(?i:{_STREET_WORDS})\s+\d{{1,5}}[a-z]?\b"
)
# US SSN, UK NI number, German tax id style (11 digits starting non-zero) with context word
_NATIONAL_ID = re.compile(
    r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b"
    r"|\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b"
    r"|(?i:(?:ssn|social security|steuer-?id|tax id|national id|passport)\D{0,20}\d[\d -]{6,14}\d)"
)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _has_card(text: str) -> bool:
    for hit in _CARD.finditer(text):
        digits = re.sub(r"\D", "", hit.group(0))
        if 13 <= len(digits) <= 19 and len(set(digits)) > 1 and _luhn_ok(digits):
            return True
    return False


def _has_phone(text: str) -> bool:
    for hit in _PHONE.finditer(text):
        raw = hit.group(0)
        digits = re.sub(r"\D", "", raw)
        # a phone number is written with a country code, brackets or separators
        written_as_phone = raw[0] in "+(" or re.search(r"\d[\s.-]\d", raw) is not None
        if (
            8 <= len(digits) <= 15
            and written_as_phone
            and not _looks_like_date_or_card(raw, digits)
        ):
            return True
    return False


def _looks_like_date_or_card(raw: str, digits: str) -> bool:
    if re.fullmatch(r"\d{4}[-.]\d{2}[-.]\d{2}|\d{2}[-.]\d{2}[-.]\d{4}", raw.strip()):
        return True
    return len(digits) >= 13 and _luhn_ok(digits)


_DETECTORS: dict[str, Callable[[str], bool]] = {
    "email": lambda t: _EMAIL.search(t) is not None,
    "phone": _has_phone,
    "card": _has_card,
    "address": lambda t: _ADDRESS.search(t) is not None,
    "national_id": lambda t: _NATIONAL_ID.search(t) is not None,
}


def find_pii(text: str, kinds: Iterable[str]) -> list[str]:
    """The kinds of personal data found in ``text``, out of those asked for."""
    if not text:
        return []
    return [kind for kind in kinds if _DETECTORS[kind](text)]
