"""Fuse dense and keyword scores of the same candidates into one ranking score (pure).

Two methods, picked by name: a convex combination of cosine similarity and a saturated BM25
score, and reciprocal-rank fusion. Both take arrays aligned on the same candidates.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

FusionMethod = Literal["convex", "rrf", "dense", "lexical"]
FUSION_METHODS: tuple[FusionMethod, ...] = ("convex", "rrf", "dense", "lexical")
DEFAULT_FUSION: FusionMethod = "convex"
DEFAULT_ALPHA = 0.5
RRF_K = 60

_Scores = npt.NDArray[np.float32]


def saturate(bm25: _Scores, *, scale: float) -> _Scores:
    """Map BM25 scores to [0, 1) with ``s / (s + scale)``.

    Unlike dividing by the best score, this keeps a weak keyword match weak: a question whose
    terms barely occur in the corpus does not get a perfect keyword score for its best chunk.
    ``scale`` is the BM25 score that maps to 0.5.
    """
    clipped = np.maximum(bm25, 0.0)
    return (clipped / (clipped + np.float32(scale))).astype(np.float32)


def convex(dense: _Scores, lexical: _Scores, *, alpha: float = DEFAULT_ALPHA) -> _Scores:
    """Return ``alpha * dense + (1 - alpha) * lexical``, both already in [0, 1]."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    return (np.float32(alpha) * dense + np.float32(1.0 - alpha) * lexical).astype(np.float32)


def rrf(dense: _Scores, lexical: _Scores, *, k: int = RRF_K) -> _Scores:
    """Reciprocal-rank fusion (Cormack et al., 2009): ``sum 1 / (k + rank)`` over both lists."""
    return (_reciprocal_ranks(dense, k) + _reciprocal_ranks(lexical, k)).astype(np.float32)


def fuse(
    dense: _Scores, lexical: _Scores, *, method: FusionMethod, alpha: float = DEFAULT_ALPHA
) -> _Scores:
    """Fuse with the named method; ``dense`` and ``lexical`` return one side unchanged."""
    if method == "convex":
        return convex(dense, lexical, alpha=alpha)
    if method == "rrf":
        return rrf(dense, lexical)
    if method == "dense":
        return dense.astype(np.float32)
    if method == "lexical":
        return lexical.astype(np.float32)
    raise ValueError(f"unknown fusion method {method!r}; choose one of {FUSION_METHODS}")


def _reciprocal_ranks(scores: _Scores, k: int) -> npt.NDArray[np.float64]:
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.arange(1, len(scores) + 1)
    return 1.0 / (k + ranks)
