"""Question to ranked passages and scored evidence sentences: dense and keyword search, fused.

The only module that combines an embedder with a store. Per query it embeds the question's
search text once, asks the store for candidates, fuses dense and keyword scores over them,
merges overlapping chunks into passages, and hands the sentences of the top passages to
:mod:`redbook_qa.retrieval.evidence` (their vectors travel with the context, so no later step
fetches or embeds them again).
"""

from __future__ import annotations

import functools
import logging

import numpy as np
import numpy.typing as npt

from redbook_qa.embedding.base import Embedder
from redbook_qa.models import Chunk, Context, Passage
from redbook_qa.retrieval.evidence import EvidenceScorer, Ranked
from redbook_qa.retrieval.fusion import DEFAULT_ALPHA, DEFAULT_FUSION, FusionMethod, fuse, saturate
from redbook_qa.retrieval.products import pairwise_cosines, small_product
from redbook_qa.retrieval.query import MAX_QUESTION_CHARS, Query, make_query
from redbook_qa.stores.base import Candidates, Filters, check_embedder
from redbook_qa.stores.protocol import VectorStore
from redbook_qa.text.cjk import is_cjk_corpus
from redbook_qa.text.names import AliasTable
from redbook_qa.text.pages import page_at

logger = logging.getLogger(__name__)

DEFAULT_BM25_SCALE = 8.0
_MIN_POOL = 32
# Sentences are scored from at least this many passages: the best answer sentence often sits
# in a passage that ranks sixth or seventh as a whole; its passage score still counts.
EVIDENCE_PASSAGES = 8
# The answerer may weigh quotes against each other among this many of the best candidates.
REDUNDANCY_SENTENCES = 24
# Dense score of a chunk = 0.7 · its own cosine + 0.3 · its best sentence's cosine, so one
# sentence that matches the question well lifts its chunk. SQuAD half nDCG@10: 0.902 → 0.914
# (MRR 0.875 → 0.891); seeds hit@5 0.955 → 0.966. 0.5 did worse on the seeds (0.955).
DEFAULT_SENTENCE_WEIGHT = 0.3


class Retriever:
    """Rank chunks for a question and score the sentences of the best ones.

    Args:
        embedder: The model the store was built with.
        store: The built index: in this process or in a database (see
            :mod:`redbook_qa.stores.base`).
        fusion: How dense and keyword scores combine (see :mod:`redbook_qa.retrieval.fusion`).
        alpha: Weight of the dense side in convex fusion.
        aliases: Name aliases used to expand the keyword query.
        sentence_weight: Weight of the best sentence's cosine in a chunk's dense score.
        max_question_chars: Where a long question is cut.
    """

    def __init__(
        self,
        embedder: Embedder,
        store: VectorStore,
        *,
        fusion: FusionMethod = DEFAULT_FUSION,
        alpha: float = DEFAULT_ALPHA,
        aliases: AliasTable | None = None,
        sentence_weight: float = DEFAULT_SENTENCE_WEIGHT,
        max_question_chars: int = MAX_QUESTION_CHARS,
    ) -> None:
        check_embedder(store.manifest, embedder, where="the store given")
        self._embedder = embedder
        self._store = store
        self._fusion: FusionMethod = fusion
        self._alpha = alpha
        self._sentence_weight = sentence_weight
        self._max_question_chars = max_question_chars
        self._aliases = aliases or AliasTable()
        self._scorer = EvidenceScorer(self._aliases)

    @functools.cached_property
    def _cjk_from_chunks(self) -> bool:
        return is_cjk_corpus(self._store.all_chunks())

    @property
    def corpus_is_cjk(self) -> bool:
        """Say whether the articles are mostly Chinese (over a third of chunks hold some)."""
        recorded = self._store.manifest.cjk
        return self._cjk_from_chunks if recorded is None else recorded

    @property
    def aliases(self) -> AliasTable:
        """The name variants that expand the keyword query."""
        return self._aliases

    @property
    def store(self) -> VectorStore:
        """Return the index this retriever searches."""
        return self._store

    def query(self, question: str) -> Query:
        """Derive the :class:`Query` of a question with this retriever's aliases and corpus.

        Raises:
            TypeError: ``question`` is not a string.
            ValueError: It holds no letter or digit.
        """
        return make_query(
            question,
            self._aliases,
            corpus_is_cjk=self.corpus_is_cjk,
            max_chars=self._max_question_chars,
        )

    def retrieve(
        self, query: Query, *, k: int = 5, filters: Filters | None = None
    ) -> list[Passage]:
        """Return the ``k`` best passages, best first (ties by position)."""
        ranked = self._rank(query, k=k, filters=filters)
        return self._passages(ranked, query)

    def context(self, query: Query, *, k: int = 5, filters: Filters | None = None) -> Context:
        """Return the ``k`` best passages and their sentences scored as evidence.

        The evidence sentences' index-time vectors come with it (``Context.vectors``).
        """
        ranked = self._rank(query, k=max(k, EVIDENCE_PASSAGES), filters=filters)
        weights = self._scorer.term_weights(query.terms, ranked.found)
        evidence, vectors = self._scorer.evidence(ranked, query.names, weights)
        context = Context(
            question=query.text,
            passages=tuple(self._passages(ranked, query, limit=k)),
            evidence=tuple(evidence),
            redundancy=pairwise_cosines(vectors[:REDUNDANCY_SENTENCES]),
            **self._scorer.unmatched(ranked, query.names, weights),
        )
        return context.with_vectors(vectors)

    def _rank(self, query: Query, *, k: int, filters: Filters | None) -> Ranked:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        vector = self._embedder.embed_query(query.text)
        pool = max(4 * k, _MIN_POOL)
        found = self._store.candidates(vector, query.terms, pool=pool, filters=filters)
        self._scorer.follow(found.generation)  # the index was rebuilt: drop stale terms
        dense = small_product(found.vectors, vector[0])
        sizes = np.array([len(g) for g in found.sentence_rows], dtype=np.int64)
        rows = (
            np.concatenate(found.sentence_rows) if len(found) else np.zeros(0, dtype=np.int64)
        ).astype(np.int64)
        sims = np.zeros(0, dtype=np.float32)
        if len(rows):
            matrix = np.stack([found.sentence_vectors[int(r)] for r in rows])
            sims = small_product(matrix, vector[0])
        if self._sentence_weight > 0 and len(rows):
            best = _best_sentence(dense, sizes, sims)
            dense = (1 - self._sentence_weight) * dense + self._sentence_weight * best
        lexical = saturate(found.bm25, scale=DEFAULT_BM25_SCALE)
        fused = fuse(dense, lexical, method=self._fusion, alpha=self._alpha)
        ranking = np.lexsort((np.arange(len(found)), -fused))  # ties: smaller position first
        order, groups = self._merge_overlapping(found, ranking, k)
        return Ranked(
            found=found,
            groups=groups,
            fused=fused[order],
            dense=dense[order],
            lexical=lexical[order],
            query=vector,
            # Evidence sentences belong to candidate chunks: the scorer reuses these.
            sentence_sims=dict(zip(rows.tolist(), sims.tolist(), strict=True)),
        )

    @staticmethod
    def _merge_overlapping(
        found: Candidates, ranking: npt.NDArray[np.int64], k: int
    ) -> tuple[list[int], list[list[int]]]:
        """Walk the ranking, folding a chunk that overlaps a chosen passage into it.

        Neighbouring chunks share sentences; showing both would repeat text and waste a slot
        of ``k``. The merged passage keeps the best chunk's scores and exact offsets.
        """
        order: list[int] = []
        groups: list[list[int]] = []
        for index in ranking:
            chunk = found.chunks[int(index)]
            for group in groups:
                head = found.chunks[group[0]]
                spans = [found.chunks[g] for g in group]
                if (
                    head.source == chunk.source
                    and head.section == chunk.section
                    and any(s.start < chunk.end and chunk.start < s.end for s in spans)
                ):
                    group.append(int(index))
                    break
            else:
                if len(groups) == k:
                    break
                order.append(int(index))
                groups.append([int(index)])
        return order, groups

    def _passages(self, ranked: Ranked, query: Query, *, limit: int | None = None) -> list[Passage]:
        wanted = set(query.terms)
        chunks = ranked.found.chunks
        passages = []
        for i, group in enumerate(ranked.groups[:limit]):
            chunk = chunks[group[0]]
            start, text = _union([chunks[g] for g in group])
            present = set().union(*(self._scorer.chunk_terms(chunks[g]) for g in group))
            matched = sorted(wanted.intersection(present))
            passages.append(
                Passage(
                    chunk_id=chunk.id,
                    source=chunk.source,
                    title=chunk.title,
                    section=chunk.section,
                    text=text,
                    start=start,
                    end=start + len(text),
                    score=float(ranked.fused[i]),
                    dense_score=float(ranked.dense[i]),
                    lexical_score=float(ranked.lexical[i]),
                    matched_terms=tuple(matched),
                    metadata=chunk.metadata,
                    page=page_at(chunk.metadata, start),
                )
            )
        return passages


def _best_sentence(
    chunk_sims: npt.NDArray[np.float32],
    sizes: npt.NDArray[np.int64],
    sentence_sims: npt.NDArray[np.float32],
) -> npt.NDArray[np.float32]:
    """Each chunk's best sentence similarity (its own, if it has no sentence).

    ``sentence_sims`` holds the chunks' sentences one chunk after another, ``sizes`` of each.
    """
    best = chunk_sims.copy()
    has = sizes > 0
    starts = np.concatenate(([0], np.cumsum(sizes[has])[:-1]))
    best[has] = np.maximum.reduceat(sentence_sims, starts)
    return best


def _union(chunks: list[Chunk]) -> tuple[int, str]:
    """Start and text of the span covered by overlapping chunks of one document."""
    ordered = sorted(chunks, key=lambda c: c.start)
    start, text = ordered[0].start, ordered[0].text
    for chunk in ordered[1:]:
        end = start + len(text)
        if chunk.end > end:
            text += chunk.text[end - chunk.start :]
    return start, text
