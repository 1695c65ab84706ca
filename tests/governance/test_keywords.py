"""Keywords found in one pass: the same answer as searching each keyword in turn."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance import keywords
from governance.keywords import find_keyword

WORDS = (b"cheat", b"homework answers", b"casino", b"vape", b"diet pills")


def test_the_one_pass_matcher_is_the_one_in_use() -> None:
    pytest.importorskip("ahocorasick_rs")
    assert keywords._finder(WORDS).__name__ == "find"  # not the one-by-one fallback


@pytest.mark.parametrize(
    ("view", "expected"),
    [
        (b"what is a casino", 2),
        (b"i want to vape and to cheat", 3),  # the leftmost in the text
        (b"homework answersvape", 1),
        (b"home work answers, a cassino, va pe", None),
        (b"", None),
        (b"\xc3\xa9l\xc3\xa8ve: diet pills", 4),  # UTF-8 around it
    ],
)
def test_finds_the_leftmost_keyword_or_none(view: bytes, expected: int | None) -> None:
    assert find_keyword(view, WORDS) == expected
    assert find_keyword(view, ()) is None


def test_a_keyword_inside_another_match_still_counts() -> None:
    # leftmost-first reports one match per stretch of text: whether any keyword is there
    # is all that is asked, and a shorter keyword inside a longer one is still found
    assert find_keyword(b"xx cheats yy", (b"cheats", b"heat")) in (0, 1)
    assert find_keyword(b"xx heat yy", (b"cheats", b"heat")) == 1


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(min_size=1, max_size=4), min_size=1, max_size=6).map(tuple),
    st.binary(max_size=200),
)
def test_the_fallback_reports_the_keyword_the_automaton_reports(
    words: tuple[bytes, ...], view: bytes
) -> None:
    index = find_keyword(view, words)
    assert index == keywords._one_by_one(view, words)  # the same keyword, on any machine
    if index is not None:
        assert words[index] in view


@pytest.mark.parametrize("at", [0, 4090, 4093, 4095, 4096, 8190, 20_000, 99_990])
def test_a_keyword_across_the_search_windows_is_found(at: int) -> None:
    view = bytearray(b"x" * 100_000)
    view[at : at + 6] = b"casino"
    assert find_keyword(bytes(view), WORDS) == 2
    assert find_keyword(b"x" * 100_000, WORDS) is None


def test_a_prompt_made_of_one_keyword_is_answered_from_its_first_window() -> None:
    words = (b"a", b"vape")
    assert find_keyword(b"a" * 100_000, words) == 0
    assert find_keyword(b"vape " * 20_000, words) == 1  # "vape" starts before its "a"
