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

from stream_faults import StreamFault

pytestmark = [pytest.mark.integration, pytest.mark.faults]
CITED = re.compile(r"([^\[\]]+? \[\d+\] ?)+")
# These tests are about grounding, not speed: a slow CPU must never run into the deadline.
LONG = 600.0


@pytest.fixture(scope="module")
def llm_qa(local_llm, seeds_qa):
    settings = seeds_qa.settings.model_copy(
        update={
            "llm_base_url": local_llm.base_url,
            "llm_model": local_llm.model,
            "llm_timeout": LONG,
        }
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
    # The proxy lets exactly one piece of the real model's draft through, then kills the server
    # and ends the connection mid-body: the fault lands there however fast the CPU writes.
    with (
        LocalLLMServer(startup_timeout=LONG) as server,
        StreamFault(server.base_url, after=1, fault="drop", on_fault=server.stop) as proxy,
    ):
        qa = _through(seeds_qa, proxy, server, timeout=LONG)
        stream = qa.ask_stream("Why are people leaving TikTok for Xiaohongshu?")
        first = next(stream)
        final = list(stream)[-1]
        assert not server.is_running, f"the server should be dead after the cut; {proxy.describe()}"
    assert proxy.faulted.is_set(), f"the draft ended before the cut; {proxy.describe()}"
    assert [first] == proxy.relayed, f"the client saw {first!r}; {proxy.describe()}"
    assert isinstance(final, Answer)
    assert final.mode == "llm-fallback", f"mode {final.mode!r}, notice {final.notice!r}"
    assert final.citations
    assert "language model failed" in final.notice, f"notice {final.notice!r}"
    _check(qa, final)


def test_a_server_that_stalls_mid_stream_gives_the_quoted_answer_at_the_deadline(
    local_llm, seeds_qa
):
    # Two pieces, then silence until the test ends. On a slow CPU the deadline may come before
    # the second piece; either way the page keeps what it was shown and quotes instead.
    with StreamFault(local_llm.base_url, after=2, fault="stall") as proxy:
        qa = _through(seeds_qa, proxy, local_llm, timeout=3.0)
        *draft, final = qa.ask_stream("Why are people leaving TikTok for Xiaohongshu?")
    assert draft == proxy.relayed, f"the page showed {draft!r}; {proxy.describe()}"
    assert final.mode == "llm-fallback", f"mode {final.mode!r}, notice {final.notice!r}"
    assert "timed out" in final.notice, f"notice {final.notice!r}; {proxy.describe()}"
    _check(qa, final)


def _through(seeds_qa, proxy: StreamFault, server, *, timeout: float) -> RedbookQA:
    """The seeds index answering through ``proxy`` in front of the bundled ``server``."""
    settings = seeds_qa.settings.model_copy(
        update={"llm_base_url": proxy.url, "llm_model": server.model, "llm_timeout": timeout}
    )
    return RedbookQA(seeds_qa.store, seeds_qa.embedder, settings=settings)


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
