from __future__ import annotations

import numpy as np
import pytest

from redbook_qa.embedding import BUNDLED_MODEL, HashEmbedder, SentenceTransformerEmbedder
from redbook_qa.embedding.choice import embedder_named


def test_hash_vectors_are_unit_length_and_the_same_for_the_same_text():
    embedder = HashEmbedder(12)
    a, b, c = embedder.embed_documents(["cats", "cats", "dogs"])
    np.testing.assert_allclose(np.linalg.norm([a, b, c], axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_array_equal(embedder.embed_query("cats")[0], a)


def test_a_model_name_picks_its_embedder():
    assert embedder_named("hash-7").dimension == 7
    named = embedder_named(BUNDLED_MODEL)
    assert isinstance(named, SentenceTransformerEmbedder)
    assert named.name == BUNDLED_MODEL


def test_constructing_the_real_embedder_loads_nothing_until_used():
    embedder = SentenceTransformerEmbedder(BUNDLED_MODEL)
    assert "model" not in embedder.__dict__  # a cached_property not computed yet


def test_a_bad_batch_size_is_refused_at_construction():
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        SentenceTransformerEmbedder(batch_size=0)


@pytest.mark.integration
def test_the_bundled_model_embeds_offline_into_unit_vectors(embedder):
    vectors = embedder.embed_documents(["Cats sleep.", "Felines nap.", "Stocks fell."])
    assert vectors.shape == (3, embedder.dimension) == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]  # meaning, not spelling
    assert embedder.count_tokens("Cats sleep.") == 5  # [CLS] cats sleep . [SEP]


@pytest.mark.integration
def test_one_pass_gives_the_passage_vector_and_one_vector_per_sentence(embedder):
    first = "Users moved to Xiaohongshu after the TikTok ban."
    second = "Stock markets fell sharply on Monday."
    text = f"Migration\n{first} {second}"
    a = text.index(first)
    b = text.index(second)
    tokenized = embedder.tokenize([text])
    assert tokenized.lengths == [embedder.count_tokens(text)]
    vectors, pooled = embedder.embed_spans(tokenized, [[(a, a + len(first)), (b, len(text))]])
    # The passage vector is exactly what a plain encode gives: chunk retrieval is unchanged.
    np.testing.assert_allclose(vectors, embedder.embed_documents([text]), atol=1e-5)
    assert pooled[0].shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(pooled[0], axis=1), 1.0, rtol=1e-5)
    alone = embedder.embed_documents([first, second])
    similarity = pooled[0] @ alone.T
    # Each pooled sentence is nearer its own text than the other sentence of the passage.
    assert similarity[0, 0] > similarity[0, 1]
    assert similarity[1, 1] > similarity[1, 0]


@pytest.mark.integration
def test_a_passage_over_the_model_limit_is_truncated_as_a_plain_encode_truncates(embedder):
    text = " ".join(f"word{i} is here." for i in range(200))
    tokenized = embedder.tokenize([text])
    assert tokenized.lengths[0] > embedder.max_tokens
    tail = (len(text) - 20, len(text))
    vectors, pooled = embedder.embed_spans(tokenized, [[(0, 14), tail]])
    np.testing.assert_allclose(vectors, embedder.embed_documents([text]), atol=1e-5)
    # A span cut off by the truncation falls back to the passage's own vector.
    np.testing.assert_allclose(pooled[0][1], vectors[0], atol=1e-6)
