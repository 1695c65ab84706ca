"""Section 3: what scanning a prompt costs, per 100 KB of text.

One policy asks for every kind of personal data (email, phone, card, address, national_id)
plus keywords and regexes; it is compiled by the real rules loader and tested with
``policy_match.matches`` — the call the policy stage makes, normalisation included (an ASCII
prompt is its own normalised form; keywords are searched in its folded view). The no-hit
row on English prose is the one held to the target; rows for text with typographic quotes,
German, Russian and Japanese prose show what normalising other text costs. Each row is the
median of ``repeats`` runs, each on a text of its own (the same prose with a different
closing word), so no cache answers for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from bench.stats import median
from bench.texts import EMAIL_HIT, OTHER_PROSE, PII_KINDS, assert_clean, prose, salted
from governance.facts import Endpoint, RequestFacts
from governance.pii import find_pii
from governance.policy_match import matches
from proxy.identity import resolve
from proxy.rules.loader import load_rules_text

TEXT_CHARS = 100_000
TARGET_US = 1000.0  # about 1 ms per 100 KB
KEYWORD_HIT = "Can you find me a cheat for the maths test? "
RULES = r"""
version: 1
groups: {kids: {}}
people: {alice: {groups: [kids]}}
devices: {alice-laptop: {person: alice, ips: [192.168.1.50]}}
policies:
  - name: scan-everything
    when:
      groups: [kids]
      prompt:
        pii: [email, phone, card, address, national_id]
        keywords: [cheat, "homework answers", gambling, casino, vape, "diet pills"]
        regex:
          - '\bhow (?:do|can) i (?:hack|break into)\b'
          - '\bignore (?:all|previous) instructions\b'
    action: alert
"""


@dataclass(frozen=True)
class ScanRow:
    label: str
    us: float  # per 100 KB
    found: str
    target: bool  # whether this row is held against the target


def _timed[T](call: Callable[[str], T], texts: list[str]) -> tuple[float, T]:
    """(median µs per 100 KB, the last result) of ``call`` once on each of ``texts``."""
    times, out = [], call(texts[0])  # warm-up, on a text of its own
    for text in texts[1:]:
        t0 = time.perf_counter()
        out = call(text)
        times.append(time.perf_counter() - t0)
    return median(times) * 1e6 * 100_000 / TEXT_CHARS, out


def _with_early(text: str, insert: str, at: int = 500) -> str:
    return (text[:at] + " " + insert + text[at:])[:TEXT_CHARS]


def run(repeats: int) -> list[ScanRow]:
    snap = load_rules_text(RULES, "bench-scan.yaml")
    policy = snap.policies[0]
    ident = resolve(snap, "192.168.1.50")
    clean = prose(TEXT_CHARS, seed=42)
    assert_clean(clean)

    def facts(text: str) -> RequestFacts:
        return RequestFacts(
            request_id="scan",
            identity=ident,
            host="api.openai.com",
            provider="openai",
            method="POST",
            path="/v1/chat/completions",
            endpoint=Endpoint.CHAT,
            model="gpt-4o-mini",
            prompt=text,
            prompt_chars=len(text),
            body_inspected=True,
        )

    def variants(text: str, tag: str) -> list[str]:
        # a new text for every call: hearthgate caches per prompt text (as it may, within
        # one request), so repeating one string would time cache hits, not scanning
        return [salted(text, f"{tag}{i}") for i in range(repeats + 1)]

    if matches(policy, facts(salted(clean, "check")))[0]:
        raise AssertionError("the clean bench text matches the scan policy")
    rows = []
    cases = (
        ("whole policy, no hit (worst case)", clean, True),
        ("whole policy, keyword hit at 500 chars", _with_early(clean, KEYWORD_HIT), False),
        ("whole policy, e-mail hit at 500 chars", _with_early(clean, EMAIL_HIT), False),
    )
    for n, (label, text, held) in enumerate(cases):
        us, (hit, detail) = _timed(lambda t: matches(policy, facts(t)), variants(text, f"c{n}"))
        rows.append(ScanRow(label, us, detail if hit else "no hit", held))
    for n, (language, sentences) in enumerate(OTHER_PROSE.items()):
        text = prose(TEXT_CHARS, seed=7, sentences=sentences)
        us, (hit, detail) = _timed(lambda t: matches(policy, facts(t)), variants(text, f"o{n}"))
        rows.append(ScanRow(f"whole policy, no hit, {language}", us, detail or "no hit", False))
    if policy.regexes:

        def regexes(text: str) -> list[str | None]:
            lower = text.lower()
            return [r.search(text, lower) for r in policy.regexes]

        us, _ = _timed(regexes, variants(clean, "regex"))
        rows.append(ScanRow("of which: the regexes", us, "no hit", False))
    for kind in PII_KINDS:
        us, _ = _timed(partial(_find, kind), variants(clean, kind))
        rows.append(ScanRow(f"of which: pii {kind} alone", us, "no hit", False))
    return rows


def _find(kind: str, text: str) -> list[str]:
    return find_pii(text, [kind])
