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


def citation_coverage(text: str, quotes: Sequence[str] = ()) -> float:
    """Share of an answer's sentences that carry at least one ``[n]`` marker.

    A quote of several sentences cited once (a lead-in with what it announces) counts as
    one cited unit: pass the quoted texts as ``quotes``.
    """
    units = 0
    for quote in sorted(set(quotes), key=len, reverse=True):
        found = re.search(re.escape(quote) + r"\s*\[\d+\]", text)
        if found:
            text = text[: found.start()] + " " + text[found.end() :]
            units += 1
    sentences = [s for s in answer_sentences(text) if s.strip(" -\n")]
    if not sentences and not units:
        return 0.0
    return (units + sum(1 for s in sentences if _MARKER.search(s))) / (units + len(sentences))


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Do half-open spans ``a`` and ``b`` share a character?"""
    return a[0] < b[1] and b[0] < a[1]


def aspect_coverage(
    cited: Sequence[tuple[str, tuple[int, int]]],
    aspects: Sequence[Sequence[tuple[str, tuple[int, int]]]],
) -> float:
    """Share of ``aspects`` (each a group of gold spans) that a cited span overlaps."""
    if not aspects:
        return 0.0
    covered = sum(
        1
        for group in aspects
        if any(s == gs and overlaps(span, g) for s, span in cited for gs, g in group)
    )
    return covered / len(aspects)


def crag_score(right: Sequence[bool], refused: Sequence[bool]) -> float:
    """CRAG-style truthfulness: +1 per right answer, 0 per refusal, -1 per wrong answer.

    ``right[i]`` says whether answer ``i`` is right (for an unanswerable question: never),
    ``refused[i]`` whether it abstained; a refusal is neither right nor wrong.
    """
    if not right:
        return 0.0
    total = sum(0 if no else (1 if ok else -1) for ok, no in zip(right, refused, strict=True))
    return total / len(right)


def reliability_table(
    probabilities: Sequence[float], outcomes: Sequence[bool], bins: int = 5
) -> list[tuple[float, float, int, float, float]]:
    """Rows (low, high, count, mean predicted, observed rate) of a reliability diagram."""
    rows = []
    edges = np.linspace(0.0, 1.0, bins + 1)
    for i in range(bins):
        low, high = float(edges[i]), float(edges[i + 1])
        inside = [
            (p, o)
            for p, o in zip(probabilities, outcomes, strict=True)
            if low <= p < high or (i == bins - 1 and p == high)
        ]
        if inside:
            mean = sum(p for p, _ in inside) / len(inside)
            rate = sum(1 for _, o in inside if o) / len(inside)
            rows.append((low, high, len(inside), mean, rate))
    return rows


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
