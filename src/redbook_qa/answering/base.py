"""The answerer protocols and the plain "the articles don't say" answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from redbook_qa.models import Answer, Context


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


def answer_stream(answerer: Answerer, question: str, context: Context) -> Iterator[str | Answer]:
    """Yield an answerer's draft as it is written, then its ``Answer``.

    An answerer that cannot stream yields its ``Answer`` alone.
    """
    if isinstance(answerer, StreamingAnswerer):
        yield from answerer.stream(question, context)
    else:
        yield answerer.answer(question, context)


def abstention(question: str, context: Context, *, support: float = 0.0) -> Answer:
    """Return the plain "the articles don't say" answer, with the closest passages attached."""
    return Answer(
        question=question,
        text="The articles don't say. No passage in them supports an answer to this question.",
        abstained=True,
        passages=context.passages,
        support=support,
    )
