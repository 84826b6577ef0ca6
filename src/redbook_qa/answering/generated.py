"""Generated answers: a language model writes, the grounding check decides what may be said.

The flow for one question:

1. **Gate.** The extractive answerer runs first (it is cheap). If no sentence of the passages
   supports an answer, the answer abstains without asking the model: the calibrated abstention stays
   the same in both modes, and the model gets no chance to make one up. 2. **Prompt.** The passages,
   minus any flagged at index time as instructions to a model, are numbered and fenced as quoted
   data within a token budget (:mod:`redbook_qa.answering.prompting`). 3. **Draft.** Any OpenAI-
   compatible server writes a draft (streamed, when asked). 4. **Check.** Every draft sentence is
   aligned to its best supporting passage sentence (:mod:`redbook_qa.answering.grounding`); the
   sentence gets that quote as its ``[n]``. A quote must also be relevant to the question (its
   evidence score at least ``relevance`` × the best), or a true sentence about something else would
   pass. Unsupported sentences are dropped (or, with ``on_unsupported="flag"``, kept and marked). 5.
   **Fallback.** If the server fails, or less than ``min_supported_ratio`` of the draft survives,
   the answer is the extractive one, with ``mode="llm-fallback"`` and a ``notice`` saying why.
   ``Answer.supported_ratio`` is the share of draft sentences that passed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Literal

from redbook_qa.answering.base import Answerer
from redbook_qa.answering.grounding import Alignment, Grounder, passage_of
from redbook_qa.answering.prompting import DEFAULT_CONTEXT_TOKENS, build_messages
from redbook_qa.embedding.base import Embedder
from redbook_qa.errors import RedbookQAError
from redbook_qa.llm.client import LLMClient
from redbook_qa.models import Answer, Citation, Context, Passage
from redbook_qa.text.screening import is_flagged
from redbook_qa.text.tokens import TiktokenCounter, TokenCounter

logger = logging.getLogger(__name__)

DEFAULT_MAX_ANSWER_TOKENS = 120
DEFAULT_MIN_SUPPORTED_RATIO = 0.5
DEFAULT_RELEVANCE = 0.7
_UNSUPPORTED_MARK = " (not supported by the articles)"


class LLMAnswerer:
    """Answer with a language model, keeping only sentences the passages support.

    Args:
        client: Any OpenAI-compatible client (see :mod:`redbook_qa.llm.client`).
        embedder: The retrieval embedder, reused by the grounding check.
        fallback: The extractive answerer: the gate before the model and the fallback after.
        grounder: The grounding check; by default one over ``embedder``.
        on_unsupported: ``"drop"`` unsupported sentences, or ``"flag"`` them in the text.
        min_supported_ratio: Below this share of supported draft sentences, fall back.
        relevance: A kept sentence's quote must score at least this share of the best
            evidence sentence's score for the question (0.7; the extractive answerer's
            quotes need 0.8).
        context_tokens: Token budget for the passages in the prompt.
        max_answer_tokens: Most tokens the model may write.
        counter: Counts prompt tokens (tiktoken's cl100k by default; close enough to size a
            budget for other tokenizers, which is all it is used for).
    """

    def __init__(
        self,
        client: LLMClient,
        embedder: Embedder,
        *,
        fallback: Answerer,
        grounder: Grounder | None = None,
        on_unsupported: Literal["drop", "flag"] = "drop",
        min_supported_ratio: float = DEFAULT_MIN_SUPPORTED_RATIO,
        relevance: float = DEFAULT_RELEVANCE,
        context_tokens: int = DEFAULT_CONTEXT_TOKENS,
        max_answer_tokens: int = DEFAULT_MAX_ANSWER_TOKENS,
        counter: TokenCounter | None = None,
    ) -> None:
        if not 0.0 <= min_supported_ratio <= 1.0:
            raise ValueError(f"min_supported_ratio must be in [0, 1], got {min_supported_ratio}")
        self.client = client
        self.fallback = fallback
        self.grounder = grounder or Grounder(embedder)
        self.on_unsupported = on_unsupported
        self.min_supported_ratio = min_supported_ratio
        self.relevance = relevance
        self.context_tokens = context_tokens
        self.max_answer_tokens = max_answer_tokens
        self.counter = counter or TiktokenCounter()

    def answer(self, question: str, context: Context) -> Answer:
        """Answer ``question`` from ``context``: checked generation, or the extractive answer."""
        final: Answer | None = None
        for item in self.stream(question, context, stream=False):
            if isinstance(item, Answer):
                final = item
        assert final is not None  # stream() always ends with an Answer
        return final

    def stream(
        self, question: str, context: Context, *, stream: bool = True
    ) -> Iterator[str | Answer]:
        """Yield the draft as the model writes it, then the checked ``Answer``."""
        quoted = self.fallback.answer(question, context)
        if quoted.abstained:
            yield quoted.model_copy(
                update={"notice": "No passage supports an answer, so the model was not asked."}
            )
            return
        passages = [p for p in context.passages if not is_flagged(p.metadata)]
        messages, shown = build_messages(question, passages, self.counter, self.context_tokens)
        if not shown:
            yield _fallback(quoted, "No passage could be shown to the model; quoting instead.")
            return
        pieces: list[str] = []
        try:
            if stream:
                for piece in self.client.stream(messages, max_tokens=self.max_answer_tokens):
                    pieces.append(piece)
                    yield piece
            else:
                pieces.append(self.client.complete(messages, max_tokens=self.max_answer_tokens))
        except RedbookQAError as err:
            logger.warning("LLM answer failed, quoting instead: %s", err)
            yield _fallback(quoted, f"The language model failed ({err}); quoting the articles.")
            return
        yield self._checked(question, "".join(pieces), context, shown, quoted)

    def _checked(
        self,
        question: str,
        draft: str,
        context: Context,
        passages: Sequence[Passage],
        quoted: Answer,
    ) -> Answer:
        # Only sentences of passages the model was shown can support what it wrote.
        shown = [i for i, e in enumerate(context.evidence) if passage_of(e, passages) is not None]
        evidence = [context.evidence[i] for i in shown]
        vectors = None if context.vectors is None else context.vectors[shown]
        alignments = self.grounder.align(
            draft, evidence, passages, question=question, vectors=vectors
        )
        alignments = _on_the_question(alignments, context, self.relevance)
        supported = [a for a in alignments if a.supported]
        ratio = len(supported) / len(alignments) if alignments else 0.0
        if not supported or ratio < self.min_supported_ratio:
            notice = (
                f"Only {len(supported)} of {len(alignments)} generated sentences were supported "
                "by the articles; quoting them instead."
            )
            return _fallback(quoted, notice, ratio=ratio)
        return _cited(question, alignments, context, ratio, flag=self.on_unsupported == "flag")


def _on_the_question(
    alignments: Sequence[Alignment], context: Context, relevance: float
) -> list[Alignment]:
    """Unsupport sentences whose quote scores below ``relevance`` × the best evidence score.

    A tiny model often copies true sentences that answer something else; the quote a
    sentence rests on must itself be among the evidence that answers the question.
    """
    best = max((e.score for e in context.evidence), default=0.0)
    return [
        replace(a, supported=False, reason="off the question")
        if a.supported and a.evidence is not None and a.evidence.score < relevance * best
        else a
        for a in alignments
    ]


def _fallback(quoted: Answer, notice: str, *, ratio: float | None = None) -> Answer:
    return quoted.model_copy(
        update={"mode": "llm-fallback", "notice": notice, "supported_ratio": ratio}
    )


def _cited(
    question: str,
    alignments: Sequence[Alignment],
    context: Context,
    ratio: float,
    *,
    flag: bool,
) -> Answer:
    numbers: dict[tuple[str, int], int] = {}
    citations: list[Citation] = []
    parts: list[str] = []
    for a in alignments:
        if not a.supported or a.evidence is None:
            if flag:
                parts.append(a.sentence + _UNSUPPORTED_MARK)
            continue
        e = a.evidence
        key = (e.source, e.start)
        if key not in numbers:
            numbers[key] = len(numbers) + 1
            citations.append(Citation.quoting(e, numbers[key], score=a.support))
        parts.append(f"{a.sentence} [{numbers[key]}]")
    return Answer(
        question=question,
        text=" ".join(parts),
        citations=tuple(citations),
        passages=context.passages,
        mode="llm",
        support=max(a.support for a in alignments),
        supported_ratio=ratio,
    )
