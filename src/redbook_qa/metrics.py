"""Evaluation metrics over ranked results and answers (pure, unit-tested against hand counts)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

_MARKER = re.compile(r"\[\d+\]")
# A sentence ends after terminal punctuation, or after its trailing [n] markers if it has any.
_SENTENCE_END = re.compile(
    r"(?<=[.!?。！？])\s+(?!\[\d+\])|(?<=\[\d\])\s+(?!\[\d+\])|(?<=\[\d\d\])\s+(?!\[\d+\])"
)


def hit_at(relevant: Sequence[bool], k: int) -> float:
    """1.0 if any of the first ``k`` results is relevant."""
    return 1.0 if any(relevant[:k]) else 0.0


def reciprocal_rank(relevant: Sequence[bool], k: int = 10) -> float:
    """1 / rank of the first relevant result within ``k``, else 0."""
    for rank, is_relevant in enumerate(relevant[:k], start=1):
        if is_relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at(relevant: Sequence[bool], n_relevant: int, k: int = 10) -> float:
    """Binary-relevance nDCG@k; ``n_relevant`` is how many relevant items exist in all."""
    dcg = sum(1.0 / math.log2(rank + 1) for rank, r in enumerate(relevant[:k], start=1) if r)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(n_relevant, k) + 1))
    return dcg / ideal if ideal else 0.0


def recall_at(relevant: Sequence[bool], n_relevant: int, k: int) -> float:
    """Share of all relevant items found in the first ``k`` results."""
    return sum(relevant[:k]) / n_relevant if n_relevant else 0.0


def contains_any(text: str, keywords: Sequence[str]) -> bool:
    """Case-insensitive: does ``text`` contain one of ``keywords``?"""
    lowered = text.lower()
    return any(k.lower() in lowered for k in keywords)


def answer_sentences(text: str) -> list[str]:
    """Split an answer into sentences, keeping each sentence's trailing ``[n]`` markers."""
    return [s for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def citation_coverage(text: str) -> float:
    """Share of an answer's sentences that carry at least one ``[n]`` marker."""
    sentences = answer_sentences(text)
    if not sentences:
        return 0.0
    return sum(1 for s in sentences if _MARKER.search(s)) / len(sentences)


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Do half-open spans ``a`` and ``b`` share a character?"""
    return a[0] < b[1] and b[0] < a[1]


def abstention_scores(abstained: Sequence[bool], answerable: Sequence[bool]) -> dict[str, float]:
    """Precision and recall of abstaining on unanswerable cases, and false abstentions."""
    flags = np.asarray(abstained, dtype=bool)
    should = ~np.asarray(answerable, dtype=bool)
    true_pos = float(np.sum(flags & should))
    return {
        "abstention_precision": true_pos / float(np.sum(flags)) if np.any(flags) else 1.0,
        "abstention_recall": true_pos / float(np.sum(should)) if np.any(should) else 1.0,
        "false_abstention_rate": (
            float(np.sum(flags & ~should)) / float(np.sum(~should)) if np.any(~should) else 0.0
        ),
    }


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) of ``values``; 0 when empty."""
    return float(np.percentile(values, q)) if len(values) else 0.0
