from __future__ import annotations

import json

import pytest

from redbook_qa.answering.answer_types import question_shape
from redbook_qa.answering.bearing import (
    BEARING_FEATURES,
    RANKING_FEATURES,
    WEIGHTS_FILE,
    LinearModel,
    bearing_features,
    is_candidate,
    load_model,
)
from redbook_qa.answering.confidence import CONFIDENCE_FEATURES
from redbook_qa.models import Evidence

from conftest import evidence_in

TEXT = (
    "This article explores the app. Brands love the app because its reviews feel genuine. "
    "Why do brands love it?"
)


def _evidence(text: str, **signals) -> Evidence:
    return evidence_in(TEXT, text, **signals)


def test_the_shipped_weights_cover_every_feature_of_each_model():
    data = json.loads(WEIGHTS_FILE.read_text(encoding="utf-8"))
    assert set(data["bearing"]["weights"]) == set(BEARING_FEATURES)
    assert set(data["ranking"]["weights"]) == set(RANKING_FEATURES)
    assert set(data["confidence"]["weights"]) == set(CONFIDENCE_FEATURES)
    assert 0.0 < data["abstain_below"] < 1.0


def test_a_linear_model_is_a_logistic_probability():
    model = LinearModel(bias=0.0, weights={"x": 2.0})
    assert model.probability({"x": 0.0}) == pytest.approx(0.5)
    assert model.probability({"x": 10.0}) > 0.99
    assert model.probability({"x": -1e9}) == pytest.approx(0.0, abs=1e-12)


def test_talk_about_the_article_bears_an_answer_less_than_the_answer_itself():
    question = "Why do brands love the app?"
    shape = question_shape(question)
    meta = _evidence("This article explores the app.")
    answer = _evidence("Brands love the app because its reviews feel genuine.")
    rows = bearing_features([meta, answer], shape, question)
    assert rows[0]["meta"] == 1.0
    assert rows[1]["meta"] == 0.0
    assert rows[1]["match_reason"] == 1.0  # "because" answers a why-question
    model = load_model("bearing")
    assert model.probability(rows[1]) > model.probability(rows[0])


def test_higher_similarity_and_coverage_never_lower_the_ranking():
    question = "Why do brands love the app?"
    shape = question_shape(question)
    weak = _evidence("Brands love the app because its reviews feel genuine.", similarity=0.3)
    strong = _evidence(
        "Brands love the app because its reviews feel genuine.", similarity=0.8, coverage=0.9
    )
    rows = bearing_features([weak, strong], shape, question)
    ranking = load_model("ranking")
    assert ranking.probability(rows[1]) > ranking.probability(rows[0])


def test_questions_in_the_text_are_not_candidates():
    assert not is_candidate(_evidence("Why do brands love it?"))
    assert is_candidate(_evidence("This article explores the app."))
