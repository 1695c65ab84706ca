"""The fast regex path must agree with plain case-insensitive matching, always."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hearthgate.governance.prompt_regex import compile_prompt_regex

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
    assert not compile_prompt_regex(r"\bGPT\b").on_lower
    assert not compile_prompt_regex(r"\Wfoo").on_lower


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
