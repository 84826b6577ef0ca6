"""What kind of answer a question asks for, and whether a sentence holds one (pure).

A "when" question is answered by a year, a month or a weekday, but also by "each spring",
"every weekend" or "after the ban"; "how many" by digits, by "twelve" and by "dozens" or
"a few hundred". The forms are English function words and number words, not words of any
corpus. The answerer uses the match as one feature of a sentence's answer-bearing score
(:mod:`redbook_qa.answering.bearing`), and a question whose type no retrieved sentence holds as a
reason to doubt the answer.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

from redbook_qa.text.cjk import CJK_CHARS

AnswerType = Literal["number", "time", "person", "place", "reason", "polar", "other"]

# "one" is left out: "While one might expect…" is no count.
_SMALL = (
    "two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety"
)
_NUMBER = re.compile(
    r"\d|\b(?:" + _SMALL.replace(" ", "|") + r"|hundreds?|thousands?|millions?|billions?|"
    r"trillions?|dozens?|half|quarter|twice|double|triple|several|multiple|numerous|a few|"
    r"a couple|a handful|percent|per cent)\b|[%一二三四五六七八九十百千万亿]",
    re.IGNORECASE,
)
_MONTHS = (
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec"
)
_TIME_STRONG = re.compile(
    r"\b(?:1[0-9]\d\d|20\d\d|\d{1,2}(?:st|nd|rd|th)|\d{2,4}s|"
    + _MONTHS.replace(" ", "|")
    + r"|monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekends?|weekdays?|"
    r"spring|summer|autumn|fall|winter|morning|afternoon|evening|night|midnight|noon|"
    r"daily|weekly|monthly|yearly|annually|nightly|centur(?:y|ies)|decades?|years?|months?|"
    r"weeks?|days?|hours?|minutes?|seasons?|era|age|today|yesterday|tomorrow|tonight|"
    r"recently|currently|formerly|once|ago|nowadays|early|late|"
    r"(?:every|each|last|next|this|that) (?:\w+ )?\w+)\b|\d+年|\d+月|\d+日",
    re.IGNORECASE,
)
_TIME_WEAK = re.compile(
    r"\b(?:after|before|during|since|until|till|following|when|while|by the time|"
    r"in the wake of|at the (?:start|end|beginning)|then|now|first|finally)\b",
    re.IGNORECASE,
)
_REASON = re.compile(
    r"\b(?:because|since|due to|owing to|thanks to|as a result|result(?:s|ed|ing)? (?:in|from)|"
    r"lead(?:s|ing)? to|led to|caus(?:e|es|ed|ing)|reasons?|factors?|motivat\w*|driv(?:en|es|e)|"
    r"fuel(?:ed|led|s)?|stem(?:s|med)? from|so that|in order to|explain\w*|contribut\w*|"
    r"allow\w*|enabl\w*|help(?:s|ed)?|make(?:s)? it|therefore|hence|thus|desire|prefer\w*|"
    r"appeal\w*|draw|attract\w*|focus\w*|emphasi\w*|instead|rather than|unlike|in contrast)\b",
    re.IGNORECASE,
)
_PLACE = re.compile(
    r"\b(?:in|at|from|near|across|throughout|outside|inside|to) (?:the )?[A-Z][\w'-]+|"
    r"\b(?:city|country|countries|region|province|state|town|capital|continent|island|"
    r"abroad|overseas|global\w*|international\w*|worldwide)\b"
)
# A capitalised run not at the start of a sentence, or a CJK run: a name, roughly.
_PROPER = re.compile(
    r"(?<![.!?:]\s)(?<!^)\b[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*)*|[" + CJK_CHARS + "]{2,}"
)
_NEGATION = re.compile(r"\b(?:not|no|never|n't|none|nor|neither|without|only|just)\b", re.I)
# Negation proper, without "only"/"just": a question that adds one to what the text says
# ("What did X never do?") asks something else.
_WHY_NOT = re.compile(r"\bwhy not\b", re.IGNORECASE)
_STRICT_NEGATION = re.compile(r"\b(?:not|no|never|none|nor|neither|without)\b|n[’']t\b", re.I)

_QUESTION_TYPES: tuple[tuple[re.Pattern[str], AnswerType], ...] = (
    (
        re.compile(
            r"\b(?:how (?:many|much|old|long|far|big|large|often)|what (?:percentage|percent|"
            r"number|amount|proportion|share|fraction|size|age)|what is the (?:number|amount))\b"
            r"|多少|几",
            re.I,
        ),
        "number",
    ),
    (
        re.compile(
            r"\b(?:when|what (?:year|date|day|month|time|century|decade|season|period|era)|"
            r"which (?:year|date|day|month|century|decade|season|period|era)|how soon)\b"
            r"|哪一?年|什么时候|何时",
            re.I,
        ),
        "time",
    ),
    (re.compile(r"\b(?:who|whom|whose)\b|谁", re.I), "person"),
    (
        re.compile(
            r"\b(?:where|what (?:city|country|region|place|state|town|continent|location)|"
            r"which (?:city|country|region|place|state|town|continent|location))\b|哪里|在哪",
            re.I,
        ),
        "place",
    ),
    (
        re.compile(
            r"\b(?:why|what (?:caused|causes|made|makes|led|explains|drives))\b|为什么|为何", re.I
        ),
        "reason",
    ),
    (
        re.compile(
            r"^\s*(?:is|are|was|were|am|do|does|did|can|could|will|would|should|shall|has|have|"
            r"had|may|might|must)\b",
            re.I,
        ),
        "polar",
    ),
    # Any other wh-word: it asks for something no pattern above types, and a later
    # "who"/"when" in the same question belongs to a clause, not to what is asked.
    (re.compile(r"\b(?:what|which|how)\b", re.I), "other"),
)
_MULTI_ASPECT = re.compile(
    r"\b(?:why|how (?:do|does|did|is|are|can|could|has|have)|what (?:are|were) the|"
    r"what (?:factors|reasons|challenges|obstacles|downsides|advantages|benefits|ways|risks|"
    r"problems|issues|role)|which (?:factors|reasons)|explain\w*|describe\w*)\b|为什么|哪些",
    re.I,
)


@dataclass(frozen=True)
class QuestionShape:
    """What a question asks for, read once per question from its wording."""

    answer_type: AnswerType
    multi_aspect: bool  # asks for reasons, challenges, ways…: several quotes may answer it
    negated: bool  # "not", "never", "only": a polar or contrastive question
    proper_nouns: frozenset[str]  # names the question itself mentions


def question_shape(question: str) -> QuestionShape:
    """Read the expected answer type and shape of ``question``."""
    # The question's own wh-word comes first: "who" in "What is recommended to students who
    # know Java?" opens a relative clause, so the earliest match decides, a more specific
    # pattern winning a tie ("how many" over "how").
    found = [
        (m.start(), order, kind)
        for order, (pattern, kind) in enumerate(_QUESTION_TYPES)
        if (m := pattern.search(question))
    ]
    kind: AnswerType = min(found)[2] if found else "other"
    return QuestionShape(
        answer_type=kind,
        multi_aspect=bool(_MULTI_ASPECT.search(question)),
        negated=bool(_NEGATION.search(_WHY_NOT.sub("why", question))),
        proper_nouns=frozenset(m.lower() for m in _PROPER.findall(question)),
    )


@dataclass(frozen=True)
class Traits:
    """What forms of answer a sentence holds, read once per sentence text (cached)."""

    number: bool
    time_strong: bool
    time_weak: bool
    reason: bool
    place: bool
    negation: bool
    strict_negation: bool
    names: tuple[str, ...]  # lower-cased


@functools.lru_cache(maxsize=16_384)
def traits(text: str) -> Traits:
    """Read the answer forms of ``text`` (a corpus sentence recurs across questions)."""
    return Traits(
        number=bool(_NUMBER.search(text)),
        time_strong=bool(_TIME_STRONG.search(text)),
        time_weak=bool(_TIME_WEAK.search(text)),
        reason=bool(_REASON.search(text)),
        place=bool(_PLACE.search(text)),
        negation=bool(_NEGATION.search(text)),
        strict_negation=bool(_STRICT_NEGATION.search(text)),
        names=tuple(m.lower() for m in _PROPER.findall(text)),
    )


def type_evidence(text: str, shape: QuestionShape) -> tuple[float, float]:
    """How strongly ``text`` holds the kind of answer the question asks for: (strong, weak).

    ``strong`` is a form that answers the type by itself (a number, a date, a new name, a
    causal connective); ``weak`` a hint (a temporal preposition, a place noun).
    """
    kind = shape.answer_type
    t = traits(text)
    if kind == "number":
        return float(t.number), 0.0
    if kind == "time":
        return float(t.time_strong), float(t.time_weak)
    if kind == "person":
        return float(new_names(text, shape) > 0), float(bool(t.names))
    if kind == "place":
        return float(t.place and new_names(text, shape) > 0), float(t.place)
    if kind == "reason":
        return float(t.reason), 0.0
    if kind == "polar":
        return float(t.negation), 0.0
    return 0.0, 0.0


def has_type(text: str, shape: QuestionShape) -> bool:
    """Say whether ``text`` could answer a question of a strict type (number or time).

    Other types never rule a sentence out: a "who" answer may be "regular folks".
    """
    if shape.answer_type == "number":
        return traits(text).number
    if shape.answer_type == "time":
        return traits(text).time_strong or traits(text).time_weak
    return True


def new_names(text: str, shape: QuestionShape) -> int:
    """Count the names in ``text`` that the question does not mention."""
    return sum(1 for name in traits(text).names if name not in shape.proper_nouns)


def negation_mismatch(text: str, question: str) -> bool:
    """Say whether exactly one of ``text`` and ``question`` is negated.

    "Why not Facebook?" asks why the alternative lost, not about a negated fact.
    """
    asked = traits(_WHY_NOT.sub("why", question)).strict_negation
    return traits(text).strict_negation != asked
