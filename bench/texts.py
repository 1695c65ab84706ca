"""Realistic prompt text: homework-style prose with numbers, without personal data by default.

``prose`` is deterministic for a seed. ``assert_clean`` proves that text holds nothing the
PII detectors, keywords or regexes would flag — so a "no hit" measurement really scans to the
end instead of stopping at an accidental match.
"""

from __future__ import annotations

import random

from governance.pii import find_pii

PII_KINDS = ("email", "phone", "card", "address", "national_id")
EMAIL_HIT = "You can write to me at alice.smith@example.com if that helps. "
PHONE_HIT = "Or call my mum on +49 30 1234 5678 after school. "

SENTENCES = (
    "Photosynthesis is the process plants use to turn sunlight, water and carbon dioxide "
    "into glucose and oxygen.",
    "The chlorophyll in the leaves absorbs mostly red and blue light and reflects green.",
    "In 1969 the Apollo 11 mission landed two astronauts on the surface of the Moon.",
    "Can you explain why the sky looks blue during the day but red at sunset?",
    "Water boils at 100 degrees Celsius at sea level, but at lower temperatures on mountains.",
    "My teacher asked us to write a short essay about the causes of the French Revolution.",
    "Please check my answer: the square root of 144 is 12, and 12 times 12 gives 144.",
    "The mitochondria are often called the powerhouse of the cell because they release energy.",
    "What is the difference between weather and climate, in simple words?",
    "Shakespeare wrote Romeo and Juliet near the end of the sixteenth century.",
    "A triangle with sides of 3, 4 and 5 units is a right triangle.",
    "Explain how the water cycle moves water between oceans, clouds and rivers.",
    "The Roman Empire split into an eastern and a western half in the fourth century.",
    "I think the main character changes because she learns to trust her friends.",
    "How many moons does Jupiter have, and which one is the largest?",
    "Volcanoes form where magma from deep inside the Earth reaches the surface.",
    "Could you give me three tips to remember the order of the planets?",
    "The novel is set in a small village during a very cold winter.",
    "Fractions can be added once they share a common denominator.",
    "Our class grew beans in cups and measured them every morning for two weeks.",
    "Gravity pulls objects toward each other, and the pull is stronger for bigger masses.",
    "Why do leaves change colour in autumn before they fall from the trees?",
    "The Great Wall of China was built over many centuries by different dynasties.",
    "Write the equation in words: two apples plus three apples make five apples.",
    "An ecosystem includes the living things in an area and the world around them.",
    "She played the violin every evening and practised scales before her lessons.",
    "Light travels faster than sound, which is why we see lightning before thunder.",
    "The recipe needs flour, sugar, eggs and a little butter, mixed until smooth.",
    "Is it correct to say that bats are mammals and not birds?",
    "Magnets attract iron, and opposite poles pull toward each other.",
)


# prose beyond ASCII: each takes another path through normalisation (textnorm)
OTHER_PROSE = {
    "English with typographic quotes": tuple(
        s.replace(" the ", " “the” ").replace("'", "’") + " — 🙂" for s in SENTENCES[:10]
    ),
    "German": (
        "Die Photosynthese wandelt Licht, Wasser und Kohlendioxid in Zucker und Sauerstoff um.",
        "Meine Hausaufgabe handelt von der Französischen Revolution und ihren Ursachen.",
        "Warum färben sich die Blätter im Herbst, bevor sie von den Bäumen fallen?",
        "Die Schülerinnen maßen jeden Morgen, wie groß ihre Bohnen gewachsen waren.",
    ),
    "Russian": (
        "Фотосинтез — это процесс, с помощью которого растения превращают свет в энергию.",
        "Почему небо днём голубое, а на закате становится красным?",
        "Мой учитель попросил написать сочинение о причинах Французской революции.",
        "Сколько спутников у Юпитера и какой из них самый большой?",
    ),
    "Japanese": (
        "光合成は、植物が太陽の光と水と二酸化炭素からブドウ糖と酸素を作る仕組みです。",
        "空が昼間は青く、夕方は赤く見えるのはなぜですか。",
        "先生にフランス革命の原因について短い作文を書くように言われました。",
    ),
}


def prose(chars: int, seed: int = 0, sentences: tuple[str, ...] = SENTENCES) -> str:
    """``chars`` characters of sentences in paragraphs, the same for the same seed."""
    rng = random.Random(seed)
    parts: list[str] = []
    size = 0
    while size < chars:
        sentence = rng.choice(sentences)
        sep = "\n\n" if parts and rng.random() < 0.2 else " "
        parts.append(sep + sentence if parts else sentence)
        size += len(parts[-1])
    return "".join(parts)[:chars]


def salted(text: str, tag: str) -> str:
    """``text`` made unique by a closing word built from ``tag`` (letters only: no digits or
    ``@`` that a detector could take for personal data)."""
    word = "".join(chr(ord("a") + b % 26) for b in tag.encode())
    return f"{text} Thanks {word}."


def assert_clean(text: str) -> None:
    """Raise if any PII detector finds something in ``text``."""
    found = find_pii(text, PII_KINDS)
    if found:
        raise AssertionError(f"bench text unexpectedly contains {found}")
