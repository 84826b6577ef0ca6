"""Keeping the index in step with the folder, and choosing how answers are written."""

from __future__ import annotations

import pytest

from redbook_qa.api import RedbookQA
from redbook_qa.errors import CorpusError
from redbook_qa.models import Answer

from conftest import write


@pytest.fixture
def qa(hash_settings):
    write(hash_settings.corpus_dir, "cats.txt", "Cats\nCats sleep most of the day in the sun.\n")
    return RedbookQA.open(hash_settings)


def test_refresh_reports_what_changed_and_answers_from_the_new_articles(qa, hash_settings):
    assert not qa.refresh()
    write(hash_settings.corpus_dir, "dogs.txt", "Dogs\nDogs bark at the mail carrier daily.\n")
    change = qa.refresh()
    assert change.added == ("dogs.txt",)
    assert not change.changed
    assert not change.removed
    assert "added dogs.txt" in change.describe()
    assert any(p.source == "dogs.txt" for p in qa.retrieve("Why do dogs bark?", k=2))

    write(hash_settings.corpus_dir, "cats.txt", "Cats\nCats hunt mice at night.\n")
    (hash_settings.corpus_dir / "dogs.txt").unlink()
    change = qa.refresh()
    assert change.changed == ("cats.txt",)
    assert change.removed == ("dogs.txt",)
    assert {p.source for p in qa.retrieve("animals", k=5)} == {"cats.txt"}
    reopened = RedbookQA.open(hash_settings)  # the refreshed index was saved
    assert reopened.store.manifest.documents == qa.store.manifest.documents


def test_a_bad_file_fails_the_refresh_and_keeps_the_index_in_use(qa, hash_settings):
    before = qa.store.manifest.documents
    (hash_settings.corpus_dir / "broken.txt").write_bytes(b"\xff\xfe\x00bad\x00" * 10)
    with pytest.raises(CorpusError, match=r"broken\.txt"):
        qa.refresh()
    assert qa.store.manifest.documents == before
    assert qa.retrieve("Where do cats sleep?", k=1)[0].source == "cats.txt"


def test_answers_are_extractive_unless_an_llm_is_configured(qa):
    assert qa.modes == ("extractive",)
    assert qa.default_mode == "extractive"
    with pytest.raises(ValueError, match="REDBOOK_QA_LLM_BASE_URL"):
        qa.ask("Where do cats sleep?", mode="llm")
    items = list(qa.ask_stream("Where do cats sleep?"))
    assert len(items) == 1
    assert isinstance(items[0], Answer)
    assert items[0] == qa.ask("Where do cats sleep?")
