from __future__ import annotations

import json

import pytest

from redbook_qa.errors import CorpusError
from redbook_qa.text.corpus import load_corpus, load_jsonl

from conftest import DATA, SEEDS, write


def test_seeds_load_sorted_with_titles_and_file_text_unchanged():
    docs = load_corpus(SEEDS)
    assert [d.source for d in docs] == ["000_b3cfbc0e092d2c3d.txt", "004_b37c8ff2df9e95d1.txt"]
    assert docs[0].title.startswith("The Xiaohongshu Migration")
    for doc in docs:
        with (SEEDS / doc.source).open(encoding="utf-8") as handle:
            assert handle.read() == doc.text


def test_markdown_and_cjk_files_load_and_empty_ones_are_skipped(caplog):
    docs = load_corpus(DATA)
    sources = [d.source for d in docs]
    assert "markdown.md" in sources
    assert "cjk.txt" in sources
    assert "empty.txt" not in sources
    assert next(d for d in docs if d.source == "markdown.md").title == "Cats at Home"
    assert "empty" in caplog.text


def test_a_file_that_is_not_utf8_is_named_in_the_error(tmp_path):
    write(tmp_path, "good.txt", "Title\nFine text.")
    (tmp_path / "bad.txt").write_bytes("Titre\ncaf\xe9".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"bad\.txt.*UTF-8"):
        load_corpus(tmp_path)


def test_missing_or_empty_folders_say_what_to_do(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "nope")
    write(tmp_path, "notes.odt", "not an article")
    with pytest.raises(CorpusError, match=r"add non-empty \.txt, \.md, \.html, \.htm, \.pdf"):
        load_corpus(tmp_path)


def test_symlinks_leaving_the_folder_and_hidden_files_are_skipped(tmp_path):
    corpus = tmp_path / "corpus"
    write(corpus, "a.txt", "A\nInside text.")
    write(corpus, ".hidden.txt", "H\nHidden.")
    outside = write(tmp_path, "secret.txt", "Secret\nDo not index.")
    (corpus / "link.txt").symlink_to(outside)
    assert [d.source for d in load_corpus(corpus)] == ["a.txt"]


def test_nested_folders_keep_relative_paths_as_sources(tmp_path):
    write(tmp_path, "sub/deep.md", "# Deep\nText.")
    assert load_corpus(tmp_path)[0].source == "sub/deep.md"


def test_beir_jsonl_records_become_documents(tmp_path):
    path = tmp_path / "corpus.jsonl"
    rows = [
        {"_id": "d1", "title": "Normans", "text": "Normandy is in France.", "metadata": {"a": 1}}
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    (doc,) = load_jsonl(path)
    assert (doc.id, doc.source, doc.title, doc.metadata) == ("d1", "d1", "Normans", {"a": "1"})
    path.write_text('{"title": "no id"}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"corpus\.jsonl:1"):
        load_jsonl(path)


def test_a_folder_holding_more_text_than_its_limit_stops_at_the_file_that_passes_it(tmp_path):
    for name in ("a", "b", "c"):
        write(tmp_path, f"{name}.txt", f"{name.upper()}\n" + "word " * 100)
    assert len(load_corpus(tmp_path, max_chars=2_000)) == 3
    with pytest.raises(
        CorpusError, match=r"\(reached at b\.txt\) hold more than 1,000 characters in all"
    ):
        load_corpus(tmp_path, max_chars=1_000)
