"""The values every index store deals in: manifest, build spec, and a query's candidates.

The retriever never walks a whole index. Per question it asks the store for *candidates*: the
``pool`` chunks nearest the query vector joined with the ``pool`` best BM25 chunks for the
query terms (or every chunk a filter allows), each with what scoring needs: its vector, its
BM25 score, its quotable sentences and their vectors, and the IDF of the query terms. Fusion,
merging and evidence scoring then run in the retriever, the same way whatever the store.
The protocol a store implements is :class:`redbook_qa.stores.protocol.VectorStore`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from redbook_qa.embedding.base import Embedder, Vectors
from redbook_qa.errors import IndexMismatchError
from redbook_qa.models import Chunk, Sentence
from redbook_qa.stores.faiss_index import IndexKind
from redbook_qa.text.chunking import CHUNKER_VERSION

StoreKind = Literal["process", "postgresql"]
# Chunk fields a filter can name; any other name is a metadata key.
FILTER_FIELDS = frozenset({"source", "section", "title", "doc_id"})
FORMAT_VERSION = 2


SentenceVectors = Literal["encoded", "pooled"]
"""How quotable sentences get their vectors (see :mod:`redbook_qa.stores.pooling`)."""


class ChunkingParams(BaseModel):
    """How chunks were cut and their sentences embedded; a change means a rebuild."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_tokens: int
    overlap: int
    encoding: str
    version: int = CHUNKER_VERSION
    sentence_vectors: SentenceVectors = "encoded"


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


def field_value(chunk: Chunk, name: str) -> str | None:
    """The value a filter on ``name`` compares: a chunk field or a metadata key."""
    if name in FILTER_FIELDS:
        return str(getattr(chunk, name))
    return chunk.metadata.get(name)


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


@dataclass(frozen=True)
class BuildSpec:
    """How an index is built; a saved index built otherwise is stale."""

    chunking: ChunkingParams
    index_kind: IndexKind = "auto"
    show_progress: bool = False

    def is_fresh(self, manifest: Manifest, corpus: str, embedder: Embedder) -> bool:
        """Say whether ``manifest`` describes this build of the corpus digest ``corpus``."""
        return (
            manifest.corpus_fingerprint == corpus
            and manifest.embedder == embedder.name
            and manifest.chunking == self.chunking
            and (self.index_kind == "auto" or manifest.index.get("kind") == self.index_kind)
        )


def check_embedder(manifest: Manifest, embedder: Embedder, where: Path | str) -> None:
    """Refuse an embedder other than the one the index was built with.

    Raises:
        IndexMismatchError: The model name or dimension differs; the message says to rebuild.
    """
    if manifest.embedder != embedder.name or manifest.dimension != embedder.dimension:
        raise IndexMismatchError(
            f"index in {where} was built with {manifest.embedder} (dim {manifest.dimension}), "
            f"the embedder is {embedder.name} (dim {embedder.dimension}); "
            "rebuild it with `redbook-qa index`"
        )


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
