"""A policy's keywords searched in a prompt's folded view, all of them in one pass.

Searching 100 KB once per keyword costs about 45 µs a keyword; a parent's list of thirty
would cost more than everything else the scan does. ``ahocorasick_rs`` (Rust's
``aho-corasick`` crate, whose SIMD prefilter skips text no keyword can start in) finds any of
them in one pass: about 7 µs per 100 KB for six keywords. Where that package has no wheel
(32-bit ARM), each keyword is searched in turn: the same answer, slower.

The automaton is built on first use per keyword list and kept (the compiled rules snapshot
is pickled for the CLI, and the automaton cannot be; it stays out of it).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

__all__ = ["find_keyword"]

_Finder = Callable[[bytes], int | None]
_WINDOW = 4096  # bytes searched per call: at most this many matches listed before an answer


def find_keyword(view: bytes, keywords: tuple[bytes, ...]) -> int | None:
    """The index in ``keywords`` of one found in ``view`` (the leftmost in the text), or
    None. Both are folded (``textnorm.folded`` / ``fold_keyword``); none is empty."""
    if not keywords:
        return None
    return _finder(keywords)(view)


@lru_cache(maxsize=64)
def _finder(keywords: tuple[bytes, ...]) -> _Finder:
    try:
        import ahocorasick_rs  # noqa: PLC0415 - its 0.7 MiB only once a keyword is searched
    except ImportError:
        return lambda view: _one_by_one(view, keywords)
    # leftmost-first: the first match in the text is reported, whichever keyword it is;
    # only whether there is one matters (the reason names it)
    automaton = ahocorasick_rs.BytesAhoCorasick(
        keywords, matchkind=ahocorasick_rs.MatchKind.LeftmostFirst
    )

    reach = max(map(len, keywords)) - 1  # a keyword may start in a window and end after it
    search = automaton.find_matches_as_indexes

    def find(view: bytes) -> int | None:
        # window by window: the automaton lists every match of what it is given, and a
        # prompt of nothing but a short keyword would make that list as long as the prompt
        if len(view) <= _WINDOW:
            hits = search(view)
            return hits[0][0] if hits else None
        whole = memoryview(view)
        for start in range(0, len(view), _WINDOW):
            hits = search(whole[start : start + _WINDOW + reach])
            if hits:
                return hits[0][0]
        return None

    return find


def _one_by_one(view: bytes, keywords: tuple[bytes, ...]) -> int | None:
    """The same answer as the automaton's: the keyword that starts first in the text (the
    earlier one in the list when two start at one place; leftmost-first prefers it too)."""
    best: tuple[int, int] | None = None
    for index, keyword in enumerate(keywords):
        at = view.find(keyword, 0, len(view) if best is None else best[0] + len(keyword))
        if at != -1 and (best is None or at < best[0]):
            best = (at, index)
    return None if best is None else best[1]
