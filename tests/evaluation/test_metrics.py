from __future__ import annotations

import math

import pytest

from redbook_qa.evaluation import metrics


def test_rank_metrics_match_hand_counts():
    flags = [False, True, False, True]
    assert metrics.hit_at(flags, 1) == 0.0
    assert metrics.hit_at(flags, 2) == 1.0
    assert metrics.reciprocal_rank(flags) == 0.5
    assert metrics.reciprocal_rank([False] * 3) == 0.0
    ideal = 1 + 1 / math.log2(3)
    assert metrics.ndcg_at(flags, 2) == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / ideal)
    assert metrics.recall_at(flags, 4, 2) == 0.25


def test_citation_coverage_counts_sentences_with_markers():
    assert metrics.citation_coverage("One. [1] Two. [2]") == 1.0
    assert metrics.citation_coverage("One. [1] Two without.") == 0.5
    assert metrics.citation_coverage("") == 0.0
    # A lead-in quoted with what it announces is one cited span.
    pair = "It has downsides. The language barrier is one."
    assert metrics.citation_coverage(f"{pair} [1]", [pair]) == 1.0
    assert metrics.citation_coverage(f"- {pair} [1]\n- Two. [2]", [pair, "Two."]) == 1.0


def test_abstention_scores():
    scores = metrics.abstention_scores([True, True, False, False], [False, True, False, True])
    assert scores == {
        "abstention_precision": 0.5,
        "abstention_recall": 0.5,
        "false_abstention_rate": 0.5,
    }


def test_keyword_and_span_helpers():
    assert metrics.contains_any("Pop Mart makes it", ["pop mart"])
    assert not metrics.contains_any("nothing", ["pop mart"])
    assert metrics.overlaps((0, 5), (4, 9))
    assert not metrics.overlaps((0, 5), (5, 9))
    assert metrics.percentile([1.0, 2.0, 3.0], 50) == 2.0


def test_aspect_coverage_counts_the_aspects_a_quote_touches():
    from redbook_qa.evaluation.metrics import aspect_coverage

    aspects = [[("a", (0, 10))], [("a", (20, 30)), ("b", (0, 5))], [("a", (40, 50))]]
    assert aspect_coverage([("a", (5, 8)), ("b", (1, 2))], aspects) == pytest.approx(2 / 3)
    assert aspect_coverage([("b", (20, 30))], aspects) == 0.0
    assert aspect_coverage([], []) == 0.0


def test_crag_score_rewards_right_answers_and_punishes_wrong_ones_more_than_refusals():
    from redbook_qa.evaluation.metrics import crag_score

    assert crag_score([True, False, False], [False, True, False]) == pytest.approx(0.0)
    assert crag_score([True, True], [False, False]) == 1.0
    assert crag_score([False], [True]) == 0.0
    assert crag_score([False], [False]) == -1.0


def test_reliability_table_bins_predictions_with_their_observed_rate():
    from redbook_qa.evaluation.metrics import reliability_table

    rows = reliability_table([0.1, 0.15, 0.9, 1.0], [False, True, True, True], bins=5)
    assert rows[0][:3] == (0.0, 0.2, 2)
    assert rows[0][3] == pytest.approx(0.125)
    assert rows[0][4] == 0.5
    assert rows[-1][2:] == (2, pytest.approx(0.95), 1.0)
