"""A folder of .pdf, .docx, .html, .md and .txt articles: one index, verbatim page-aware answers."""

from __future__ import annotations

import pytest

from redbook_qa.api import RedbookQA
from redbook_qa.errors import CorpusError
from redbook_qa.serving.cli import main
from redbook_qa.text.corpus import load_corpus
from redbook_qa.text.pages import page_at

from conftest import write
from documents import write_docx, write_encrypted_pdf, write_pdf

PDF_PAGES = [
    ("Ferry Timetable", [("Ferry Timetable", ["The first ferry leaves the harbour at dawn."])]),
    ("Lighthouse Keepers", [("Duties", ["The keeper polishes the brass lamp every morning."])]),
]
PAGE = (
    "<html><head><title>Glacier Walks</title></head><body><nav><a href='/'>Home</a> "
    "<a href='/tours'>Tours</a></nav><article><h1>Glacier Walks</h1><p>Guided glacier walks "
    "start from the visitor centre and last about three hours, crampons included.</p>"
    "</article><footer>Copyright Glacier Tours. All rights reserved.</footer></body></html>"
)
QUESTIONS = {
    "When does the first ferry leave the harbour?": ("coast.pdf", 1),
    "What does the lighthouse keeper polish every morning?": ("coast.pdf", 2),
    "Who founded the Moonleaf tea cooperative?": ("tea.docx", None),
    "How long do the guided glacier walks last?": ("glacier.html", None),
    "What do cats do most of the day?": ("pets.txt", None),
    "How long can parrots live?": ("birds.md", None),
}


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "articles"
    folder.mkdir()
    write_pdf(folder / "coast.pdf", PDF_PAGES)
    write_docx(
        folder / "tea.docx",
        "Moonleaf Tea",
        [("History", ["The Moonleaf tea cooperative was founded by twelve farmers in 1987."])],
    )
    (folder / "glacier.html").write_text(PAGE, encoding="utf-8")
    write(folder, "pets.txt", "Pets\nCats sleep most of the day.\n")
    write(folder, "birds.md", "# Birds\n\nParrots can live for eighty years.\n")
    return folder


def test_every_format_indexes_in_one_command(corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("REDBOOK_QA_EMBEDDING_MODEL", "hash-32")
    assert main(["index", str(corpus), "--index-dir", str(tmp_path / "index")]) == 0
    assert "index of 5 documents" in capsys.readouterr().out
    documents = {d.source: d for d in load_corpus(corpus)}
    assert documents["glacier.html"].title == "Glacier Walks"
    assert "Tours" not in documents["glacier.html"].text
    qa = RedbookQA.load(tmp_path / "index")
    for chunk in qa.store.all_chunks():
        text = documents[chunk.source].text
        assert text[chunk.start : chunk.end] == chunk.text
        has_pages = chunk.source.endswith(".pdf")
        assert (page_at(chunk.metadata, chunk.start) is not None) == has_pages


def test_a_bad_file_in_the_folder_is_named_and_the_index_is_kept(corpus, hash_settings):
    settings = hash_settings.model_copy(update={"corpus_dir": corpus})
    qa = RedbookQA.from_dir(corpus, index_dir=settings.index_dir, settings=settings)
    before = qa.store.manifest
    write_encrypted_pdf(corpus / "locked.pdf")
    with pytest.raises(CorpusError, match=r"locked\.pdf is encrypted"):
        qa.refresh()
    assert qa.store.manifest == before
    (corpus / "locked.pdf").unlink()
    write_pdf(corpus / "more.pdf", [("Tide Tables", [("Tide Tables", ["High tide is at noon."])])])
    assert qa.refresh().added == ("more.pdf",)


@pytest.mark.integration
def test_each_format_answers_with_a_verbatim_page_aware_citation(corpus, embedder, tmp_path):
    qa = RedbookQA.from_dir(corpus, embedder=embedder)
    texts = {d.source: d.text for d in load_corpus(corpus)}
    for question, (source, page) in QUESTIONS.items():
        answer = qa.ask(question)
        assert not answer.abstained, question
        first = answer.citations[0]
        assert (first.source, first.page) == (source, page), question
        assert texts[source][first.start : first.end] == first.text
