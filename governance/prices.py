"""Estimated cost of a request, for ``cost_per_day`` / ``cost_per_week`` quotas.

Prices are US dollars per million tokens, matched by model glob, the rules file's ``prices``
first, then a small built-in table of list prices (approximate; providers change them — put
your own in the rules file when it matters). Unknown models cost nothing.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Price:
    pattern: re.Pattern[str]
    input: float  # USD per 1M input tokens
    output: float  # USD per 1M output tokens


def _p(glob: str, inp: float, out: float) -> tuple[str, float, float]:
    return glob, inp, out


# most specific first: the first match wins
BUILTIN: tuple[tuple[str, float, float], ...] = (
    _p("gpt-4o-mini*", 0.15, 0.60),
    _p("gpt-4o*", 2.50, 10.00),
    _p("gpt-4.1-nano*", 0.10, 0.40),
    _p("gpt-4.1-mini*", 0.40, 1.60),
    _p("gpt-4.1*", 2.00, 8.00),
    _p("gpt-5-nano*", 0.05, 0.40),
    _p("gpt-5-mini*", 0.25, 2.00),
    _p("gpt-5*", 1.25, 10.00),
    _p("o4-mini*", 1.10, 4.40),
    _p("o3-mini*", 1.10, 4.40),
    _p("o3*", 2.00, 8.00),
    _p("o1-mini*", 1.10, 4.40),
    _p("o1*", 15.00, 60.00),
    _p("claude-*haiku*", 0.80, 4.00),
    _p("claude-*sonnet*", 3.00, 15.00),
    _p("claude-*opus*", 15.00, 75.00),
    _p("gemini-*flash-lite*", 0.10, 0.40),
    _p("gemini-*flash*", 0.30, 2.50),
    _p("gemini-*pro*", 1.25, 10.00),
    _p("mistral-small*", 0.10, 0.30),
    _p("mistral-large*", 2.00, 6.00),
    _p("deepseek-chat*", 0.27, 1.10),
    _p("deepseek-reasoner*", 0.55, 2.19),
)


def compile_prices(extra: Iterable[tuple[str, float, float]] = ()) -> tuple[Price, ...]:
    return tuple(
        Price(re.compile(fnmatch.translate(glob.lower()), re.IGNORECASE), i, o)
        for glob, i, o in (*extra, *BUILTIN)
    )


def estimate_cost(
    prices: tuple[Price, ...], model: str | None, tokens_in: int, tokens_out: int
) -> float:
    if not model:
        return 0.0
    for price in prices:
        if price.pattern.match(model):
            return (tokens_in * price.input + tokens_out * price.output) / 1_000_000
    return 0.0
