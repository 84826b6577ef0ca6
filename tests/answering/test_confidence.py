from __future__ import annotations

from redbook_qa.answering.answer_types import question_shape
from redbook_qa.answering.confidence import HIGH, MEDIUM, answer_confidence, confidence_label
from redbook_qa.models import Context, Evidence

from conftest import evidence_in

TEXT = "It has 300 million users. People like it."


def _evidence(text: str, sim: float, cov: float) -> Evidence:
    return evidence_in(
        TEXT, text, score=sim, similarity=sim, coverage=cov, window_coverage=cov, passage_score=sim
    )


def test_labels_follow_the_thresholds():
    assert confidence_label(HIGH) == "high"
    assert confidence_label(MEDIUM) == "medium"
    assert confidence_label(MEDIUM - 0.01) == "low"


def test_no_candidate_means_no_confidence():
    context = Context(question="How many users?", passages=(), evidence=())
    assert answer_confidence(context, question_shape("How many users?"), []) == 0.0


def test_a_strong_typed_answer_is_more_likely_on_point_than_a_weak_untyped_one():
    question = "How many users does it have?"
    shape = question_shape(question)
    strong = _evidence("It has 300 million users.", 0.85, 1.0)
    weak = _evidence("People like it.", 0.2, 0.0)
    good = answer_confidence(
        Context(question=question, passages=(), evidence=(strong, weak)),
        shape,
        [(strong, 0.8, 0.7), (weak, 0.05, 0.02)],
    )
    poor = answer_confidence(
        Context(question=question, passages=(), evidence=(weak,)), shape, [(weak, 0.05, 0.02)]
    )
    assert 0.0 <= poor < good <= 1.0
