"""The retriever over a real store: what it ranks, what it hands the answerer, what it refuses."""

from __future__ import annotations

import numpy as np
import pytest

from redbook_qa.embedding.hash import HashEmbedder
from redbook_qa.errors import IndexMismatchError
from redbook_qa.models import Document
from redbook_qa.retrieval.retriever import Retriever
from redbook_qa.stores.base import ChunkingParams
from redbook_qa.stores.building import build_store
from redbook_qa.text.tokens import WhitespaceCounter

TEA = "Tea\nGreen tea is steamed soon after picking. Its taste is mild and grassy."
PETS = "Pets\nCats sleep most of the day. Dogs bark loudly at night."
DOCS = [
    Document(id="tea", title="Tea", text=TEA),
    Document(id="pets", title="Pets", text=PETS),
]


@pytest.fixture(scope="module")
def hashed():
    embedder = HashEmbedder(16)
    chunking = ChunkingParams(max_tokens=40, overlap=0, encoding="whitespace")
    return embedder, build_store(DOCS, embedder, WhitespaceCounter(), chunking=chunking)


def test_keyword_matches_rank_first_even_with_meaningless_vectors(hashed):
    embedder, store = hashed
    retriever = Retriever(embedder, store)
    passages = retriever.retrieve(retriever.query("Why do dogs bark?"), k=2)
    assert passages[0].source == "pets"
    assert "bark" in passages[0].matched_terms
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)


def test_the_context_carries_each_evidence_sentence_with_its_vector(hashed):
    embedder, store = hashed
    retriever = Retriever(embedder, store)
    context = retriever.context(retriever.query("Why do dogs bark?"), k=2)
    assert context.vectors is not None
    assert context.vectors.shape == (len(context.evidence), embedder.dimension)
    for evidence, vector in zip(context.evidence, context.vectors, strict=True):
        row = next(i for i, s in enumerate(store.sentences) if s.start == evidence.start)
        np.testing.assert_array_equal(vector, store.sentence_vectors[row])
    assert len(context.redundancy) == len(context.evidence)


def test_a_filter_keeps_to_the_sources_named(hashed):
    embedder, store = hashed
    retriever = Retriever(embedder, store)
    passages = retriever.retrieve(retriever.query("dogs"), k=5, filters={"source": "tea"})
    assert {p.source for p in passages} == {"tea"}


def test_an_embedder_other_than_the_index_one_is_refused(hashed):
    _, store = hashed
    with pytest.raises(IndexMismatchError, match="rebuild it with `redbook-qa index`"):
        Retriever(HashEmbedder(8), store)


def test_k_below_one_is_a_plain_value_error(hashed):
    embedder, store = hashed
    retriever = Retriever(embedder, store)
    with pytest.raises(ValueError, match="k must be >= 1"):
        retriever.retrieve(retriever.query("dogs"), k=0)


@pytest.mark.integration
def test_a_paraphrase_finds_the_right_article_with_the_real_model(seeds_qa):
    retriever = seeds_qa.retriever
    query = retriever.query("Which toy firm produces the fanged collectible figure?")
    assert "Labubu" in retriever.retrieve(query, k=1)[0].title
