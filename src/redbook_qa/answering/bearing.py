"""Answer-bearing score: the chance that a retrieved sentence answers the question (pure).

A sentence can be close to a question because it answers it, or because it restates it ("a
significant portion of TikTok's user base has chosen Xiaohongshu"), announces what follows ("Like
any platform, Xiaohongshu has potential downsides.") or only names the topic. Similarity alone
rewards all three. The score here weighs similarity and term coverage with what the sentence adds
that the question does not say (novelty, new names), whether it holds the kind of answer asked for
(:mod:`redbook_qa.answering.answer_types`), whether its neighbours carry the question's terms (a
list after its lead-in), and its shape (a trailing colon, a question of its own).

The weights are learned, not set by hand: a logistic regression over these features, fitted
by ``make train-answering`` (``evals/train_answering.py``) on SQuAD 2.0 (question, sentence
holds the gold answer) pairs, and shipped as ``weights.json`` beside this module. The same
file holds the second model, :mod:`redbook_qa.answering.confidence`'s.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from redbook_qa.answering.answer_types import (
    QuestionShape,
    negation_mismatch,
    new_names,
    type_evidence,
)
from redbook_qa.models import Evidence

WEIGHTS_FILE = Path(__file__).with_name("weights.json")
BEARING_FEATURES = (
    "similarity",
    "neighbour_similarity",
    "coverage",
    "window_coverage",
    "name_coverage",
    "relation_coverage",
    "negation_mismatch",
    "passage",
    "novelty",
    "length",
    "lead_in",
    "question_like",
    "match_number",
    "match_time",
    "weak_time",
    "match_person",
    "weak_person",
    "match_place",
    "match_reason",
    "match_polar",
    "missing_type",
    "new_names",
    "meta",
    "enumerated",
)
"""Features of the "bearing" model: does this sentence, on its own, make an answer point?"""
RANKING_FEATURES = (*BEARING_FEATURES, "similarity_gap", "coverage_gap", "passage_gap")
"""Features of the "ranking" model: is this the best answer among the candidates? The gaps
to the best candidate make it sharper at that (first quote on point 0.781 vs 0.746 on SQuAD
held out) and useless for judging a second quote, which the bearing model does."""
_WORD = re.compile(r"[^\W_]+")
# Discourse about the text or the reader rather than the subject: "This article explores…",
# "Let's dive into…", "Think about it:". English function words, not words of any corpus.
_META = re.compile(
    r"\b(?:this|the|our|my) (?:article|post|piece|essay|report|section|chapter|paper|blog|"
    r"story|summary|discussion|analysis)\b|\blet[’']?s\b|\bwe[’']ll\b|\bthink about it\b|"
    r"\bin this (?:article|post|piece)\b",
    re.IGNORECASE,
)
_ENUMERATED = re.compile(r"^\s*(?:\d{1,3}|[a-zA-Z])[.)]\s")


@dataclass(frozen=True)
class LinearModel:
    """A logistic regression: ``P = sigmoid(bias + Σ weight[name] · feature[name])``."""

    bias: float
    weights: Mapping[str, float]

    def probability(self, features: Mapping[str, float]) -> float:
        """Return the modelled probability for one feature row."""
        return self.probabilities([features])[0]

    def probabilities(self, rows: Sequence[Mapping[str, float]]) -> list[float]:
        """Return the modelled probability of each feature row (one matrix product)."""
        if not rows:
            return []
        names = list(self.weights)
        matrix = np.array([[row.get(n, 0.0) for n in names] for row in rows], dtype=np.float64)
        z = np.clip(matrix @ np.array([self.weights[n] for n in names]) + self.bias, -30, 30)
        return [float(p) for p in 1.0 / (1.0 + np.exp(-z))]


@functools.lru_cache(maxsize=4)
def load_model(name: str, path: Path = WEIGHTS_FILE) -> LinearModel:
    """Read model ``name`` ("bearing", "ranking" or "confidence") from the weights file.

    Raises:
        FileNotFoundError: The weights file is missing (re-create it with
            ``make train-answering``).
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; re-create it with `make train-answering`")
    data = json.loads(path.read_text(encoding="utf-8"))[name]
    return LinearModel(bias=float(data["bias"]), weights=dict(data["weights"]))


def is_candidate(evidence: Evidence) -> bool:
    """Say whether a sentence may be quoted as an answer: a question of its own never is."""
    return not evidence.text.rstrip(" \"'”’)").endswith(("?", "？"))


def bearing_features(
    evidence: Sequence[Evidence], shape: QuestionShape, question: str
) -> list[dict[str, float]]:
    """Feature rows of each candidate sentence, relative to the best candidate where useful."""
    if not evidence:
        return []
    best = (
        max(e.similarity for e in evidence),
        max(e.coverage for e in evidence),
        max(e.passage_score for e in evidence),
    )
    return [_row(e, shape, question, best) for e in evidence]


@functools.lru_cache(maxsize=16_384)
def _shape_of(text: str) -> tuple[float, float, float, float, float]:
    """Lead-in, question, talk about the text, list item, log length: read once per text."""
    stripped = text.rstrip(" \"'”’)")
    return (
        float(stripped.endswith((":", "—", "–"))),
        float(stripped.endswith("?")),
        float(bool(_META.search(text))),
        float(bool(_ENUMERATED.match(text))),
        math.log1p(len(_WORD.findall(text))),
    )


def _row(
    e: Evidence, shape: QuestionShape, question: str, best: tuple[float, float, float]
) -> dict[str, float]:
    best_sim, best_cov, best_passage = best
    lead_in, question_like, meta, enumerated, length = _shape_of(e.text)
    strong, weak = type_evidence(e.text, shape)
    kind = shape.answer_type
    return {
        "similarity": e.similarity,
        "neighbour_similarity": e.neighbour_similarity,
        "similarity_gap": e.similarity - best_sim,
        "coverage": e.coverage,
        "coverage_gap": e.coverage - best_cov,
        "window_coverage": e.window_coverage,
        "name_coverage": e.name_coverage,
        "relation_coverage": e.relation_coverage,
        "negation_mismatch": float(negation_mismatch(e.text, question)),
        "passage": e.passage_score,
        "passage_gap": e.passage_score - best_passage,
        "novelty": e.novelty,
        "length": length,
        "lead_in": lead_in,
        "question_like": question_like,
        "match_number": strong if kind == "number" else 0.0,
        "match_time": strong if kind == "time" else 0.0,
        "weak_time": weak if kind == "time" else 0.0,
        "match_person": strong if kind == "person" else 0.0,
        "weak_person": weak if kind == "person" else 0.0,
        "match_place": strong if kind == "place" else 0.0,
        "match_reason": strong if kind == "reason" else 0.0,
        "match_polar": strong if kind == "polar" else 0.0,
        "missing_type": float(kind in {"number", "time"} and strong == 0.0 and weak == 0.0),
        "new_names": math.log1p(new_names(e.text, shape)),
        "meta": meta,
        "enumerated": enumerated,
    }
