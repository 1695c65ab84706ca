"""Prompt topics: built-in phrase lists for ``when.prompt.topics`` (``self_harm``).

The phrases are data (``topics.json`` beside this module, one list per language: English,
German, French, Spanish), compiled once. A prompt is compared after folding case, accents,
apostrophes and punctuation, phrase by whole words. The lists are tuned to miss rather than
to flag: they hold first-person statements ("i want to kill myself", "ich will nicht mehr
leben"), not the words an essay on Romeo and Juliet or a history of the plague uses, and a
prompt that also names a story, a character, a poem, an essay ... (the list's ``context``) is
not flagged. A finding names the topic only, never the words of the prompt.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_WORD = re.compile(r"[^\w]+")
_APOSTROPHES = str.maketrans("", "", "'’ʼ`´")


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    phrases: tuple[str, ...]  # normalised, padded with spaces: " i want to die "
    context: tuple[str, ...]  # normalised word starts: " novel"


def fold(text: str) -> str:
    """Lower case, no accents or apostrophes, words split by single spaces, padded."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    words = _WORD.split(plain.translate(_APOSTROPHES).replace("_", " "))
    return " " + " ".join(w for w in words if w) + " "


@lru_cache(maxsize=1)
def _load() -> dict[str, Topic]:
    """The phrase lists, read and folded on first use: importing this module (as every CLI
    command does, through the snapshot) costs neither importlib.resources nor the folding."""
    from importlib import resources

    raw: dict[str, Any] = json.loads(
        resources.files("governance").joinpath("topics.json").read_text("utf-8")
    )
    topics = {}
    for name, languages in raw.items():
        if name.startswith("_"):
            continue
        phrases = {fold(p) for lang in languages.values() for p in lang["phrases"]}
        context = {fold(w).rstrip() for lang in languages.values() for w in lang["context"]}
        topics[name] = Topic(name, tuple(sorted(phrases)), tuple(sorted(context)))
    return topics


TOPICS: dict[str, Topic]  # the phrase lists by topic name, loaded on first use


def __getattr__(name: str) -> Any:
    if name == "TOPICS":
        return _load()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def find_topic(text: str, names: tuple[str, ...]) -> str | None:
    """The first of ``names`` the prompt is about, or None."""
    if not text or not names:
        return None
    folded = fold(text)
    for name in names:
        topic = _load()[name]
        if any(p in folded for p in topic.phrases) and not any(c in folded for c in topic.context):
            return name
    return None
