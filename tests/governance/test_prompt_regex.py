"""The fast regex path must agree with plain case-insensitive matching, always."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from governance.prompt_regex import compile_prompt_regex

PATTERNS = [
    r"\bhow (?:do|can) i (?:hack|break into)\b",
    r"\bessay\b.*\bfor me\b",
    r"\bignore (?:all|previous) instructions\b",
    r"casino",
    r"\d{4}-\d{4}",
    r"\bGPT\b",
    r"\Wfoo",
    r"\b(?:vape|vaping)",
    r"caf\u00e9",
    r"vap(?:e|ing) pens?",
    r"(?x) ignore \s all",
    r"ha?ck",
    r"(?:casino|gambling)s?\b",
    # a leading \b that belongs to one alternative only
    r"\bc|x",
    r"\bfor|me",
    # capitals spelled as escapes or ranges
    r"\x47pt",
    r"[\x41-\x5a]pt",
    r"\N{LATIN CAPITAL LETTER G}pt",
    # flags that change what \b and \w mean
    r"(?a)\bcaf",
    r"(?a:\w)afé",
    # letters IGNORECASE pairs with something other than their lower case
    r"\bis\b",
    r"ks",
    r"[a-z]s\b",
    r"σ",
    r"\u0131",
    r"ſ",
    r"µ",
    r"в",
    # flags taken away inside a group: case-sensitive there
    r"(?-i:abc)",
    r"x(?-i:y)",
    # a leading \b before a body that can match nothing
    r"\b\w*",
    r"\b.*",
    r"\b^",
]
WORDS = [
    "how",
    "do",
    "can",
    "i",
    "hack",
    "break",
    "into",
    "essay",
    "for",
    "me",
    "ignore",
    "all",
    "previous",
    "instructions",
    "casino",
    "1234-5678",
    "GPT",
    "gpt",
    "foo",
    "_",
    "vape",
    "vaping",
    "café",
    "CAFÉ",
    "-",
    ".",
    " ",
    "\n",
    "x",
    "é",
    "İ",
    "is",
    "ks",
    "GPT",
    "Caf",
    "ı",
    "ſ",
    "K",  # KELVIN SIGN
    "ς",
    "Σ",
    "σ",
    "µ",
    "μ",
    "\u0345",
    "ABC",
    "abc",
    "XY",
    "в",
    "ᲀ",
    "Дом",
]


@pytest.mark.parametrize("source", PATTERNS)
@given(st.lists(st.sampled_from(WORDS), max_size=25).map("".join))
def test_same_answer_as_ignorecase(source: str, text: str) -> None:
    fast = compile_prompt_regex(source)
    reference = re.compile(source, re.IGNORECASE).search(text) is not None
    assert (fast.search(text, text.lower()) is not None) == reference


def test_case_safe_patterns_take_the_fast_path() -> None:
    assert compile_prompt_regex(r"\bcasino\b").on_lower
    assert compile_prompt_regex(r"\bcasino\b").word_start
    assert compile_prompt_regex(r"\b(?:vape|vaping)").word_start
    assert compile_prompt_regex(r"[a-z]+ing\b").on_lower
    assert not compile_prompt_regex(r"\bGPT\b").on_lower
    assert not compile_prompt_regex(r"\Wfoo").on_lower


@pytest.mark.parametrize(
    "source",
    [r"\x47pt", r"[\x41-\x5a]", r"(?a)\bcaf", r"(?a:x)", r"\u0131", "ſ", r"(?-i:abc)", r"x(?-i:y)"],
)
def test_patterns_that_are_not_case_safe_take_the_slow_path(source: str) -> None:
    assert not compile_prompt_regex(source).on_lower


def test_leading_boundary_of_one_alternative_is_not_stripped() -> None:
    compiled = compile_prompt_regex(r"\bc|x")
    assert compiled.on_lower
    assert not compiled.word_start
    assert compiled.search("ax", "ax") == "x"


@pytest.mark.parametrize(("text", "found"), [("ıs it", "ıs"), ("ſo it is", "is"), ("is", "is")])
def test_prompt_with_an_odd_case_pair_is_matched_the_slow_way(text: str, found: str) -> None:
    compiled = compile_prompt_regex(r"\b[a-zı]s\b")
    assert compiled.search(text, text.lower()) == found


@pytest.mark.parametrize(
    ("source", "prefix", "required"),
    [
        (r"\bhow (?:do|can) i (?:hack|break into)\b", "how ", "how "),
        (r"\bignore (?:all|previous) instructions\b", "ignore ", " instructions"),
        (r"vap(?:e|ing) pens?", "vap", " pen"),
        (r"ha?ck", "", ""),  # "h" alone is too short to be worth a find
        (r"(?:casino|gambling)s?\b", "", ""),
        (r"(?i)abc", "", ""),
    ],
)
def test_literals_every_match_needs(source: str, prefix: str, required: str) -> None:
    compiled = compile_prompt_regex(source)
    assert (compiled.prefix, compiled.required) == (prefix, required)


def test_a_prompt_is_slowed_only_by_partners_of_the_patterns_own_letters() -> None:
    casino = compile_prompt_regex(r"\bcasino\b")
    assert casino.odd_partners is not None
    assert casino.odd_partners.search("ıſ") and not casino.odd_partners.search("вдост σς")
    sigma = compile_prompt_regex("σ")
    assert sigma.on_lower  # Greek patterns keep the fast path...
    assert sigma.search("οσ", "οσ") == "σ"
    # ...and a final sigma, which lower() writes as "ς", still matches, the slow way
    assert sigma.search("ΟΔΟΣ", "ΟΔΟΣ".lower()) == "Σ"
    assert sigma.search("οδος", "οδος") == "ς"
    assert compile_prompt_regex("xyz").odd_partners is None


@pytest.mark.parametrize("source", [r"\b\w*", r"\b.*", r"\b[a-z]*", r"\b^"])
@pytest.mark.parametrize("text", ["", " ", "  x", "x "])
def test_an_empty_match_where_the_boundary_fails_ends_the_search(source: str, text: str) -> None:
    """It used to search the same empty match at the end of the prompt forever."""
    reference = re.compile(source, re.IGNORECASE).search(text)
    found = compile_prompt_regex(source).search(text, text.lower())
    assert (found is not None) == (reference is not None)
