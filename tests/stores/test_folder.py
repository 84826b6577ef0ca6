from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from redbook_qa.api import RedbookQA
from redbook_qa.embedding.hash import HashEmbedder
from redbook_qa.errors import (
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
)
from redbook_qa.stores import folder as persist

from conftest import write


class CountingEmbedder(HashEmbedder):
    """Hash vectors, counting how many texts were embedded (to see re-embedding)."""

    def __init__(self) -> None:
        super().__init__(32)
        self.embedded = 0

    def embed_documents(self, texts, *, show_progress=False):
        self.embedded += len(texts)
        return super().embed_documents(texts, show_progress=show_progress)


@pytest.fixture
def corpus(hash_settings):
    folder = hash_settings.corpus_dir
    write(folder, "cats.txt", "Cats\nCats sleep most of the day. They hunt at night.\n")
    write(folder, "dogs.txt", "Dogs\nDogs bark at the mail carrier. They love long walks.\n")
    return folder


def _open(settings, embedder=None):
    return RedbookQA.from_dir(
        settings.corpus_dir, index_dir=settings.index_dir, settings=settings, embedder=embedder
    )


def test_save_load_round_trip_gives_the_same_index_and_answers(hash_settings, corpus):
    qa = _open(hash_settings)
    loaded = RedbookQA.load(hash_settings.index_dir)
    assert loaded.store.chunks == qa.store.chunks
    assert loaded.store.sentences == qa.store.sentences
    assert np.array_equal(loaded.store.chunk_vectors, qa.store.chunk_vectors)
    question = "Cats sleep most of the day."
    assert loaded.retrieve(question, k=2) == qa.retrieve(question, k=2)


def test_building_twice_writes_identical_files(hash_settings, corpus, tmp_path):
    qa = _open(hash_settings)
    first = qa.save(tmp_path / "a")
    second = qa.save(tmp_path / "b")
    assert first.name == second.name
    for path in first.rglob("*"):
        if path.is_file():
            assert path.read_bytes() == (second / path.relative_to(first)).read_bytes(), path


def test_a_changed_article_re_embeds_only_its_changed_chunks(hash_settings, corpus):
    first = CountingEmbedder()
    _open(hash_settings, first)
    assert first.embedded > 0
    again = CountingEmbedder()
    _open(hash_settings, again)
    assert again.embedded == 0, "a fresh index is loaded, not rebuilt"
    write(corpus, "dogs.txt", "Dogs\nDogs bark at the mail carrier. They chase red balls.\n")
    changed = CountingEmbedder()
    qa = _open(hash_settings, changed)
    assert 0 < changed.embedded < first.embedded
    assert any("red balls" in c.text for c in qa.store.chunks)


def test_a_crash_while_saving_leaves_the_previous_index_live(hash_settings, corpus, monkeypatch):
    _open(hash_settings)
    before = persist.live_generation(hash_settings.index_dir)
    write(corpus, "birds.txt", "Birds\nBirds sing at dawn every day.\n")

    def crash(store, folder):
        (folder / "manifest.json").write_text("{half", encoding="utf-8")
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(persist, "_write_files", crash)
    with pytest.raises(KeyboardInterrupt):
        _open(hash_settings)
    assert persist.live_generation(hash_settings.index_dir) == before
    assert not list(hash_settings.index_dir.glob(".staging-*"))
    assert len(RedbookQA.load(hash_settings.index_dir).store.manifest.documents) == 2


def test_a_truncated_file_is_named_in_a_clear_error(hash_settings, corpus):
    _open(hash_settings)
    vectors = persist.live_generation(hash_settings.index_dir) / "chunk_vectors.npy"
    vectors.write_bytes(vectors.read_bytes()[:40])
    with pytest.raises(IndexCorruptError, match=r"chunk_vectors\.npy.*rebuild"):
        RedbookQA.load(hash_settings.index_dir)


def test_a_missing_file_is_named_in_a_clear_error(hash_settings, corpus):
    _open(hash_settings)
    (persist.live_generation(hash_settings.index_dir) / "index.faiss").unlink()
    with pytest.raises(IndexNotFoundError, match=r"index\.faiss.*rebuild"):
        RedbookQA.load(hash_settings.index_dir)


def test_a_corrupt_index_is_rebuilt_when_the_corpus_is_at_hand(hash_settings, corpus):
    _open(hash_settings)
    folder = persist.live_generation(hash_settings.index_dir)
    (folder / "chunks.jsonl").write_text("garbage\n", encoding="utf-8")
    qa = _open(hash_settings)
    assert len(qa.store.manifest.documents) == 2
    assert {c.source for c in qa.store.chunks} == {"cats.txt", "dogs.txt"}
    assert RedbookQA.load(hash_settings.index_dir).store.chunks == qa.store.chunks


def test_other_format_versions_and_models_are_refused(hash_settings, corpus):
    _open(hash_settings)
    with pytest.raises(IndexMismatchError, match=r"built with hash-32.*rebuild"):
        RedbookQA.load(hash_settings.index_dir, embedder=HashEmbedder(16))
    manifest = persist.live_generation(hash_settings.index_dir) / "manifest.json"
    raw = json.loads(manifest.read_text(encoding="utf-8"))
    manifest.write_text(json.dumps({**raw, "format_version": 99}), encoding="utf-8")
    with pytest.raises(IndexMismatchError, match="format version 99"):
        RedbookQA.load(hash_settings.index_dir)


def test_missing_index_says_how_to_build_one(tmp_path):
    with pytest.raises(IndexNotFoundError, match="redbook-qa index"):
        RedbookQA.load(tmp_path / "nothing")


def test_a_second_writer_is_refused_while_the_lock_is_held(tmp_path):
    with (
        persist.write_lock(tmp_path),
        pytest.raises(IndexLockedError, match="another process"),
        persist.write_lock(tmp_path, wait=False),
    ):
        pass
    with persist.write_lock(tmp_path, wait=False):
        pass


def test_reused_vectors_equal_freshly_embedded_ones(hash_settings, corpus):
    _open(hash_settings)
    write(corpus, "dogs.txt", "Dogs\nDogs bark at the mail carrier.\n")  # one-sentence chunk
    write(corpus, "owls.txt", "Owls\nOwls hunt at night. They fly without a sound.\n")
    refreshed = _open(hash_settings)
    fresh = RedbookQA.from_dir(corpus, settings=hash_settings)
    assert refreshed.store.chunks == fresh.store.chunks
    assert np.array_equal(refreshed.store.chunk_vectors, fresh.store.chunk_vectors)
    assert np.array_equal(refreshed.store.sentence_vectors, fresh.store.sentence_vectors)


@pytest.mark.faults
def test_opening_a_fresh_index_removes_what_a_killed_build_left(hash_settings, corpus):
    _open(hash_settings)
    root = hash_settings.index_dir
    live = persist.live_generation(root)
    shutil.copytree(live, root / "gen-0000000000000000")  # made live, old one not yet removed
    (root / ".staging-x1").mkdir()  # killed while writing its files
    (root / ".current-x2").write_text("gen-\n", encoding="utf-8")  # killed before the switch
    with persist.write_lock(root):  # another writer at work: its files are left alone
        _open(hash_settings)
        assert (root / ".staging-x1").exists()
    _open(hash_settings)
    assert sorted(p.name for p in root.iterdir()) == [".lock", "CURRENT", live.name]
