"""Personal-data detectors: what they must find, and ordinary text they must leave alone."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.pii import _ID_WORDS, _ascii_digits, _digit_kinds, find_pii

FOUND = [
    ("email", "write to jane.doe+school@example.co.uk please"),
    ("email", "MY MAIL: KID123@GMAIL.COM"),
    ("phone", "call me on +49 170 1234567"),
    ("phone", "my number is (555) 123-4567"),
    ("phone", "ring 020 7946 0958 tonight"),
    ("card", "card 4111 1111 1111 1111 exp 12/28"),
    ("card", "5500-0000-0000-0004"),
    ("card", "378282246310005"),
    ("address", "I live at 42 Maple Street in town"),
    ("address", "we moved to 1600 Pennsylvania Avenue"),
    ("address", "meine Adresse ist Hauptstraße 12, Berlin"),
    ("national_id", "my SSN is 123-45-6789"),
    ("national_id", "NI number AB 12 34 56 C"),
    ("national_id", "meine Steuer-ID ist 12 345 678 901"),
    # numbers at the very start or end of the prompt
    ("address", "12 Maple Street"),
    ("address", "Hauptstraße 12"),
    ("phone", "+49 170 1234567"),
    ("national_id", "SSN 123-45-6789"),
    # text beyond Latin-1 around the data: emoji, Cyrillic, CJK
    ("phone", "📞 звони мне: +49 170 1234567 🙂"),
    ("card", "カード 4111 1111 1111 1111 です"),
    ("address", "我住在 42 Maple Street 🏠"),
    ("address", "Адрес: Hauptstraße 12, Berlin"),
    ("national_id", "🔐 SSN: 123-45-6789"),
    ("national_id", "паспорт passport № 1234 5678 90"),
    # digits of other scripts are digits too: typed that way, the model still reads a number
    ("card", "۴۱۱۱ ۱۱۱۱ ۱۱۱۱ ۱۱۱۱"),  # Persian
    ("phone", "call me on +４９ １７０ １２３４５６７"),  # full-width
    ("national_id", "my SSN is ١٢٣-٤٥-٦٧٨٩"),  # Arabic-Indic
    ("national_id", "passport 𝟏𝟐𝟑𝟒 𝟓𝟔𝟕𝟖 🛂"),  # mathematical bold, beyond the BMP
    ("address", "I live at ４２ Maple Street"),
    # written to slip past: full-width @, invisible characters, cards split another way
    ("email", "write to kid123＠gmail．com"),
    ("email", "kid\u200b123@gmail.com"),
    ("email", "kid123@gm\u00adail.com"),
    ("card", "4111.1111.1111.1111"),
    ("card", "4111/1111/1111/1111"),
    ("card", "3782.822463.10005"),
    ("card", "4111\u200b1111\u200b1111\u200b1111"),
    ("phone", "call +49\u2060170\u20601234567"),
    ("national_id", "my SSN is １２３－４５－６７８９"),
]
NOT_FOUND = [
    ("email", "the @ sign and example.com are fine apart"),
    ("phone", "the year 2026 and page 12"),
    ("phone", "the date 2026-11-20 is a Friday"),
    ("phone", "pi is 3.14159265"),
    ("phone", "the account 12345678 has no separators"),
    ("card", "4111 1111 1111 1112 fails the Luhn check"),
    ("card", "0000 0000 0000 0000"),
    ("card", "order number 1234567890123"),
    ("address", "I scored 42 points in the game"),
    ("address", "chapter 3 of the street photography book"),
    ("national_id", "the score was 123-45 in the end"),
    ("national_id", "the range 000-12-3456 is never issued"),
    ("phone", "🙂 12 🙂 34 🙂 56 🙂 78"),
    ("address", "42 Дом street"),  # not a capitalised Latin word before the street word
    # dots and slashes split a card only the way cards are printed
    ("card", "pi is 3.14159265358979 to 15 digits"),
    ("card", "version 4111.1111.1111.111.1"),
    ("card", "4111.1111/1111.1111"),
    ("phone", "the date 12/05/2024 was sunny"),
    ("phone", "ratio 1234/5678 of the whole"),
    ("national_id", "the year ２０２６ had 365 days"),
]


@pytest.mark.parametrize(("kind", "text"), FOUND)
def test_true_positives(kind: str, text: str) -> None:
    assert find_pii(text, [kind]) == [kind]


@pytest.mark.parametrize(("kind", "text"), NOT_FOUND)
def test_false_positives_avoided(kind: str, text: str) -> None:
    assert find_pii(text, [kind]) == []


def test_only_requested_kinds_are_reported() -> None:
    text = "mail kid@example.com or call +1 (555) 123-4567"
    assert find_pii(text, ["email", "phone", "card"]) == ["email", "phone"]
    assert find_pii("", ["email"]) == []


def _id_word_then_number_by_regex(text: str) -> bool:
    """The plain definition the run-anchored search must agree with."""
    lower = text.lower()
    after = re.compile(r"[^0-9]{0,20}[0-9](?:[ -]?[0-9]){7,15}")
    return any(
        after.match(text, m.start() + len(word))
        for word in _ID_WORDS
        for m in re.finditer(re.escape(word), lower)
    )


_PIECES = st.one_of(
    st.sampled_from([*_ID_WORDS, "SSN", "Steuer-ID", "Passport"]),
    st.text(alphabet="0123456789 -", max_size=20),
    st.text(alphabet="abcxyz :#\n", max_size=25),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=12).map("".join))
def test_id_word_search_agrees_with_the_plain_regex(text: str) -> None:
    assert ("id_word" in _digit_kinds(text)) == _id_word_then_number_by_regex(text)


_PIECES_TEXT = ["SSN ", "passport ", " Maple Street", "Hauptstraße ", "+", "(", ") ", ".", "AB "]
_DIGIT_SCRIPTS = [ord("0"), 0x0660, 0x06F0, 0x0966, 0x09E6, 0xFF10, 0x1D7CE]  # 𝟎 last


@given(
    st.lists(
        st.sampled_from([*_PIECES_TEXT, "🙂", "“", "1", "4", "5", "0", "-", " "]), max_size=40
    ).map("".join),
    st.sampled_from(_DIGIT_SCRIPTS),
)
def test_any_script_of_digits_finds_what_ascii_digits_find(text: str, zero: int) -> None:
    written = "".join(chr(zero + ord(ch) - 48) if "0" <= ch <= "9" else ch for ch in text)
    assert _digit_kinds(written) == _digit_kinds(text)


def test_digit_like_characters_that_are_not_decimal_digits_stay_text() -> None:
    assert _ascii_digits("x² ½ ① Ⅻ 🙂") == "x² ½ ① Ⅻ 🙂"
    assert _ascii_digits("“١٢”") == "“12”"


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("SSN: 123 456 789", True),
        ("ssn" + "x" * 20 + "12345678", True),
        ("ssn" + "x" * 21 + "12345678", False),  # too far from the word
        ("ssn 1a 12345678", False),  # another digit first
        ("passport 12-34-56-78", True),
        ("passport 1234567", False),  # too short
        ("Steuer-ID: 12  345 678 901", False),  # one space or dash at a time
        ("my ssn\n123456789012345678", True),  # 16 of them are enough
    ],
)
def test_id_word_then_number(text: str, found: bool) -> None:
    assert ("id_word" in _digit_kinds(text)) is found
    assert find_pii(text, ["national_id"]) == (["national_id"] if found else [])
