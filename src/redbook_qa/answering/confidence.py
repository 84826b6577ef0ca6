"""Confidence: a calibrated probability that an answer's quotes answer the question (pure).

What a user reads is the whole answer: up to two quotes for a question with one answer, up to
four for a many-sided one, so the label a question is trained on is whether one of the
sentences the answerer would quote holds the answer (not quote [1] alone: a right second
quote is a right answer). Held out, both labels fitted side by side on the same features and
folds, that label separates answerable from unanswerable questions better (AUROC against
the seeds' traps 0.815 -> 0.887, SQuAD's unanswerables 0.663 -> 0.677) and, at the
threshold the answerer uses (at most 5 % of answerable questions refused on either set),
refuses 0.36 of the seeds' traps instead of 0.21, 0.11 of SQuAD's instead of 0.08 and 0.25
of the generated ones instead of 0.20.

Read from the whole context, not one sentence: how well the best candidates bear an answer
(:mod:`redbook_qa.answering.bearing`) and by how much the best stands out, how much of the question
no top passage holds at all (an unanswerable question often asks about a name, date or
relation the articles never mention), and whether a "how many" or "when" question finds
any sentence of that type, and the question's shape (calibrated per shape: "why" and yes/no
questions are rare in SQuAD). A logistic regression fitted on SQuAD 2.0's answerable and
unanswerable questions, on generated negatives (each answerable question asked of the corpus
without its paragraph) and on the seeds questions (``make train-answering``) turns these into a
probability; the answerer abstains below a threshold chosen on held-out folds of the same data
(at most 5 % of answerable questions refused, on SQuAD and on the seeds) and shows the rest as
high, medium or low confidence.

Held out (2026-12-03), AUROC of answerable against each kind of unanswerable question: SQuAD's
one-word swaps 0.679, generated "not in the corpus" questions 0.813, the seeds' on-topic traps
("Who founded Xiaohongshu?") 0.882, against 0.681 / 0.824 / 0.683 for the first model
(no generated negatives, seeds weighted as one SQuAD question, ranking probabilities only).
A gradient-boosted model or a small MLP over the same features came within 0.01 of the
logistic model's AUROC on every set: the features, not the model, are what limits it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, get_args

from redbook_qa.answering.answer_types import (
    AnswerType,
    QuestionShape,
    has_type,
    negation_mismatch,
)
from redbook_qa.answering.bearing import load_model
from redbook_qa.models import Context, Evidence

ConfidenceLabel = Literal["high", "medium", "low"]
# The question's shape, so that confidence is calibrated per shape: "why" and yes/no
# questions are rare in SQuAD and their best sentences bear an answer less plainly.
_ASKED = tuple(kind for kind in get_args(AnswerType) if kind != "other")
SHAPE_FEATURES = (*(f"asks_{kind}" for kind in _ASKED), "asks_many")
CONFIDENCE_FEATURES = (
    "top_bearing",
    "first_bearing",
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
    *SHAPE_FEATURES,
)
# How many of the best candidates a strict answer type is looked for in.
TYPE_WINDOW = 5
# Thresholds of the labels shown in the page (probabilities that the quotes answer).
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
        **{f"asks_{kind}": float(shape.answer_type == kind) for kind in _ASKED},
        "asks_many": float(shape.multi_aspect),
    }


def confidence_features(
    signals: dict[str, float], candidates: Sequence[tuple[Evidence, float, float]], question: str
) -> dict[str, float]:
    """Add what the candidates say: the two best, and the best one's coverage.

    ``candidates`` are (sentence, ranking probability, bearing probability) triples, best
    ranked first. The ranking model's probabilities are relative (the best of poor
    candidates still ranks high); the bearing model's are absolute, and their maximum is what
    tells an answer from a sentence that only names the topic ("Who founded it?").
    """
    probs = [p for _, p, _ in candidates]
    first = candidates[0][0] if candidates else None
    return {
        **signals,
        "top_bearing": max((b for _, _, b in candidates), default=0.0),
        "first_bearing": candidates[0][2] if candidates else 0.0,
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
    context: Context, shape: QuestionShape, candidates: Sequence[tuple[Evidence, float, float]]
) -> float:
    """Return the probability that the quotes an answer would show answer the question.

    ``candidates`` come best ranked first; the model was fitted on whether one of the first
    two (four for a many-sided question) holds the answer.
    """
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
