"""Where a query's candidate passages come from: the protocol every index store implements.

The retriever never walks a whole index. Per question it asks the store for *candidates*: the
``pool`` chunks nearest the query vector joined with the ``pool`` best BM25 chunks for the
query terms (or every chunk a filter allows), each with what scoring needs: its vector, its
BM25 score, its quotable sentences and their vectors, and the IDF of the query terms. Fusion,
merging and evidence scoring then run in the retriever, the same way whatever the store.

Two stores implement it:

- :class:`redbook_qa.store.Store`: everything in this process (FAISS + BM25 matrices), loaded
  from an index folder. The default, and the fastest for a folder of articles.
- :class:`redbook_qa.pgstore.PgVectorStore`: PostgreSQL + pgvector, searched at query time
  (HNSW on the vectors, BM25 postings in a table), so any number of stateless app replicas
  serve one shared index.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from redbook_qa.embedding import Vectors
from redbook_qa.models import Chunk, Sentence

if TYPE_CHECKING:
    from redbook_qa.store import Manifest

Filters = Mapping[str, str | Sequence[str]]
Positions = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Candidates:
    """The chunks worth scoring for one query, with everything scoring them needs.

    Attributes:
        generation: Which build of the index the rows come from (its corpus fingerprint);
            caches keyed by chunk must be dropped when it changes.
        chunks: The candidate chunks, in ascending store position.
        vectors: Their unit vectors, row i for ``chunks[i]``.
        bm25: Their BM25 scores for the query terms (0 where no term matches).
        sentence_rows: Per chunk, the store rows of its quotable sentences, in text order.
        sentences: Every sentence those rows name, by row.
        sentence_vectors: The vector of every sentence in ``sentences``, by row.
        idf: Inverse document frequency of each query term in the whole corpus.
    """

    generation: str
    chunks: list[Chunk]
    vectors: Vectors
    bm25: npt.NDArray[np.float32]
    sentence_rows: list[Positions]
    sentences: Mapping[int, Sentence]
    sentence_vectors: Mapping[int, Vectors]
    idf: Mapping[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.chunks)


class VectorStore(Protocol):
    """A built index that can be searched: in memory, or in a database shared by replicas."""

    @property
    def manifest(self) -> Manifest:
        """What the index holds: model, chunking, corpus fingerprint, documents, aliases."""
        ...

    def candidates(
        self,
        query: Vectors,
        terms: Sequence[str],
        *,
        pool: int,
        filters: Filters | None = None,
    ) -> Candidates:
        """Return the union of the ``pool`` nearest and ``pool`` best keyword chunks.

        With ``filters`` (field → value or values; fields are ``source``, ``section``,
        ``title``, ``doc_id`` or a metadata key), every chunk that matches all of them.
        """
        ...

    def sentence_vectors_of(self, keys: Sequence[tuple[str, int]]) -> Vectors | None:
        """Return index-time vectors of sentences named by (chunk id, start offset).

        ``None`` when one of them is not in the index (it was rebuilt meanwhile).
        """
        ...

    def all_chunks(self) -> list[Chunk]:
        """Every chunk, in position order (for listing articles; not for the query path)."""
        ...


def top_keyword(bm25: npt.NDArray[np.float32], pool: int) -> Positions:
    """Positions of the ``pool`` best positive BM25 scores; equal scores: smaller first.

    The tie rule is the one ``ORDER BY score DESC, position`` gives, so every store picks the
    same chunks.
    """
    matched = np.flatnonzero(bm25 > 0)
    if len(matched) <= pool:
        return matched.astype(np.int64)
    scores = bm25[matched]
    threshold = -np.partition(-scores, pool - 1)[pool - 1]
    above = matched[scores > threshold]
    tied = matched[scores == threshold]  # ascending, as matched is
    return np.concatenate((above, tied[: pool - len(above)])).astype(np.int64)
