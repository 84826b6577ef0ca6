"""Index homes: a fresh saved index is reused, a stale one rebuilt, re-embedding only changes."""

from __future__ import annotations

from pathlib import Path

from redbook_qa.embedding.hash import HashEmbedder
from redbook_qa.models import Document
from redbook_qa.stores.base import BuildSpec, ChunkingParams
from redbook_qa.stores.location import Folder, InMemory, home_for
from redbook_qa.text.tokens import WhitespaceCounter

SPEC = BuildSpec(chunking=ChunkingParams(max_tokens=30, overlap=0, encoding="whitespace"))
DOCS = [
    Document(id="a", title="A", text="A\nAlpha is the first sentence. Alpha is the second one."),
    Document(id="b", title="B", text="B\nBeta is the first sentence. Beta is the second one."),
]


class Counting(HashEmbedder):
    """The hash embedder, counting the texts it embeds."""

    def __init__(self) -> None:
        super().__init__(8)
        self.embedded = 0

    def embed_documents(self, texts, *, show_progress=False):
        self.embedded += len(texts)
        return super().embed_documents(texts, show_progress=show_progress)


def test_a_folder_reuses_its_fresh_index_without_embedding_anything(tmp_path):
    embedder = Counting()
    first = Folder(tmp_path).open(DOCS, embedder, SPEC, WhitespaceCounter())
    embedded = embedder.embedded
    again = Folder(tmp_path).open(DOCS, embedder, SPEC, WhitespaceCounter())
    assert embedder.embedded == embedded
    assert again.manifest == first.manifest


def test_a_changed_article_is_rebuilt_re_embedding_only_what_changed(tmp_path):
    embedder = Counting()
    home = Folder(tmp_path)
    home.open(DOCS, embedder, SPEC, WhitespaceCounter())
    before = embedder.embedded
    edited = "B\nBeta is the first sentence. A brand new sentence here."
    changed = [DOCS[0], DOCS[1].model_copy(update={"text": edited})]
    store = home.open(changed, embedder, SPEC, WhitespaceCounter())
    assert 0 < embedder.embedded - before < before
    assert "A brand new sentence here." in {s.text for s in store.sentences}


def test_in_memory_builds_reusing_the_previous_index(tmp_path):
    embedder = Counting()
    first = InMemory().open(DOCS, embedder, SPEC, WhitespaceCounter())
    before = embedder.embedded
    InMemory().open(DOCS, embedder, SPEC, WhitespaceCounter(), previous=first)
    assert embedder.embedded == before


def test_the_configuration_picks_the_home():
    assert isinstance(home_for(None, None, schema="s", local_dir=Path("x")), InMemory)
    folder = home_for(None, Path("idx"), schema="s", local_dir=Path("x"))
    assert isinstance(folder, Folder)
    assert folder.root == Path("idx")
