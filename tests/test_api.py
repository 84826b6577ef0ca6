from __future__ import annotations

import re
import shutil

import pytest

import redbook_qa
from redbook_qa import Document, RedbookQA
from redbook_qa.answering.confidence import confidence_label
from redbook_qa.evaluation.cases import load_cases

from conftest import ROOT, SEEDS

pytestmark = pytest.mark.integration
MARKER = re.compile(r"\[(\d+)\]")


def _file_text(source: str) -> str:
    with (SEEDS / source).open(encoding="utf-8") as handle:
        return handle.read()


def test_why_users_picked_xiaohongshu_gets_a_cited_multi_sentence_answer(seeds_qa):
    answer = seeds_qa.ask("why did users pick Xiaohongshu?")
    assert not answer.abstained
    sentences = [s for s in re.split(r"(?<=\])\s+", answer.text) if s]
    assert 2 <= len(sentences) <= 5
    assert all(MARKER.search(s) for s in sentences)
    assert {int(n) for n in MARKER.findall(answer.text)} == {c.number for c in answer.citations}
    for citation in answer.citations:
        assert _file_text(citation.source)[citation.start : citation.end] == citation.text
    # Confidence is about the quotes the user reads, not quote [1] alone: the flagship's
    # four reasons must not be shown as a "low" guess.
    assert confidence_label(answer.support) != "low", answer.support


def test_who_makes_labubu_cites_the_labubu_digest(seeds_qa):
    answer = seeds_qa.ask("Who makes Labubu?")
    assert not answer.abstained
    assert "Pop Mart" in answer.text
    cited = next(c for c in answer.citations if "Pop Mart" in c.text)
    assert cited.title.startswith("Labubu")
    assert cited.source == "004_b37c8ff2df9e95d1.txt"


@pytest.mark.parametrize(
    "question",
    ["How many daily active users does Xiaohongshu have?", "What is the capital of Australia?"],
)
def test_questions_the_articles_do_not_answer_abstain(seeds_qa, question):
    answer = seeds_qa.ask(question)
    assert answer.abstained
    assert answer.text.startswith("The articles don't say")
    assert answer.citations == ()
    assert answer.passages, "the closest passages are still offered as related"


def test_every_eval_answer_quotes_its_sources_verbatim(seeds_qa):
    for case in load_cases(ROOT / "evals" / "questions.jsonl"):
        answer = seeds_qa.ask(case.question)
        for citation in answer.citations:
            assert _file_text(citation.source)[citation.start : citation.end] == citation.text, (
                case.id
            )
        for passage in answer.passages:
            assert _file_text(passage.source)[passage.start : passage.end] == passage.text


def test_retrieve_ranks_best_first_explains_scores_and_filters(seeds_qa):
    passages = seeds_qa.retrieve("What are Key Opinion Leaders?", k=4)
    assert len(passages) == 4
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
    assert "KOLs" in passages[0].text
    assert passages[0].matched_terms
    only = seeds_qa.retrieve("Labubu", k=3, filters={"source": "000_b3cfbc0e092d2c3d.txt"})
    assert only
    assert all(p.source == "000_b3cfbc0e092d2c3d.txt" for p in only)


def test_aliases_find_what_the_canonical_name_finds(seeds_qa):
    canonical = seeds_qa.retrieve("Why do brands love Xiaohongshu?", k=1)[0]
    for alias in ("RedNote", "XHS", "Little Red Book", "小红书"):
        assert seeds_qa.retrieve(f"Why do brands love {alias}?", k=3)[
            0
        ].chunk_id == canonical.chunk_id or canonical.chunk_id in {
            p.chunk_id for p in seeds_qa.retrieve(f"Why do brands love {alias}?", k=3)
        }


def test_from_documents_uses_document_ids_as_sources(embedder):
    docs = [
        Document(id="p1", title="Normans", text="The Normans gave their name to Normandy."),
        Document(id="p2", title="Cells", text="Mitochondria are the powerhouse of the cell."),
    ]
    qa = RedbookQA.from_documents(docs, embedder=embedder)
    (passage,) = qa.retrieve("Where does the name Normandy come from?", k=1)
    assert passage.source == "p1"
    answer = qa.ask("What is the powerhouse of the cell?")
    assert answer.citations[0].source == "p2"


def test_bad_questions_and_k_get_clear_errors(seeds_qa):
    with pytest.raises(ValueError, match="empty"):
        seeds_qa.ask("   \n\t ")
    with pytest.raises(ValueError, match="k must be"):
        seeds_qa.retrieve("Labubu", k=0)
    with pytest.raises(TypeError, match="string"):
        seeds_qa.ask(42)  # type: ignore[arg-type]
    long = seeds_qa.ask("Who makes Labubu? " * 5000)
    assert long.question.startswith("Who makes Labubu?")


def test_module_level_ask_uses_the_configured_folders(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    monkeypatch.setenv("REDBOOK_QA_CORPUS_DIR", str(corpus))
    monkeypatch.setenv("REDBOOK_QA_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setattr(redbook_qa, "_default", None)
    answer = redbook_qa.ask("Who makes Labubu?")
    assert "Pop Mart" in answer.text
    assert (tmp_path / "index" / "CURRENT").is_file()
    assert redbook_qa.retrieve("Labubu", k=2)[0].title.startswith("Labubu")
