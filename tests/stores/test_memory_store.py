from __future__ import annotations

import numpy as np

from redbook_qa.embedding.hash import HashEmbedder
from redbook_qa.models import Document
from redbook_qa.stores.base import ChunkingParams
from redbook_qa.stores.building import build_store
from redbook_qa.text.tokens import WhitespaceCounter

DOCS = [
    Document(id=f"d{i}", title=f"T{i}", text=f"T{i}\nWord{i} appears here. Filler text {i}.")
    for i in range(6)
]


def _store():
    chunking = ChunkingParams(max_tokens=30, overlap=0, encoding="whitespace")
    return build_store(DOCS, HashEmbedder(8), WhitespaceCounter(), chunking=chunking)


def test_candidates_join_the_nearest_chunks_and_the_keyword_matches():
    store = _store()
    query = store.chunk_vectors[2:3]  # exactly chunk 2's vector
    found = store.candidates(query, ["word5"], pool=1)
    ids = [c.doc_id for c in found.chunks]
    assert "d2" in ids  # nearest
    assert "d5" in ids  # the only keyword match
    assert found.bm25[ids.index("d5")] > 0
    assert found.idf["word5"] > 0


def test_candidates_carry_the_sentences_and_vectors_scoring_needs():
    store = _store()
    found = store.candidates(store.chunk_vectors[:1], [], pool=6)
    for chunk, rows, vector in zip(found.chunks, found.sentence_rows, found.vectors, strict=True):
        assert all(found.sentences[int(r)].chunk_id == chunk.id for r in rows)
        position = store.chunks.index(chunk)
        np.testing.assert_array_equal(vector, store.chunk_vectors[position])


def test_a_filter_returns_every_matching_chunk_and_nothing_else():
    store = _store()
    found = store.candidates(store.chunk_vectors[:1], [], pool=1, filters={"doc_id": ["d1", "d4"]})
    assert sorted(c.doc_id for c in found.chunks) == ["d1", "d4"]


def test_the_in_process_store_is_its_own_snapshot():
    store = _store()
    assert store.kind == "process"
    assert store.snapshot() is store
    store.close()  # holds nothing open; still usable
    assert store.all_chunks() == store.chunks
