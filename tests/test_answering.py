from __future__ import annotations

import re

import pytest

from redbook_qa.answering import (
    Answerer,
    ExtractiveAnswerer,
    expected_answer_type,
    has_answer_type,
)
from redbook_qa.models import Context, Evidence

SOURCE = "Intro. Cats sleep a lot. Dogs bark loudly. Cats sleep a lot indeed. Birds sing in 2021."


def _evidence(text: str, score: float, source: str = "a.txt", coverage: float = 0.5) -> Evidence:
    start = SOURCE.index(text)
    return Evidence(
        text=text,
        start=start,
        end=start + len(text),
        chunk_id="a#0",
        source=source,
        title="Pets",
        section="Intro",
        score=score,
        similarity=score,
        coverage=coverage,
    )


def _context(*evidence: Evidence) -> Context:
    return Context(question="q", passages=(), evidence=tuple(evidence))


def test_extractive_answerer_is_an_answerer():
    assert isinstance(ExtractiveAnswerer(), Answerer)


def test_quotes_strong_sentences_in_article_order_with_numbered_citations():
    answerer = ExtractiveAnswerer(min_support=0.3, relative_cutoff=0.5)
    context = _context(_evidence("Dogs bark loudly.", 0.9), _evidence("Cats sleep a lot.", 0.8))
    answer = answerer.answer("What do pets do?", context)
    assert not answer.abstained
    assert answer.text == "Cats sleep a lot. [1] Dogs bark loudly. [2]"
    assert [c.number for c in answer.citations] == [1, 2]
    for c in answer.citations:
        assert SOURCE[c.start : c.end] == c.text


def test_weak_evidence_abstains_plainly_without_citations():
    answer = ExtractiveAnswerer(min_support=0.5).answer(
        "What is the capital of Australia?", _context(_evidence("Cats sleep a lot.", 0.2))
    )
    assert answer.abstained
    assert answer.text.startswith("The articles don't say")
    assert answer.citations == ()


def test_near_duplicates_and_weaker_sentences_are_dropped():
    answerer = ExtractiveAnswerer(min_support=0.3, relative_cutoff=0.8)
    context = _context(
        _evidence("Cats sleep a lot.", 0.9),
        _evidence("Cats sleep a lot indeed.", 0.88),
        _evidence("Dogs bark loudly.", 0.5),
    )
    assert answerer.answer("Do cats sleep?", context).text == "Cats sleep a lot. [1]"


def test_number_questions_need_a_number_in_the_quoted_sentence():
    answerer = ExtractiveAnswerer(min_support=0.3)
    only_words = _context(_evidence("Cats sleep a lot.", 0.9))
    assert answerer.answer("How many cats are there?", only_words).abstained
    with_year = _context(_evidence("Cats sleep a lot.", 0.9), _evidence("Birds sing in 2021.", 0.6))
    answer = answerer.answer("When do birds sing?", with_year)
    assert re.fullmatch(r"Birds sing in 2021\. \[1\]", answer.text)


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many users joined?", "number"),
        ("When was it founded?", "date"),
        ("What year did it start?", "date"),
        ("Why did users pick it?", None),
        ("小红书有多少用户？", "number"),
    ],
)
def test_answer_type_is_read_from_the_question(question, kind):
    assert expected_answer_type(question) == kind


def test_answer_types_are_found_in_text():
    assert has_answer_type("It has 300 million users", "number")
    assert not has_answer_type("One day you're trending", "number")
    assert has_answer_type("It launched in 2013.", "date")
    assert not has_answer_type("Users may leave.", "date")


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="relative_cutoff"):
        ExtractiveAnswerer(relative_cutoff=0)
    with pytest.raises(ValueError, match="max_sentences"):
        ExtractiveAnswerer(max_sentences=0)


def test_a_second_sentence_sharing_no_term_with_the_question_is_left_out():
    answerer = ExtractiveAnswerer(min_support=0.3, relative_cutoff=0.5)
    context = _context(
        _evidence("Dogs bark loudly.", 0.9),
        _evidence("Cats sleep a lot.", 0.85, coverage=0.0),
        _evidence("Birds sing in 2021.", 0.8),
    )
    answer = answerer.answer("What do pets do?", context)
    assert "Cats" not in answer.text
    assert [c.text for c in answer.citations] == ["Dogs bark loudly.", "Birds sing in 2021."]
