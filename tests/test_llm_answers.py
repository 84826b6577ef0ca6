"""Generated answers through a real OpenAI-compatible server: the bundled SmolLM2.

Assertions are on structure, never on wording: every sentence that survives the grounding
check ends in a citation whose quote is verbatim in its article, and the answer falls back
to quotes, saying so, when the server dies mid-stream.
"""

from __future__ import annotations

import re

import pytest

from redbook_qa.answering.grounding import Grounder
from redbook_qa.api import RedbookQA
from redbook_qa.config import Settings
from redbook_qa.llm.local import LocalLLMServer
from redbook_qa.models import Answer

pytestmark = pytest.mark.integration
CITED = re.compile(r"([^\[\]]+? \[\d+\] ?)+")


@pytest.fixture(scope="module")
def llm_qa(local_llm, seeds_qa):
    settings = seeds_qa.settings.model_copy(
        update={"llm_base_url": local_llm.base_url, "llm_model": local_llm.model}
    )
    return RedbookQA(seeds_qa.store, seeds_qa.embedder, settings=settings)


def _check(qa: RedbookQA, answer: Answer) -> None:
    assert answer.text.strip()
    assert answer.mode in {"llm", "llm-fallback"}
    assert CITED.fullmatch(answer.text), f"a sentence without [n]: {answer.text!r}"
    for c in answer.citations:
        text = (qa.settings.corpus_dir / c.source).read_text(encoding="utf-8")
        assert text[c.start : c.end] == c.text
    if answer.mode == "llm":
        assert answer.supported_ratio is not None
        assert answer.supported_ratio >= 0.5
        # Each kept sentence passes the grounding check against the quote it cites.
        grounder = Grounder(qa.embedder)
        context = qa.context(answer.question, k=qa.settings.k)
        checked = grounder.align(
            answer.text, context.evidence, context.passages, vectors=context.vectors
        )
        assert all(a.supported for a in checked), [a.reason for a in checked]
    else:
        assert answer.notice


def test_the_llm_mode_is_offered_and_answers_with_checked_citations(llm_qa):
    assert llm_qa.modes == ("extractive", "llm")
    assert llm_qa.default_mode == "llm"
    answer = llm_qa.ask("Why are people leaving TikTok for Xiaohongshu?")
    assert not answer.abstained
    _check(llm_qa, answer)


def test_streaming_shows_the_draft_then_the_checked_answer(llm_qa):
    items = list(llm_qa.ask_stream("What does TikTok often feel dominated by?"))
    *draft, final = items
    assert draft
    assert all(isinstance(p, str) for p in draft)
    assert isinstance(final, Answer)
    _check(llm_qa, final)


def test_a_question_the_articles_do_not_answer_is_refused_in_llm_mode_too(llm_qa):
    answer = llm_qa.ask("What is the capital of Australia?")
    assert answer.abstained
    assert "don't say" in answer.text


def test_a_server_killed_mid_stream_gives_the_quoted_answer_and_says_why(seeds_qa):
    with LocalLLMServer() as server:
        settings = seeds_qa.settings.model_copy(
            update={"llm_base_url": server.base_url, "llm_model": server.model, "llm_timeout": 20.0}
        )
        qa = RedbookQA(seeds_qa.store, seeds_qa.embedder, settings=settings)
        stream = qa.ask_stream("Why are people leaving TikTok for Xiaohongshu?")
        first = next(stream)
        assert isinstance(first, str)
        server.stop()
        final = list(stream)[-1]
    assert isinstance(final, Answer)
    assert final.mode == "llm-fallback"
    assert final.citations
    assert "language model failed" in final.notice
    _check(qa, final)


def test_an_unreachable_server_falls_back_within_the_timeout(seeds_qa):
    settings = Settings(
        corpus_dir=seeds_qa.settings.corpus_dir,
        index_dir=seeds_qa.settings.index_dir,
        llm_base_url="http://127.0.0.1:9/v1",
        llm_timeout=3.0,
        llm_max_retries=1,
    )
    qa = RedbookQA(seeds_qa.store, seeds_qa.embedder, settings=settings)
    answer = qa.ask("Who makes Labubu?")
    assert answer.mode == "llm-fallback"
    assert "Pop Mart" in answer.text
    assert "language model failed" in answer.notice
