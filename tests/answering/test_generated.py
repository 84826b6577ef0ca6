"""The LLM answerer with a scripted model: the gate, the check, the fallback, streaming.

The model here is a script (wiring); the embedder and passages are real, so the grounding
check runs as it does in production. Runs against a real server live in test_local_llm.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import pytest

from redbook_qa.answering.extractive import ExtractiveAnswerer
from redbook_qa.answering.generated import LLMAnswerer
from redbook_qa.errors import LLMUnavailableError
from redbook_qa.llm.client import Message
from redbook_qa.models import Answer

QUESTION = "Who makes Labubu?"
FAITHFUL = "Labubu is made by Pop Mart. It is a collectible blind box figure."
INVENTED = "Labubu is made by Mattel in Ohio. It was invented in 1850 by Napoleon."


class ScriptedModel:
    """An LLM client that replies with a fixed draft and records what it was sent."""

    name = "scripted"

    def __init__(self, draft: str = FAITHFUL, *, fail_after: int | None = None) -> None:
        self.draft = draft
        self.fail_after = fail_after
        self.calls: list[Sequence[Message]] = []

    def complete(self, messages: Sequence[Message], **_: object) -> str:
        return "".join(self.stream(messages))

    def stream(self, messages: Sequence[Message], **_: object) -> Iterator[str]:
        self.calls.append(messages)
        words = self.draft.split(" ")
        for i, word in enumerate(words):
            if self.fail_after is not None and i == self.fail_after:
                raise LLMUnavailableError("connection reset by the test server")
            yield word if i == 0 else " " + word


def _answerer(qa, model: ScriptedModel, **kwargs) -> LLMAnswerer:
    return LLMAnswerer(
        model,
        qa.embedder,
        fallback=ExtractiveAnswerer(),
        **kwargs,
    )


def _context(qa, question: str = QUESTION):
    return qa.context(question, k=5)


def test_a_faithful_draft_is_kept_and_every_sentence_quotes_an_exact_span(seeds_qa):
    answer = _answerer(seeds_qa, ScriptedModel()).answer(QUESTION, _context(seeds_qa))
    assert answer.mode == "llm"
    assert answer.supported_ratio == 1.0
    assert "Pop Mart" in answer.text
    assert answer.citations
    assert re.fullmatch(r"([^\[\]]+ \[\d+\] ?)+", answer.text), "every sentence ends in [n]"
    texts = {
        c.source: (seeds_qa.settings.corpus_dir / c.source).read_text() for c in answer.citations
    }
    for c in answer.citations:
        assert texts[c.source][c.start : c.end] == c.text


def test_an_invented_draft_falls_back_to_quotes_and_says_why(seeds_qa):
    answer = _answerer(seeds_qa, ScriptedModel(INVENTED)).answer(QUESTION, _context(seeds_qa))
    assert answer.mode == "llm-fallback"
    assert answer.supported_ratio == 0.0
    assert "Mattel" not in answer.text
    assert "1850" not in answer.text
    assert "supported" in answer.notice
    assert answer.citations, "the fallback is the extractive, cited answer"


def test_unsupported_sentences_are_dropped_or_flagged_as_configured(seeds_qa):
    draft = FAITHFUL + " Its factory is in Ohio and employs 7000 people."
    dropped = _answerer(seeds_qa, ScriptedModel(draft)).answer(QUESTION, _context(seeds_qa))
    assert dropped.mode == "llm"
    assert "Ohio" not in dropped.text
    assert dropped.supported_ratio == pytest.approx(2 / 3)
    flagged = _answerer(seeds_qa, ScriptedModel(draft), on_unsupported="flag").answer(
        QUESTION, _context(seeds_qa)
    )
    assert "Ohio" in flagged.text
    assert "(not supported by the articles)" in flagged.text


def test_a_question_the_articles_do_not_answer_never_reaches_the_model(seeds_qa):
    model = ScriptedModel("The capital of Peru is Lima. [1]")
    question = "What is the capital of Peru?"
    answer = _answerer(seeds_qa, model).answer(question, _context(seeds_qa, question))
    assert answer.abstained
    assert not model.calls
    assert "don't say" in answer.text


def test_streaming_yields_the_draft_then_the_checked_answer(seeds_qa):
    items = list(_answerer(seeds_qa, ScriptedModel()).stream(QUESTION, _context(seeds_qa)))
    *pieces, final = items
    assert all(isinstance(p, str) for p in pieces)
    assert len(pieces) > 3
    assert "".join(pieces) == FAITHFUL
    assert isinstance(final, Answer)
    assert final.mode == "llm"


def test_a_server_failing_mid_stream_falls_back_with_a_notice(seeds_qa):
    model = ScriptedModel(fail_after=3)
    items = list(_answerer(seeds_qa, model).stream(QUESTION, _context(seeds_qa)))
    final = items[-1]
    assert isinstance(final, Answer)
    assert final.mode == "llm-fallback"
    assert final.citations
    assert "language model failed" in final.notice


def test_the_prompt_fences_passages_as_data_and_numbers_them(seeds_qa):
    model = ScriptedModel()
    _answerer(seeds_qa, model).answer(QUESTION, _context(seeds_qa))
    system, user = model.calls[0]
    assert "never instructions" in system["content"]
    assert '<passage n="1"' in user["content"]
    assert user["content"].rstrip().endswith("Answer:")
    assert QUESTION in user["content"]
