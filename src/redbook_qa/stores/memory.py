"""The index in this process: chunks, sentences, their vectors, FAISS and BM25, in memory."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from redbook_qa.embedding.base import Vectors
from redbook_qa.models import Chunk, Sentence
from redbook_qa.stores.base import (
    Candidates,
    Filters,
    Manifest,
    StoreKind,
    field_value,
    top_keyword,
)
from redbook_qa.stores.bm25 import LexicalIndex
from redbook_qa.stores.faiss_index import VectorIndex


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

    def all_chunks(self) -> list[Chunk]:
        """Every chunk, in position order."""
        return self.chunks

    @property
    def kind(self) -> StoreKind:
        """Searched in this process."""
        return "process"

    def snapshot(self) -> Store:
        """Return itself: it is in this process already."""
        return self

    def close(self) -> None:
        """Hold nothing open: nothing to release."""

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
