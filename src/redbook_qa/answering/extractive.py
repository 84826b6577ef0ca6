"""The extractive answerer: quote the sentences that answer the question, each cited, or abstain."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from redbook_qa.answering.answer_types import QuestionShape, has_type, question_shape
from redbook_qa.answering.base import abstention
from redbook_qa.answering.bearing import WEIGHTS_FILE, bearing_features, is_candidate, load_model
from redbook_qa.answering.confidence import answer_confidence
from redbook_qa.answering.continuation import following, needs_next
from redbook_qa.models import Answer, Citation, Context, Evidence

DEFAULT_RELATIVE_CUTOFF = 0.5

DEFAULT_MAX_SENTENCES = 4

# Quotes for a question with one answer ("who", "when", "what is"): the best, and one more
# only when it bears an answer almost as well (relative_cutoff of the best, at least
# EXTRA_FLOOR). A question asking for reasons or ways takes points that bear an answer less
# well: ASPECT_CUTOFF of the best, at least ASPECT_FLOOR.
SINGLE_ANSWER_QUOTES = 2

EXTRA_FLOOR = 0.1

ASPECT_CUTOFF = 0.85

ASPECT_FLOOR = 0.005

# A sentence that adds at most this many terms to the question's restates it; when it is
# quoted, the sentence after it comes too ("Like any platform, X has potential downsides."
# adds "like" and "potential", and the next sentence lists the downsides).
RESTATES = 2

# A yes/no question ("Is it only for beauty?") has no answer type to check and SQuAD, on
# which confidence is calibrated, holds almost none: its confidence runs low, so it is
# answered down to this share of min_support by the sentence that speaks to it.
POLAR_FACTOR = 0.5

# At most this many characters between a lead-in closing its section and the first sentence
# of the next one: room for a heading line ("Algorithm Anxiety: The TikTok Trap").
HEADING_GAP = 160

# Maximal marginal relevance: a candidate's bearing minus this × its highest cosine to a
# quote already chosen; above REDUNDANT it says the same thing and is skipped.
MMR_PENALTY = 0.5

REDUNDANT = 0.9

_WORD = re.compile(r"\w+")

_NEAR_DUPLICATE = 0.6


@functools.lru_cache(maxsize=1)
def calibrated_min_support() -> float:
    """The abstention threshold fitted with the shipped weights (``make train-answering``).

    Chosen so that at most 5 % of SQuAD's answerable questions are refused.
    """
    return float(json.loads(WEIGHTS_FILE.read_text(encoding="utf-8"))["abstain_below"])


@dataclass(frozen=True)
class _Candidate:
    index: int  # position in context.evidence
    evidence: Evidence
    rank: float  # P(the best answer among the candidates), from the "ranking" model
    bearing: float  # P(answers the question on its own), from the "bearing" model
    features: Mapping[str, float]  # the row both models read, kept for the continuation


class ExtractiveAnswerer:
    """Quote the sentences that answer the question, each with its citation, or abstain.

    Args:
        min_support: Below this confidence (a probability) the answer abstains; ``None``
            uses the threshold calibrated with the shipped weights.
        relative_cutoff: Later quotes must bear an answer with at least this share of the
            best quote's probability.
        max_sentences: At most this many quotes, for questions with several answers.
    """

    def __init__(
        self,
        *,
        min_support: float | None = None,
        relative_cutoff: float = DEFAULT_RELATIVE_CUTOFF,
        max_sentences: int = DEFAULT_MAX_SENTENCES,
    ) -> None:
        if not 0.0 < relative_cutoff <= 1.0:
            raise ValueError(f"relative_cutoff must be in (0, 1], got {relative_cutoff}")
        if max_sentences < 1:
            raise ValueError(f"max_sentences must be >= 1, got {max_sentences}")
        self.min_support = calibrated_min_support() if min_support is None else min_support
        self.relative_cutoff = relative_cutoff
        self.max_sentences = max_sentences

    def answer(self, question: str, context: Context) -> Answer:
        """Answer from the context's evidence sentences, or abstain."""
        shape = question_shape(question)
        candidates = self.score(context, shape)
        support = answer_confidence(
            context, shape, [(c.evidence, c.rank, c.bearing) for c in candidates]
        )
        threshold = self.min_support * (POLAR_FACTOR if shape.answer_type == "polar" else 1.0)
        if not candidates or support < threshold:
            return abstention(question, context, support=support)
        chosen = self._select(candidates, context, shape)
        spans = _windows(chosen, context.evidence, shape, question)
        return _cite(question, spans, context, support=support, as_list=shape.multi_aspect)

    @staticmethod
    def score(context: Context, shape: QuestionShape) -> list[_Candidate]:
        """Every quotable candidate with its ranking and bearing probabilities, best first."""
        # "How many" and "when" questions are answered only by a sentence of that type (in
        # any of the forms answer_types knows: "dozens", "each spring", "after the ban").
        pairs = [
            (i, e)
            for i, e in enumerate(context.evidence)
            if is_candidate(e) and has_type(e.text, shape)
        ]
        ranking, bearing = load_model("ranking"), load_model("bearing")
        rows = bearing_features([e for _, e in pairs], shape, context.question)
        scored = [
            _Candidate(i, e, rank, bears, row)
            for (i, e), row, rank, bears in zip(
                pairs, rows, ranking.probabilities(rows), bearing.probabilities(rows), strict=True
            )
        ]
        return sorted(scored, key=lambda c: (-c.rank, c.evidence.source, c.evidence.start))

    def _select(
        self, candidates: Sequence[_Candidate], context: Context, shape: QuestionShape
    ) -> list[_Candidate]:
        best = candidates[0]
        if shape.multi_aspect:
            # Points of a many-sided answer: topical relevance (retrieval's score), among
            # sentences that still bear an answer, spread out by MMR.
            top = max(c.evidence.score for c in candidates)
            pool = [
                c
                for c in candidates[1:]
                if c.evidence.score >= ASPECT_CUTOFF * top
                and c.bearing >= ASPECT_FLOOR
                # Beyond the first, a point must touch what the question asks about its
                # topic (a term other than a name, in the sentence or beside it): one that
                # only names the topic is a vague link or about something else.
                and c.evidence.relation_coverage > 0.0
            ]
            relevance = {id(c): c.evidence.score for c in candidates}
        else:
            floor = max(EXTRA_FLOOR, self.relative_cutoff * best.bearing)
            pool = [c for c in candidates[1:] if c.bearing >= floor]
            relevance = {id(c): c.bearing for c in candidates}
        chosen = [best]
        budget = quote_budget(shape, self.max_sentences)
        while pool and len(chosen) < budget:
            gains = [
                (
                    relevance[id(c)]
                    - MMR_PENALTY * max(_similarity(c, q, context) for q in chosen),
                    c,
                )
                for c in pool
            ]
            _, pick = max(gains, key=lambda g: g[0])
            pool.remove(pick)
            if max(_similarity(pick, q, context) for q in chosen) < REDUNDANT:
                chosen.append(pick)
        return chosen


def quote_budget(shape: QuestionShape, max_sentences: int = DEFAULT_MAX_SENTENCES) -> int:
    """How many quotes an answer to a question of this shape may show.

    Up to ``max_sentences`` points for a many-sided question, at most
    :data:`SINGLE_ANSWER_QUOTES` for one with one answer. The confidence model is fitted on
    whether one of this many best-ranked sentences holds the answer.
    """
    return max_sentences if shape.multi_aspect else min(SINGLE_ANSWER_QUOTES, max_sentences)


@dataclass(frozen=True)
class _Span:
    """A verbatim quote: one sentence, or adjacent sentences quoted together."""

    first: Evidence
    text: str
    end: int
    bearing: float


def _windows(
    chosen: Sequence[_Candidate], evidence: Sequence[Evidence], shape: QuestionShape, question: str
) -> list[_Span]:
    """Widen each quote to its lead-in or its continuation where it needs one; merge overlaps.

    Quote [1] also takes the sentence after it when the continuation model says it holds the
    answer (:mod:`redbook_qa.answering.continuation`).
    """
    spans: list[_Span] = []
    for n, c in enumerate(chosen):
        e = c.evidence
        span = _Span(e, e.text, e.end, c.bearing)
        after = following(e, evidence)
        before = _previous(e, evidence)
        lead_in = c.features["lead_in"] > 0.0  # the bearing model's reading of its shape
        announces = lead_in or e.new_terms <= RESTATES
        # A lead-in that closes its section announces the sections under it: their opening
        # sentence is quoted as the next point (a heading lies between, so not in one quote).
        closes = lead_in and not e.after  # nothing follows it in its chunk
        opening = _section_opening(e, evidence) if closes else None
        if after is not None and (
            announces
            or (
                n == 0
                and needs_next(c.features, after, shape, question, rank=c.rank, bearing=c.bearing)
            )
        ):
            span = _Span(e, e.text + e.after + after.text, after.end, c.bearing)
        elif e.coverage == 0.0 and before is not None and before.coverage > 0.0:
            span = _Span(before, before.text + before.after + e.text, e.end, c.bearing)
        parts = [span]
        if opening is not None:
            parts.append(_Span(opening, opening.text, opening.end, c.bearing))
        for part in parts:
            if not any(_overlaps(part, s) for s in spans):
                spans.append(part)
    return spans


def _section_opening(e: Evidence, evidence: Sequence[Evidence]) -> Evidence | None:
    """The first sentence of the section right after ``e``'s, if the context holds it.

    Only across a gap a heading could fill (:data:`HEADING_GAP` characters): further on, the
    text between is unseen and the sentence may not be what ``e`` announces. A question that
    opens the next section is no answer, so it is not quoted either.
    """
    later = [
        x
        for x in evidence
        if x.source == e.source and x.section != e.section and 0 <= x.start - e.end <= HEADING_GAP
    ]
    first = min(later, key=lambda x: x.start, default=None)
    return first if first is not None and is_candidate(first) else None


def _previous(e: Evidence, evidence: Sequence[Evidence]) -> Evidence | None:
    return next(
        (
            x
            for x in evidence
            if x.source == e.source and x.after and x.end + len(x.after) == e.start
        ),
        None,
    )


def _overlaps(a: _Span, b: _Span) -> bool:
    return a.first.source == b.first.source and a.first.start < b.end and b.first.start < a.end


def _similarity(a: _Candidate, b: _Candidate, context: Context) -> float:
    """Cosine of two candidates' index-time vectors, or word overlap past the matrix."""
    matrix = context.redundancy
    if a.index < len(matrix) and b.index < len(matrix):
        return matrix[a.index][b.index]
    words_a = set(_WORD.findall(a.evidence.text.lower()))
    words_b = set(_WORD.findall(b.evidence.text.lower()))
    if not words_a or not words_b:
        return 0.0
    jaccard = len(words_a & words_b) / len(words_a | words_b)
    return 1.0 if jaccard >= _NEAR_DUPLICATE else jaccard


def _cite(
    question: str, spans: Sequence[_Span], context: Context, *, support: float, as_list: bool
) -> Answer:
    citations = tuple(
        Citation(
            number=n,
            source=s.first.source,
            title=s.first.title,
            section=s.first.section,
            text=s.text,
            start=s.first.start,
            end=s.end,
            score=s.bearing,
            page=s.first.page,
        )
        for n, s in enumerate(spans, start=1)
    )
    parts = [f"{c.text} [{c.number}]" for c in citations]
    listed = as_list and len(parts) > 1
    return Answer(
        question=question,
        text="\n".join(f"- {p}" for p in parts) if listed else " ".join(parts),
        citations=citations,
        passages=context.passages,
        support=support,
    )
