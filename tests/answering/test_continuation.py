from __future__ import annotations

import json

from redbook_qa.answering.answer_types import question_shape
from redbook_qa.answering.bearing import WEIGHTS_FILE, bearing_features, load_model
from redbook_qa.answering.continuation import (
    CONTINUATION_FEATURES,
    continuation_features,
    following,
    needs_next,
)
from redbook_qa.models import Evidence

from conftest import evidence_in

TEXT = (
    "The app appears to foster a different environment. "
    "Users join it because they want to connect with friends and share daily life. "
    "Its logo is red."
)
QUESTION = "Why do users join the app?"


def _evidence(text: str, **signals) -> Evidence:
    after = " " if TEXT[TEXT.index(text) + len(text) :][:1] == " " else ""
    return evidence_in(TEXT, text, after=after, **signals)


FRAME = _evidence(
    "The app appears to foster a different environment.",
    similarity=0.6,
    coverage=0.3,
    window_coverage=0.9,
    novelty=0.7,
    new_terms=5,
)
REASON = _evidence(
    "Users join it because they want to connect with friends and share daily life.",
    similarity=0.7,
    coverage=0.9,
    window_coverage=0.9,
    novelty=0.5,
    new_terms=6,
)
LOGO = _evidence(
    "Its logo is red.", similarity=0.1, coverage=0.0, window_coverage=0.9, novelty=1.0, new_terms=2
)


def _chance(first: Evidence, after: Evidence) -> float:
    shape = question_shape(QUESTION)
    rows = bearing_features([first, after], shape, QUESTION)
    bearing = load_model("bearing").probabilities(rows)
    features = continuation_features(
        rows[0], rows[1], rank=0.5, bearing=bearing[0], next_bearing=bearing[1]
    )
    return load_model("continuation").probability(features)


def test_the_shipped_weights_hold_the_continuation_model():
    data = json.loads(WEIGHTS_FILE.read_text(encoding="utf-8"))
    assert set(data["continuation"]["weights"]) == set(CONTINUATION_FEATURES)


def test_the_next_sentence_is_found_only_when_it_follows_in_the_same_chunk():
    assert following(FRAME, [LOGO, REASON, FRAME]) == REASON
    assert following(REASON, [FRAME, REASON]) is None  # the context lacks it
    assert following(LOGO, [FRAME, REASON, LOGO]) is None  # the text ends


def test_a_frame_brings_the_reason_after_it_and_a_reason_does_not_bring_filler():
    shape = question_shape(QUESTION)
    assert _chance(FRAME, REASON) > _chance(REASON, LOGO)
    (frame,) = bearing_features([FRAME], shape, QUESTION)
    (reason,) = bearing_features([REASON], shape, QUESTION)
    assert needs_next(frame, REASON, shape, QUESTION, rank=0.5, bearing=0.1)
    assert not needs_next(reason, LOGO, shape, QUESTION, rank=0.9, bearing=0.8)


def test_quote_one_carries_the_sentence_that_gives_what_its_frame_promises():
    from redbook_qa.answering.extractive import ExtractiveAnswerer
    from redbook_qa.models import Context

    frame = FRAME.model_copy(update={"similarity": 0.9, "score": 0.9})
    reason = REASON.model_copy(update={"similarity": 0.35, "score": 0.3, "coverage": 0.2})
    context = Context(question=QUESTION, passages=(), evidence=(frame, reason, LOGO))
    answer = ExtractiveAnswerer(min_support=0.0).answer(QUESTION, context)
    first = answer.citations[0]
    assert first.start == frame.start
    assert first.text == TEXT[frame.start : reason.end]  # one verbatim span, frame and reason
