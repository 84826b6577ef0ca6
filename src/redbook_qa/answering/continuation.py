"""Continuation: does a quote need the sentence after it to answer? (pure).

The best-ranked sentence often frames the answer and the next one gives it ("…Xiaohongshu
appears to foster a different environment." then "American users … describe using it as a means
to connect with friends…"). On SQuAD 2.0, when the ranking model's first sentence misses the
answer, the next sentence holds it for 5.5 % of answerable questions (the previous one for
2.3 %); on the seeds questions for 8.2 %.

A logistic regression, fitted by ``make train-answering`` on (first sentence, next sentence)
pairs, reads both sentences' bearing features and the two models' probabilities and gives the
chance that the next sentence holds the answer the first one lacks. Quote [1] takes the next
sentence with it at or above :data:`CONTINUE_ABOVE`. Measured on articles the model never saw
(2,205 SQuAD questions whose first sentence has a next one; 70 seeds questions): the first quote
holds the answer 0.784 → 0.818 on SQuAD and 0.657 → 0.686 on the seeds, with 9 % and 10 % of
first quotes widened by one sentence (0.3: 0.811 with 6 %; 0.1: 0.832 with 14 %).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from redbook_qa.answering.answer_types import QuestionShape
from redbook_qa.answering.bearing import BEARING_FEATURES, bearing_features, load_model
from redbook_qa.models import Evidence

CONTINUE_ABOVE = 0.2

CONTINUATION_FEATURES = (
    *(f"first_{name}" for name in BEARING_FEATURES),
    *(f"next_{name}" for name in BEARING_FEATURES),
    "first_rank",
    "first_bearing",
    "next_bearing",
)


def following(e: Evidence, evidence: Sequence[Evidence]) -> Evidence | None:
    """The sentence right after ``e`` in its chunk, if the context holds it."""
    if not e.after:
        return None
    start = e.end + len(e.after)
    return next((x for x in evidence if x.source == e.source and x.start == start), None)


def continuation_features(
    first: Mapping[str, float],
    after: Mapping[str, float],
    *,
    rank: float,
    bearing: float,
    next_bearing: float,
) -> dict[str, float]:
    """One pair's row: both sentences' bearing features and the models' probabilities."""
    return {
        **{f"first_{name}": first[name] for name in BEARING_FEATURES},
        **{f"next_{name}": after[name] for name in BEARING_FEATURES},
        "first_rank": rank,
        "first_bearing": bearing,
        "next_bearing": next_bearing,
    }


def needs_next(
    first: Mapping[str, float],
    after: Evidence,
    shape: QuestionShape,
    question: str,
    *,
    rank: float,
    bearing: float,
) -> bool:
    """Say whether a quote should bring the sentence ``after`` it.

    ``first`` is the quote's bearing-feature row, as the answerer scored it (ranked ``rank``,
    bearing ``bearing``); only the next sentence's row is computed here.
    """
    (row,) = bearing_features([after], shape, question)
    next_bearing = load_model("bearing").probability(row)
    features = continuation_features(
        first, row, rank=rank, bearing=bearing, next_bearing=next_bearing
    )
    return load_model("continuation").probability(features) >= CONTINUE_ABOVE
