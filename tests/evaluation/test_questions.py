"""The eval question set is well formed against the seeds, with the library's own sections."""

from __future__ import annotations

import pytest

from redbook_qa.evaluation.cases import load_cases
from redbook_qa.text.corpus import load_corpus
from redbook_qa.text.sections import detect_sections, heading_end

from conftest import ROOT, SEEDS

KINDS = {
    "factual",
    "synthesis",
    "paraphrase",
    "alias",
    "chinese",
    "unanswerable",
    "offtopic",
    "injection",
    "followup",
}
CASES = load_cases(ROOT / "evals" / "questions.jsonl")
DOCS = {d.source: d for d in load_corpus(SEEDS)}


def _section_at(source: str, offset: int) -> str:
    doc = DOCS[source]
    return next(
        s.heading for s in detect_sections(doc.text, doc.title) if s.start <= offset < s.end
    )


def test_the_set_is_large_and_covers_every_kind():
    assert len(CASES) >= 80
    assert {c.kind for c in CASES} == KINDS


def test_ids_are_unique_kinds_known_and_follow_ups_point_back():
    seen: set[str] = set()
    for case in CASES:
        assert case.id not in seen, case.id
        assert case.kind in KINDS, case.id
        assert case.follows is None or case.follows in seen, case.id
        seen.add(case.id)


@pytest.mark.parametrize("case", [c for c in CASES if c.answerable], ids=lambda c: c.id)
def test_answerable_cases_quote_their_gold_section_verbatim(case):
    sources = case.evidence_sources or [case.source] * len(case.evidence)
    assert case.evidence
    assert case.answer_keywords
    sections = set()
    for source, evidence in zip(sources, case.evidence, strict=True):
        offset = DOCS[source].text.find(evidence)
        assert offset >= 0, f"not verbatim in {source}: {evidence!r}"
        sections.add((source, _section_at(source, offset)))
    assert (case.source, case.section) in sections
    assert all(k == k.lower() for k in case.answer_keywords)
    assert any(k in " ".join(case.evidence).lower() for k in case.answer_keywords)


@pytest.mark.parametrize("case", [c for c in CASES if not c.answerable], ids=lambda c: c.id)
def test_unanswerable_cases_carry_no_gold(case):
    assert case.source is None
    assert case.section is None
    assert case.evidence == []
    assert case.answer_keywords == []


def test_every_section_with_body_text_has_a_factual_question():
    asked = {(c.source, c.section) for c in CASES if c.kind == "factual"}
    for source, doc in DOCS.items():
        for section in detect_sections(doc.text, doc.title):
            if doc.text[heading_end(doc.text, section) : section.end].strip():
                assert (source, section.heading) in asked, section.heading
