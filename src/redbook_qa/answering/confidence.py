"""Confidence: a calibrated probability that an answer's first quote answers the question (pure).

Read from the whole context, not one sentence: how well the best candidates bear an answer
(:mod:`redbook_qa.answering.bearing`) and by how much the best stands out, how much of the question
no top passage holds at all (an unanswerable question often asks about a name, date or
relation the articles never mention), and whether a "how many" or "when" question finds
any sentence of that type. A logistic regression fitted on SQuAD 2.0's answerable and
unanswerable questions (``make train-answering``) turns these into a probability; the
answerer abstains below a threshold chosen on the same data (at most 5 % of answerable
questions refused) and shows the rest as high, medium or low confidence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from redbook_qa.answering.answer_types import QuestionShape, has_type, negation_mismatch
from redbook_qa.answering.bearing import load_model
from redbook_qa.models import Context, Evidence

ConfidenceLabel = Literal["high", "medium", "low"]
CONFIDENCE_FEATURES = (
    "best_bearing",
    "second_bearing",
    "margin",
    "best_similarity",
    "best_coverage",
    "best_window",
    "unmatched",
    "unmatched_names",
    "unmatched_relation",
    "first_names",
    "first_relation",
    "first_negation_mismatch",
    "type_absent",
    "negated",
    "question_words",
)
# How many of the best candidates a strict answer type is looked for in.
TYPE_WINDOW = 5
# Thresholds of the labels shown in the page (probabilities that the first quote answers).
HIGH, MEDIUM = 0.7, 0.4


def context_signals(context: Context, shape: QuestionShape) -> dict[str, float]:
    """The question-level signals that do not depend on the bearing model."""
    evidence = context.evidence
    strict = shape.answer_type in {"number", "time"}
    typed = any(has_type(e.text, shape) for e in evidence[:TYPE_WINDOW])
    return {
        "best_similarity": max((e.similarity for e in evidence), default=0.0),
        "best_coverage": max((e.coverage for e in evidence), default=0.0),
        "best_window": max((e.window_coverage for e in evidence), default=0.0),
        "unmatched": context.unmatched,
        "unmatched_names": context.unmatched_names,
        "unmatched_relation": context.unmatched_relation,
        "type_absent": float(strict and not typed),
        "negated": float(shape.negated),
        "question_words": math.log1p(len(context.question.split())),
    }


def confidence_features(
    signals: dict[str, float], candidates: Sequence[tuple[Evidence, float]], question: str
) -> dict[str, float]:
    """Add what the candidates' bearing says: the two best, and the best one's coverage.

    ``candidates`` are (sentence, bearing probability) pairs, best first.
    """
    probs = [p for _, p in candidates]
    first = candidates[0][0] if candidates else None
    return {
        **signals,
        "best_bearing": probs[0] if probs else 0.0,
        "second_bearing": probs[1] if len(probs) > 1 else 0.0,
        "margin": probs[0] - probs[1] if len(probs) > 1 else (probs[0] if probs else 0.0),
        "first_names": first.name_coverage if first else 0.0,
        "first_relation": first.relation_coverage if first else 0.0,
        "first_negation_mismatch": float(
            first is not None and negation_mismatch(first.text, question)
        ),
    }


def answer_confidence(
    context: Context, shape: QuestionShape, candidates: Sequence[tuple[Evidence, float]]
) -> float:
    """Return the probability that the best-bearing sentence answers the question."""
    if not candidates:
        return 0.0
    signals = context_signals(context, shape)
    features = confidence_features(signals, candidates, context.question)
    return load_model("confidence").probability(features)


def confidence_label(probability: float) -> ConfidenceLabel:
    """Say "high", "medium" or "low" for a confidence probability."""
    if probability >= HIGH:
        return "high"
    return "medium" if probability >= MEDIUM else "low"
