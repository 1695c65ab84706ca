"""Host names and host patterns of the catalog, and the index that finds a host's service.

Three forms, all lower-case, no port, scheme or path:

- ``api.openai.com``: that name only;
- ``*.openai.azure.com``: any name one or more labels below ``openai.azure.com`` (not the
  name itself);
- a ``*`` inside a label, or a whole label ``*`` after the first: ``*-aiplatform.googleapis.com``
  (the first label ends in ``-aiplatform``), ``bedrock-runtime.*.amazonaws.com`` (exactly one
  label in the middle). Within a label ``*`` stands for one or more letters, digits, ``-`` or
  ``_``, never a dot. The labels right of the last ``*`` (the *anchor*) are literal.

``HostIndex.find`` looks a name up with one dict probe for exact names and then, for each
suffix of the name (a handful), one probe for label patterns anchored there and one for
``*.suffix``; the patterns under one anchor are few (a region-style name or two), so a lookup
costs a few dict probes and at most a couple of short regex matches.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["HostIndex", "HostSpec", "normalize_host", "parse_host", "trie_regex"]

Kind = Literal["exact", "suffix", "pattern"]

_LABEL = re.compile(r"[a-z0-9_-]+")
_LABEL_PATTERN = re.compile(r"[a-z0-9_*-]+")
_IN_LABEL = r"[^.:/\s]+"  # what one "*" inside a label stands for (names are normalised)
_LABELS = r"(?:[^.:/\s]+\.)+"  # what a leading "*." stands for: one or more labels
_ATOM = re.compile(r"\(\?:\[\^\.:/\\s\]\+\\\.\)\+|\[\^\.:/\\s\]\+|\\.|.", re.S)


def normalize_host(host: str | None) -> str:
    """A host as the catalog keys it: lower-case, no port, brackets or trailing dot."""
    if not isinstance(host, str):
        return ""
    name = host.strip().lower()
    if name.startswith("["):  # [IPv6]:port
        return name[1 : name.find("]")] if "]" in name else ""
    if name.count(":") == 1:
        name = name.partition(":")[0]
    return name.rstrip(".")


@dataclass(frozen=True, slots=True)
class HostSpec:
    """One host entry of a service, parsed.

    ``anchor`` is the literal part: the name itself (exact), the suffix (``*.suffix``) or the
    labels right of the last ``*`` (pattern). ``regex`` matches exactly the names the entry
    stands for (no port, no trailing dot).
    """

    text: str
    kind: Kind
    anchor: str
    regex: str

    def matches(self, name: str) -> bool:
        """Whether the normalised host *name* is one this entry stands for."""
        return re.fullmatch(self.regex, name) is not None


def parse_host(text: str) -> HostSpec:
    """*text* as a host entry; ValueError saying what is wrong with it."""
    host = text.strip().lower().rstrip(".")
    labels = host.split(".")
    if len(labels) < 2 and "*" in host:
        raise ValueError(f"host {text!r}: a pattern needs a literal domain after the '*'")
    starred = [i for i, label in enumerate(labels) if "*" in label]
    if not starred:
        if not all(_LABEL.fullmatch(label) for label in labels):
            raise ValueError(f"host {text!r} is not a host name")
        return HostSpec(host, "exact", host, re.escape(host))
    last = starred[-1]
    anchor = ".".join(labels[last + 1 :])
    if not anchor or not all(_LABEL.fullmatch(label) for label in labels[last + 1 :]):
        raise ValueError(
            f"host {text!r}: the labels after the last '*' must be a literal domain name"
        )
    if starred == [0] and labels[0] == "*":
        return HostSpec(host, "suffix", anchor, _LABELS + re.escape(anchor))
    if anchor.count(".") < 1:
        raise ValueError(
            f"host {text!r}: a pattern with '*' inside a label needs at least two literal "
            "labels after it (such as example.com)"
        )
    parts = []
    for i, label in enumerate(labels[: last + 1]):
        if i == 0 and label == "*":
            parts.append(_LABELS)
            continue
        if not _LABEL_PATTERN.fullmatch(label) or "**" in label:
            raise ValueError(
                f"host {text!r}: label {label!r} may hold letters, digits, '-', '_' and "
                "single '*' only"
            )
        pieces = [re.escape(piece) for piece in label.split("*")]
        parts.append(_IN_LABEL.join(pieces) + r"\.")
    return HostSpec(host, "pattern", anchor, "".join(parts) + re.escape(anchor))


class HostIndex[T]:
    """Host entries to values; a later entry wins a host written the same way twice."""

    __slots__ = ("_exact", "_suffix", "_patterns")

    def __init__(self, entries: Iterable[tuple[HostSpec, T]] = ()) -> None:
        self._exact: dict[str, T] = {}
        self._suffix: dict[str, T] = {}  # "*.suffix" keyed by suffix
        grouped: dict[str, dict[str, tuple[re.Pattern[str], T]]] = {}
        for spec, value in entries:
            if spec.kind == "exact":
                self._exact[spec.anchor] = value
            elif spec.kind == "suffix":
                self._suffix[spec.anchor] = value
            else:
                grouped.setdefault(spec.anchor, {})[spec.text] = (re.compile(spec.regex), value)
        self._patterns = {anchor: tuple(found.values()) for anchor, found in grouped.items()}

    def find(self, name: str) -> T | None:
        """The value of the most specific entry for normalised *name*: the exact name, else
        the longest anchor (a label pattern before ``*.suffix`` at the same anchor)."""
        found = self._exact.get(name)
        if found is not None:
            return found
        patterns = self._patterns
        dot = name.find(".")
        while dot != -1:
            suffix = name[dot + 1 :]
            if patterns:
                for regex, value in patterns.get(suffix, ()):
                    if regex.fullmatch(name):
                        return value
            found = self._suffix.get(suffix)
            if found is not None:
                return found
            dot = name.find(".", dot + 1)
        return None


def trie_regex(regexes: Iterable[str]) -> str:
    """One regex matching exactly what any of *regexes* (HostSpec.regex values) matches,
    with shared prefixes merged, so a search tries a handful of branches instead of every
    entry (mitmproxy tries each ``allow_hosts`` pattern against every new connection)."""
    root: dict[str, dict[str, Any]] = {}
    for regex in regexes:
        node = root
        for atom in _ATOM.findall(regex):
            node = node.setdefault(atom, {})
        node[""] = {}  # end of one entry
    return _emit(root)


def _emit(node: dict[str, dict[str, Any]]) -> str:
    ends = "" in node
    branches = [atom + _emit(child) for atom, child in sorted(node.items()) if atom]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if ends:
        return body + "?" if len(branches) > 1 else "(?:" + body + ")?"
    return body
