"""Sentence vectors pooled from their chunk's forward pass ("late chunking"), and text keys.

A chunk and the sentences it owns come out of one pass of the model; keys tie each vector to
the text that made it, so rebuilds reuse what did not change.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

import numpy as np

from redbook_qa.embedding.base import Span, SpanEmbedder, Tokenized, Vectors
from redbook_qa.models import Chunk, Sentence

logger = logging.getLogger(__name__)

SENTENCE_POOLING = "late-v1"
"""How ``sentence_vectors="pooled"`` makes sentence vectors; part of each sentence's key.

"late-v1": the mean of the chunk's contextual token embeddings over the sentence's own tokens,
normalised, from the chunk's one forward pass ("late chunking"). Measured against "encoded"
(each sentence encoded again with its title and heading: 4.5 texts per chunk on SQuAD) in one
session, 2026-12-02:

- build of 300 SQuAD paragraphs: 1.0 vs 2.3 times a bare encode of the chunks alone
  (``benchmarks/bench_build.py``);
- SQuAD dev half, first 300 answerable + 300 unanswerable (``redbook-qa eval-beir … --limit
  300``): answer in the answer text 0.773 → 0.797, in the first quote 0.723 → 0.737,
  unanswerables refused 0.097 → 0.143, nDCG@10 0.916 → 0.908 (first 1,000 questions: 0.895 →
  0.891 at the retriever's sentence weight 0.3, 0.901 at 0.6); mixing the title/heading tokens
  into each sentence's pool (weights 0.5, 1.0) scored lower on answers (0.777, 0.767);
- seeds evals (115 cases), with the answering models re-fitted on pooled vectors (the shipped
  ones are fitted on encoded): MRR 0.754 → 0.775 and keyword accuracy 0.764 → 0.787, but
  quote precision 0.603 → 0.567, citation precision 0.73 → 0.72 and aspect coverage of the
  "why" lists 0.417 → 0.300: sentences pooled in one chunk share its context, so the bearing
  and MMR signals that tell a chunk's sentences apart get blurred, and the seeds floors
  (``evals/floors.json``) fail.

Re-measured 2026-12-03 with the answerer of that day (models fitted on encoded vectors),
seeds evals pooled vs encoded: keyword accuracy 0.775 vs 0.820, quote precision 0.581 vs
0.628, first quote on point 0.718 vs 0.753, aspect coverage 0.317 vs 0.483, abstention
recall 0.615 vs 0.577; first quote, aspect coverage and citation precision fail their floors.

So "encoded" stays the default, and "pooled" is the setting for corpora where the build's cost
matters more than the last points of quote precision (``REDBOOK_QA_SENTENCE_VECTORS=pooled``).
"""


def text_hash(text: str) -> str:
    """Content hash used to reuse vectors of unchanged chunks across builds."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def embed_pooled(
    embedder: SpanEmbedder,
    chunks: Sequence[Chunk],
    tokenized: Tokenized,
    hashes: Sequence[str],
    sentences: Sequence[Sentence],
    reusable: dict[str, Vectors],
    show_progress: bool,
) -> tuple[Vectors, Vectors, list[str]]:
    """Chunk and sentence vectors from one forward pass per chunk that needs embedding.

    A sentence is pooled in the first chunk that holds it (its ``chunk_id``). Its key hashes
    that chunk's text and the sentence's place in it, so an unchanged chunk reuses its
    sentences' vectors as it reuses its own; a chunk is run again when it is new or when one
    of its sentences has no stored vector.
    """
    row_of = {chunk.id: i for i, chunk in enumerate(chunks)}
    spans: list[list[Span]] = [[] for _ in chunks]
    owned: list[list[int]] = [[] for _ in chunks]
    keys: list[str] = []
    for k, sentence in enumerate(sentences):
        row = row_of[sentence.chunk_id]
        chunk = chunks[row]
        offset = len(tokenized.texts[row]) - len(chunk.text) - chunk.start
        span = (sentence.start + offset, sentence.end + offset)
        spans[row].append(span)
        owned[row].append(k)
        keys.append(text_hash(f"{SENTENCE_POOLING}\t{hashes[row]}\t{span[0]}:{span[1]}"))
    dim = embedder.dimension
    chunk_vectors = np.zeros((len(chunks), dim), dtype=np.float32)
    sentence_vectors = np.zeros((len(sentences), dim), dtype=np.float32)
    todo: list[int] = []
    for row, h in enumerate(hashes):
        if h in reusable and all(keys[k] in reusable for k in owned[row]):
            chunk_vectors[row] = reusable[h]
            for k in owned[row]:
                sentence_vectors[k] = reusable[keys[k]]
        else:
            todo.append(row)
    if todo:
        fresh, pooled = embedder.embed_spans(
            tokenized.select(todo), [spans[row] for row in todo], show_progress=show_progress
        )
        chunk_vectors[todo] = fresh
        for row, vectors in zip(todo, pooled, strict=True):
            if owned[row]:
                sentence_vectors[owned[row]] = vectors
    logger.info(
        "embedded %d chunks in one pass each (%d sentences pooled), reused %d",
        len(todo),
        sum(len(owned[row]) for row in todo),
        len(chunks) - len(todo),
    )
    return chunk_vectors, sentence_vectors, keys
