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
