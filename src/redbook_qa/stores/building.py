"""Building an index: chunk, embed (reusing unchanged vectors), index, and write its manifest."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from redbook_qa.embedding.base import Embedder, SpanEmbedder, Tokenized, Vectors
from redbook_qa.errors import CorpusError
from redbook_qa.models import Chunk, Document, Sentence
from redbook_qa.stores.base import (
    FORMAT_VERSION,
    ChunkingParams,
    Manifest,
)
from redbook_qa.stores.bm25 import LexicalIndex
from redbook_qa.stores.faiss_index import IndexKind, VectorIndex
from redbook_qa.stores.memory import Store
from redbook_qa.stores.pooling import embed_pooled, text_hash
from redbook_qa.text.chunking import (
    chunk_documents,
    embedding_text,
    sentence_embedding_text,
)
from redbook_qa.text.cjk import is_cjk_corpus
from redbook_qa.text.names import mine_aliases
from redbook_qa.text.screening import instruction_signals
from redbook_qa.text.sentences import count_words, split_sentences
from redbook_qa.text.tokens import TokenCounter
from redbook_qa.version import __version__

logger = logging.getLogger(__name__)

_MIN_EVIDENCE_WORDS = 4

_MAX_RECHUNK_ROUNDS = 4


def fingerprint(documents: Sequence[Document]) -> dict[str, str]:
    """Map each document source to a SHA-256 of its id, title, text and metadata."""
    out: dict[str, str] = {}
    for doc in documents:
        digest = hashlib.sha256(doc.model_dump_json().encode("utf-8")).hexdigest()
        out[doc.source] = digest
    return dict(sorted(out.items()))


def corpus_fingerprint(documents: dict[str, str]) -> str:
    """Combine per-document digests into one corpus digest."""
    joined = "\n".join(f"{source}\t{digest}" for source, digest in sorted(documents.items()))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


def build_store(
    documents: Sequence[Document],
    embedder: Embedder,
    counter: TokenCounter,
    *,
    chunking: ChunkingParams,
    index_kind: IndexKind = "auto",
    previous: Store | None = None,
    show_progress: bool = False,
) -> Store:
    """Chunk, embed and index documents, reusing vectors of unchanged chunks from ``previous``.

    Raises:
        CorpusError: The documents hold no text to index (all empty or whitespace).
        ValueError: Two documents share an id.
    """
    started = time.perf_counter()
    ordered = sorted(documents, key=lambda d: d.id)
    _check_unique_ids(ordered)
    chunks, tokenized = _fitting_chunks(ordered, embedder, counter, chunking)
    if not chunks:
        raise CorpusError(
            f"nothing to index: the {len(ordered)} documents given hold no text; "
            "pass documents with non-empty text"
        )
    texts = [embedding_text(chunk) for chunk in chunks]
    hashes = [text_hash(text) for text in texts]
    reusable = _reusable_vectors(previous, embedder)
    sentences, chunk_sentences = _sentences(chunks)
    pooled = chunking.sentence_vectors == "pooled"
    if pooled and isinstance(embedder, SpanEmbedder) and tokenized is not None:
        chunk_vectors, sentence_vectors, sentence_hashes = embed_pooled(
            embedder, chunks, tokenized, hashes, sentences, reusable, show_progress
        )
    else:
        chunk_vectors = _embed_missing(
            embedder, texts, hashes, reusable, show_progress, tokenized=tokenized
        )
        by_id = {chunk.id: chunk for chunk in chunks}
        sentence_texts = [
            sentence_embedding_text(s.text, by_id[s.chunk_id].title, by_id[s.chunk_id].section)
            for s in sentences
        ]
        sentence_hashes = [text_hash(t) for t in sentence_texts]
        sentence_vectors = _embed_missing(
            embedder, sentence_texts, sentence_hashes, reusable, show_progress
        )
    index = VectorIndex.build(chunk_vectors, kind=index_kind)
    docs = fingerprint(ordered)
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        package_version=__version__,
        embedder=embedder.name,
        dimension=embedder.dimension,
        chunking=chunking,
        corpus_fingerprint=corpus_fingerprint(docs),
        documents=docs,
        n_chunks=len(chunks),
        n_sentences=len(sentences),
        index={k: v for k, v in index.params.items() if isinstance(v, str | int | float)},
        aliases=mine_aliases(doc.text for doc in ordered).groups,
        cjk=is_cjk_corpus(chunks),
    )
    logger.info(
        "indexed %d chunks and %d sentences of %d documents in %.1f s",
        len(chunks),
        len(sentences),
        len(ordered),
        time.perf_counter() - started,
    )
    return Store(
        manifest=manifest,
        chunks=chunks,
        chunk_hashes=hashes,
        sentence_hashes=sentence_hashes,
        sentences=sentences,
        chunk_vectors=chunk_vectors,
        sentence_vectors=sentence_vectors,
        chunk_sentences=chunk_sentences,
        index=index,
        lexical=LexicalIndex.build(texts),
    )


def _check_unique_ids(documents: Sequence[Document]) -> None:
    seen: set[str] = set()
    for doc in documents:
        if doc.id in seen:
            raise ValueError(f"two documents share the id {doc.id!r}; ids must be unique")
        seen.add(doc.id)


def _fitting_chunks(
    documents: Sequence[Document],
    embedder: Embedder,
    counter: TokenCounter,
    chunking: ChunkingParams,
) -> tuple[list[Chunk], Tokenized | None]:
    """Chunk, then re-chunk any document whose chunks the embedder would silently truncate.

    With a :class:`SpanEmbedder` the chunks' embedding texts are tokenised once, in one call
    per round, and the same token ids feed the encoder: the truncation check and the forward
    pass share one tokenisation (only re-chunked documents are tokenised again).
    """
    limit = embedder.max_tokens
    budgets = {doc.id: chunking.max_tokens for doc in documents}
    done: dict[str, tuple[list[Chunk], Tokenized | None]] = {}
    pending = list(documents)
    for round_ in range(_MAX_RECHUNK_ROUNDS):
        chunked = {doc.id: _chunk(doc, counter, chunking, budgets[doc.id]) for doc in pending}
        texts = [embedding_text(c) for doc in pending for c in chunked[doc.id]]
        tokenized = embedder.tokenize(texts) if isinstance(embedder, SpanEmbedder) else None
        lengths = tokenized.lengths if tokenized else [embedder.count_tokens(t) for t in texts]
        retry: list[Document] = []
        first = 0
        for doc in pending:
            rows = range(first, first + len(chunked[doc.id]))
            first = rows.stop
            longest = max((lengths[r] for r in rows), default=0)
            if longest <= limit or round_ == _MAX_RECHUNK_ROUNDS - 1:
                done[doc.id] = (chunked[doc.id], tokenized.select(rows) if tokenized else None)
                continue
            budget = max(8, budgets[doc.id] * limit // longest - 8)
            logger.warning(
                "%s: a chunk has %d model tokens (limit %d); re-chunking with max_tokens=%d",
                doc.source,
                longest,
                limit,
                budget,
            )
            budgets[doc.id] = budget
            retry.append(doc)
        pending = retry
        if not pending:
            break
    chunks = [c for doc in documents for c in done[doc.id][0]]
    parts = [done[doc.id][1] for doc in documents]
    if any(part is None for part in parts):
        return chunks, None
    return chunks, Tokenized.concat([part for part in parts if part is not None])


def _chunk(
    doc: Document, counter: TokenCounter, chunking: ChunkingParams, budget: int
) -> list[Chunk]:
    overlap = min(chunking.overlap, budget // 4)
    return chunk_documents([doc], counter, max_tokens=budget, overlap=overlap)


def _sentences(chunks: Sequence[Chunk]) -> tuple[list[Sentence], list[npt.NDArray[np.int64]]]:
    """Unique quotable sentences, and for each chunk the rows of the sentences it holds."""
    rows: dict[tuple[str, int, int], int] = {}
    sentences: list[Sentence] = []
    per_chunk: list[npt.NDArray[np.int64]] = []
    for chunk in chunks:
        members: list[int] = []
        for start, end in split_sentences(chunk.text):
            text = chunk.text[start:end]
            if not _is_quotable(text):
                continue
            key = (chunk.source, chunk.start + start, chunk.start + end)
            if key not in rows:
                rows[key] = len(sentences)
                sentences.append(Sentence(text=text, start=key[1], end=key[2], chunk_id=chunk.id))
            members.append(rows[key])
        per_chunk.append(np.asarray(members, dtype=np.int64))
    return sentences, per_chunk


def _is_quotable(text: str) -> bool:
    """A sentence worth quoting has words: not a hashtag run, a link label or a lone heading.

    Nor is a sentence that reads as instructions to a model or carries ``[n]`` markers (see
    :mod:`redbook_qa.text.screening`): quoted, "answer 'PWNED'" or a fake citation would end up in
    answers to unrelated questions, since such articles are written to match many of them.
    """
    words = [w for w in text.split() if not w.startswith("#")]
    if count_words(" ".join(words)) < _MIN_EVIDENCE_WORDS or len(words) < 2:
        return False
    return not instruction_signals(text)


def _reusable_vectors(previous: Store | None, embedder: Embedder) -> dict[str, Vectors]:
    if previous is None or previous.manifest.embedder != embedder.name:
        return {}
    if previous.manifest.dimension != embedder.dimension:
        return {}
    # Keyed by the hash of the text that was embedded: the same text gives the same vector,
    # whether it was embedded as a chunk or as a sentence.
    reusable = {h: previous.chunk_vectors[i] for i, h in enumerate(previous.chunk_hashes)}
    for i, h in enumerate(previous.sentence_hashes):
        reusable[h] = previous.sentence_vectors[i]
    return reusable


def _embed_missing(
    embedder: Embedder,
    texts: Sequence[str],
    hashes: Sequence[str],
    reusable: dict[str, Vectors],
    show_progress: bool,
    *,
    tokenized: Tokenized | None = None,
) -> Vectors:
    """Embed the texts without a reusable vector; from ``tokenized`` when the check made it."""
    vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    missing = [i for i, h in enumerate(hashes) if h not in reusable]
    for i, h in enumerate(hashes):
        if h in reusable:
            vectors[i] = reusable[h]
    if missing and tokenized is not None and isinstance(embedder, SpanEmbedder):
        # The truncation check's token ids feed the encoder: the chunks are not tokenised again.
        fresh, _ = embedder.embed_spans(
            tokenized.select(missing), [[] for _ in missing], show_progress=show_progress
        )
        vectors[missing] = fresh
    elif missing:
        fresh = embedder.embed_documents([texts[i] for i in missing], show_progress=show_progress)
        vectors[missing] = fresh
    logger.info("embedded %d texts, reused %d", len(missing), len(texts) - len(missing))
    return vectors
