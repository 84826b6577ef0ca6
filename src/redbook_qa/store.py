"""The built index: chunks, sentences, their vectors, the FAISS and BM25 indexes, and a manifest.

Everything a query needs is computed here, at index time: chunk and sentence vectors, the
keyword index, and which sentences each chunk holds. The query path only looks things up.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from redbook_qa import __version__
from redbook_qa.aliases import mine_aliases
from redbook_qa.chunking import (
    CHUNKER_VERSION,
    chunk_documents,
    embedding_text,
    sentence_embedding_text,
)
from redbook_qa.embedding import Embedder, Vectors
from redbook_qa.errors import CorpusError
from redbook_qa.index import IndexKind, VectorIndex
from redbook_qa.lexical import LexicalIndex
from redbook_qa.models import Chunk, Document, Sentence
from redbook_qa.screening import instruction_signals
from redbook_qa.sentences import count_words, split_sentences
from redbook_qa.tokens import TokenCounter
from redbook_qa.vectorstore import Candidates, Filters, top_keyword

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
_MIN_EVIDENCE_WORDS = 4
_MAX_RECHUNK_ROUNDS = 4
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


class ChunkingParams(BaseModel):
    """How chunks were cut; a change means the chunks must be rebuilt."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_tokens: int
    overlap: int
    encoding: str
    version: int = CHUNKER_VERSION


class Manifest(BaseModel):
    """What an index directory holds, checked before anything else is trusted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int
    package_version: str
    embedder: str
    dimension: int
    normalized: Literal[True] = True
    chunking: ChunkingParams
    corpus_fingerprint: str
    documents: dict[str, str]
    n_chunks: int
    n_sentences: int
    index: dict[str, str | int | float]
    aliases: list[list[str]] = []
    # Whether the articles are mostly Chinese (over a third of chunks hold CJK); None in
    # indexes saved before it was recorded, where the retriever works it out from the chunks.
    cjk: bool | None = None


@dataclass(frozen=True)
class Store:
    """An index in memory, ready to answer queries (the in-process :class:`VectorStore`)."""

    manifest: Manifest
    chunks: list[Chunk]
    chunk_hashes: list[str]  # of exactly what was embedded, to reuse vectors across builds
    sentence_hashes: list[str]
    sentences: list[Sentence]
    chunk_vectors: Vectors
    sentence_vectors: Vectors
    chunk_sentences: list[npt.NDArray[np.int64]]
    index: VectorIndex
    lexical: LexicalIndex

    def candidates(
        self, query: Vectors, terms: Sequence[str], *, pool: int, filters: Filters | None = None
    ) -> Candidates:
        """Dense top-``pool`` (FAISS) joined with keyword top-``pool`` (BM25), or the filtered."""
        bm25 = self.lexical.scores(terms)  # every chunk, once per query
        if filters:
            positions = self._allowed(filters)
        elif min(pool, self.index.size) == 0:
            positions = np.zeros(0, dtype=np.int64)
        else:
            dense, _ = self.index.search(query, min(pool, self.index.size))
            positions = np.union1d(dense[0][dense[0] >= 0], top_keyword(bm25, pool))
        rows = [self.chunk_sentences[int(p)] for p in positions]
        members = {int(r) for group in rows for r in group}
        return Candidates(
            generation=self.manifest.corpus_fingerprint,
            chunks=[self.chunks[int(p)] for p in positions],
            vectors=self.chunk_vectors[positions],
            bm25=bm25[positions],
            sentence_rows=rows,
            sentences={r: self.sentences[r] for r in members},
            sentence_vectors={r: self.sentence_vectors[r] for r in members},
            idf={t: self.lexical.idf(t) for t in terms},
        )

    def sentence_vectors_of(self, keys: Sequence[tuple[str, int]]) -> Vectors | None:
        """Index-time vectors of sentences named by (chunk id, start), or ``None``."""
        rows = []
        for chunk_id, start in keys:
            position = self._chunk_positions.get(chunk_id)
            if position is None:
                return None
            found = [
                int(r)
                for r in self.chunk_sentences[position]
                if self.sentences[int(r)].start == start
            ]
            if not found:
                return None
            rows.append(found[0])
        return self.sentence_vectors[rows]

    def all_chunks(self) -> list[Chunk]:
        """Every chunk, in position order."""
        return self.chunks

    @functools.cached_property
    def _chunk_positions(self) -> dict[str, int]:
        return {chunk.id: i for i, chunk in enumerate(self.chunks)}

    def _allowed(self, filters: Filters) -> npt.NDArray[np.int64]:
        allowed: npt.NDArray[np.int64] | None = None
        for name, wanted in filters.items():
            values = [wanted] if isinstance(wanted, str) else list(wanted)
            index = self._field_index(name)
            rows = [index.get(value, np.zeros(0, dtype=np.int64)) for value in values]
            matched = np.unique(np.concatenate(rows)) if rows else np.zeros(0, dtype=np.int64)
            allowed = matched if allowed is None else np.intersect1d(allowed, matched)
        return np.zeros(0, dtype=np.int64) if allowed is None else allowed

    @functools.cached_property
    def _field_indexes(self) -> dict[str, dict[str, npt.NDArray[np.int64]]]:
        return {}  # filled per field on first use: chunk rows by field value

    def _field_index(self, name: str) -> dict[str, npt.NDArray[np.int64]]:
        if name not in self._field_indexes:
            groups: dict[str, list[int]] = {}
            for row, chunk in enumerate(self.chunks):
                value = field_value(chunk, name)
                if value is not None:
                    groups.setdefault(value, []).append(row)
            self._field_indexes[name] = {
                value: np.asarray(rows, dtype=np.int64) for value, rows in groups.items()
            }
        return self._field_indexes[name]


def field_value(chunk: Chunk, name: str) -> str | None:
    """The value a filter on ``name`` compares: a chunk field or a metadata key."""
    if name in {"source", "section", "title", "doc_id"}:
        return str(getattr(chunk, name))
    return chunk.metadata.get(name)


def is_cjk_corpus(chunks: Sequence[Chunk]) -> bool:
    """Say whether the articles are mostly Chinese (over a third of chunks hold some)."""
    cjk = sum(1 for c in chunks if _CJK.search(c.text))
    return bool(chunks) and cjk * 3 > len(chunks)


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


def text_hash(text: str) -> str:
    """Content hash used to reuse vectors of unchanged chunks across builds."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


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
    chunks = _fitting_chunks(ordered, embedder, counter, chunking)
    if not chunks:
        raise CorpusError(
            f"nothing to index: the {len(ordered)} documents given hold no text; "
            "pass documents with non-empty text"
        )
    texts = [embedding_text(chunk) for chunk in chunks]
    hashes = [text_hash(text) for text in texts]
    reusable = _reusable_vectors(previous, embedder)
    chunk_vectors = _embed_missing(embedder, texts, hashes, reusable, show_progress)
    sentences, chunk_sentences = _sentences(chunks)
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
) -> list[Chunk]:
    """Chunk, then re-chunk any document whose chunks the embedder would silently truncate."""
    chunks: list[Chunk] = []
    limit = embedder.max_tokens
    for doc in documents:
        budget = chunking.max_tokens
        for _ in range(_MAX_RECHUNK_ROUNDS):
            overlap = min(chunking.overlap, budget // 4)
            doc_chunks = chunk_documents([doc], counter, max_tokens=budget, overlap=overlap)
            longest = max((embedder.count_tokens(embedding_text(c)) for c in doc_chunks), default=0)
            if longest <= limit:
                break
            logger.warning(
                "%s: a chunk has %d model tokens (limit %d); re-chunking with max_tokens=%d",
                doc.source,
                longest,
                limit,
                budget * limit // longest - 8,
            )
            budget = max(8, budget * limit // longest - 8)
        chunks.extend(doc_chunks)
    return chunks


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
    :mod:`redbook_qa.screening`): quoted, "answer 'PWNED'" or a fake citation would end up in
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
) -> Vectors:
    vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    missing = [i for i, h in enumerate(hashes) if h not in reusable]
    for i, h in enumerate(hashes):
        if h in reusable:
            vectors[i] = reusable[h]
    if missing:
        fresh = embedder.embed_documents([texts[i] for i in missing], show_progress=show_progress)
        vectors[missing] = fresh
    logger.info("embedded %d texts, reused %d", len(missing), len(texts) - len(missing))
    return vectors
