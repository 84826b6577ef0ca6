from __future__ import annotations

import itertools

import pytest

from redbook_qa.models import Document
from redbook_qa.text.chunking import chunk_document, chunk_documents, embedding_text
from redbook_qa.text.sections import detect_sections, heading_end
from redbook_qa.text.sentences import split_sentences
from redbook_qa.text.tokens import TiktokenCounter, WhitespaceCounter

from conftest import SEEDS


def _seed_docs() -> list[Document]:
    docs = []
    for path in sorted(SEEDS.iterdir()):
        text = path.read_text(encoding="utf-8")
        docs.append(
            Document(id=path.stem, title=text.split("\n", 1)[0], text=text, source=path.name)
        )
    return docs


@pytest.mark.parametrize(("max_tokens", "overlap"), [(160, 32), (40, 10), (12, 0)])
def test_chunks_fit_budget_keep_offsets_and_cover_every_body_sentence(max_tokens, overlap):
    counter = TiktokenCounter()
    for doc in _seed_docs():
        chunks = chunk_document(doc, counter, max_tokens=max_tokens, overlap=overlap)
        for chunk in chunks:
            assert doc.text[chunk.start : chunk.end] == chunk.text
            assert chunk.n_tokens == counter.count(chunk.text) <= max_tokens
        covered = [False] * len(doc.text)
        for chunk in chunks:
            covered[chunk.start : chunk.end] = [True] * (chunk.end - chunk.start)
        for section in detect_sections(doc.text, doc.title):
            for start, end in split_sentences(
                doc.text, heading_end(doc.text, section), section.end
            ):
                missed = [
                    i for i in range(start, end) if not covered[i] and not doc.text[i].isspace()
                ]
                assert not missed, doc.text[start:end]


def test_chunks_never_cross_sections_and_carry_heading_and_title():
    chunks = chunk_documents(_seed_docs(), TiktokenCounter())
    labubu = [c for c in chunks if "Pop Mart" in c.text]
    assert labubu
    assert all(c.title.startswith("Labubu") for c in labubu)
    for chunk in chunks:
        assert chunk.section not in chunk.text.split("\n")[0] or chunk.section == chunk.text
        assert embedding_text(chunk).startswith(chunk.title)
        assert chunk.text in embedding_text(chunk)


def test_neighbouring_chunks_share_whole_sentences_up_to_the_overlap():
    text = "Title\n" + " ".join(f"Sentence number {i} is here." for i in range(30))
    doc = Document(id="d", title="Title", text=text)
    counter = WhitespaceCounter()
    chunks = chunk_document(doc, counter, max_tokens=20, overlap=10)
    assert len(chunks) > 2
    for before, after in itertools.pairwise(chunks):
        assert after.end > before.end, "every chunk adds new text"
    for before, after in itertools.pairwise(chunks):
        shared = doc.text[after.start : before.end]
        assert after.start < before.end, "consecutive chunks should overlap"
        assert 0 < counter.count(shared) <= 10
        assert shared.endswith(".")


def test_a_sentence_longer_than_the_budget_is_cut_at_word_boundaries():
    text = "Title\n" + "word " * 100 + "end."
    doc = Document(id="long", title="Title", text=text)
    chunks = chunk_document(doc, WhitespaceCounter(), max_tokens=15, overlap=0)
    assert all(c.n_tokens <= 15 for c in chunks)
    assert "".join(c.text for c in chunks).replace(" ", "") == text[6:].replace(" ", "")


def test_empty_and_heading_only_documents_give_no_chunks():
    counter = WhitespaceCounter()
    assert chunk_document(Document(id="e", title="", text=""), counter) == []
    assert chunk_document(Document(id="h", title="Only", text="Only\n"), counter) == []


def test_ids_are_stable_and_ordered():
    doc = _seed_docs()[0]
    first = chunk_document(doc, TiktokenCounter())
    again = chunk_document(doc, TiktokenCounter())
    assert first == again
    assert [c.id for c in first] == [f"{doc.id}#{i}" for i in range(len(first))]


@pytest.mark.parametrize(("max_tokens", "overlap"), [(0, 0), (10, 10), (10, -1)])
def test_bad_budgets_are_rejected(max_tokens, overlap):
    doc = Document(id="d", title="t", text="t\nSome text.")
    with pytest.raises(ValueError, match=r"max_tokens|overlap"):
        chunk_document(doc, WhitespaceCounter(), max_tokens=max_tokens, overlap=overlap)
