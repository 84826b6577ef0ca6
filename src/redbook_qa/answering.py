"""Context to a cited answer: the answerer protocol and the default extractive answerer (pure).

The extractive answerer writes nothing of its own: it quotes the sentences of the retrieved
passages that best answer the question, each followed by its ``[n]``, so every claim can be
checked against the article. When the best evidence is too weak, or the question asks for a
kind of answer (a number, a date) that no candidate sentence holds, it says plainly that the
articles don't say.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Literal, Protocol, runtime_checkable

from redbook_qa.models import Answer, Citation, Context, Evidence

# Calibrated with `make calibrate` on the evals set and the SQuAD 2.0 unanswerable questions;
# see the README's "Abstention" section for the figures behind these numbers.
DEFAULT_MIN_SUPPORT = 0.36
DEFAULT_RELATIVE_CUTOFF = 0.8
DEFAULT_MAX_SENTENCES = 4
_NEAR_DUPLICATE = 0.6

AnswerType = Literal["number", "date"]
_NUMBER_QUESTION = re.compile(
    r"\b(how (many|much|old)|what (percentage|percent|number|amount)"
    r"|how many)\b|多少|几",
    re.IGNORECASE,
)
_DATE_QUESTION = re.compile(r"\b(when|what (year|date|day|month|time))\b|哪一?年|什么时候", re.I)
_NUMBER = re.compile(
    r"\d|\b(two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|"
    r"fifty|hundred|thousand|million|billion|dozens?|percent)\b|[一二三四五六七八九十百千万亿]",
    re.IGNORECASE,
)
_DATE = re.compile(
    r"\b(1[0-9]\d\d|20\d\d|\d{1,2}(st|nd|rd|th)|\d{4}s|january|february|march|april|june|"
    r"july|august|september|october|november|december|centur(y|ies))\b|\d+年",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w+")


@runtime_checkable
class Answerer(Protocol):
    """Turns a question and its retrieved context into an answer."""

    def answer(self, question: str, context: Context) -> Answer:
        """Answer ``question`` from ``context`` only."""
        ...


@runtime_checkable
class StreamingAnswerer(Answerer, Protocol):
    """An answerer that can show its draft as it is written."""

    def stream(self, question: str, context: Context) -> Iterator[str | Answer]:
        """Yield pieces of the draft text as they arrive, then the final checked ``Answer``."""
        ...


def abstention(question: str, context: Context, *, support: float = 0.0) -> Answer:
    """Return the plain "the articles don't say" answer, with the closest passages attached."""
    return Answer(
        question=question,
        text="The articles don't say. No passage in them supports an answer to this question.",
        abstained=True,
        passages=context.passages,
        support=support,
    )


def expected_answer_type(question: str) -> AnswerType | None:
    """Say whether a question asks for a number or a date (by its wording)."""
    if _NUMBER_QUESTION.search(question):
        return "number"
    if _DATE_QUESTION.search(question):
        return "date"
    return None


def has_answer_type(text: str, kind: AnswerType) -> bool:
    """Say whether ``text`` contains something of the kind the question asks for."""
    pattern = _NUMBER if kind == "number" else _DATE
    return bool(pattern.search(text))


class ExtractiveAnswerer:
    """Quote the best evidence sentences, in article order, each with its citation.

    Args:
        min_support: The best sentence must score at least this, or the answer abstains.
        relative_cutoff: Other sentences must score at least this share of the best.
        max_sentences: At most this many sentences are quoted.
    """

    def __init__(
        self,
        *,
        min_support: float = DEFAULT_MIN_SUPPORT,
        relative_cutoff: float = DEFAULT_RELATIVE_CUTOFF,
        max_sentences: int = DEFAULT_MAX_SENTENCES,
    ) -> None:
        if not 0.0 < relative_cutoff <= 1.0:
            raise ValueError(f"relative_cutoff must be in (0, 1], got {relative_cutoff}")
        if max_sentences < 1:
            raise ValueError(f"max_sentences must be >= 1, got {max_sentences}")
        self.min_support = min_support
        self.relative_cutoff = relative_cutoff
        self.max_sentences = max_sentences

    def answer(self, question: str, context: Context) -> Answer:
        """Answer from the context's evidence sentences, or abstain."""
        # Questions and lead-ins ("Several factors contribute:") introduce answers, not give them.
        candidates = [e for e in context.evidence if not e.text.rstrip().endswith(("?", ":"))]
        kind = expected_answer_type(question)
        if kind is not None:
            candidates = [e for e in candidates if has_answer_type(e.text, kind)]
        best = max((e.score for e in candidates), default=0.0)
        if best < self.min_support:
            return abstention(question, context, support=best)
        chosen = self._select(candidates, floor=max(self.min_support, best * self.relative_cutoff))
        return _cite(question, chosen, context, support=best)

    def _select(self, candidates: Sequence[Evidence], *, floor: float) -> list[Evidence]:
        chosen: list[Evidence] = []
        for evidence in sorted(candidates, key=lambda e: (-e.score, e.source, e.start)):
            if evidence.score < floor or len(chosen) == self.max_sentences:
                break
            if chosen and evidence.coverage == 0.0:
                # Beyond the best sentence, one that shares no term with the question is
                # usually a vague link ("While this may play a role for some, ...").
                continue
            if not any(_is_near_duplicate(evidence.text, c.text) for c in chosen):
                chosen.append(evidence)
        return chosen


def _cite(question: str, chosen: list[Evidence], context: Context, *, support: float) -> Answer:
    ordered = sorted(chosen, key=lambda e: (e.source, e.start))
    citations = tuple(Citation.quoting(e, n) for n, e in enumerate(ordered, start=1))
    text = " ".join(f"{c.text} [{c.number}]" for c in citations)
    return Answer(
        question=question,
        text=text,
        citations=citations,
        passages=context.passages,
        support=support,
    )


def _is_near_duplicate(a: str, b: str) -> bool:
    words_a = set(_WORD.findall(a.lower()))
    words_b = set(_WORD.findall(b.lower()))
    if not words_a or not words_b:
        return False
    return len(words_a & words_b) / len(words_a | words_b) >= _NEAR_DUPLICATE
