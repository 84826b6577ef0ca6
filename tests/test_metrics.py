from __future__ import annotations

import math

import pytest

from redbook_qa import metrics


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
