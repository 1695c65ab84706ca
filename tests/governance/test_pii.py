"""Personal-data detectors: what they must find, and ordinary text they must leave alone."""

from __future__ import annotations

import pytest

from hearthgate.governance.pii import find_pii

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
