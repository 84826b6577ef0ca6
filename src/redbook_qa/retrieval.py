"""Question to ranked passages and scored evidence sentences: dense and keyword search, fused.

The only module that combines an embedder with the indexes. Per query it embeds the question
once, searches the vector index, scores BM25, fuses both over the candidate pool, and scores
the sentences of the top passages against the question with one small matrix product.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from redbook_qa.aliases import AliasTable
from redbook_qa.embedding import Embedder, Vectors
from redbook_qa.fusion import DEFAULT_ALPHA, DEFAULT_FUSION, FusionMethod, fuse, saturate
from redbook_qa.lexical import analyze
from redbook_qa.models import Chunk, Context, Evidence, Passage
from redbook_qa.store import Store

logger = logging.getLogger(__name__)

Filters = Mapping[str, str | Sequence[str]]
DEFAULT_BM25_SCALE = 8.0
_MIN_POOL = 32
# Weights of an evidence sentence's score: its own similarity to the question, the fused
# score of its passage, and how much of the question's (IDF-weighted) terms it contains.
SENTENCE_WEIGHTS = (0.5, 0.25, 0.25)
# Sentences are scored from at least this many passages: the best answer sentence often sits
# in a passage that ranks sixth or seventh as a whole; its passage score still counts.
EVIDENCE_PASSAGES = 8
# Dense score of a chunk = 0.7 · its own cosine + 0.3 · its best sentence's cosine, so one
# sentence that matches the question well lifts its chunk. SQuAD half nDCG@10: 0.902 → 0.914
# (MRR 0.875 → 0.891); seeds hit@5 0.955 → 0.966. 0.5 did worse on the seeds (0.955).
DEFAULT_SENTENCE_WEIGHT = 0.3


_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class _Ranked:
    groups: list[list[int]]  # chunks merged into each passage, its best chunk first
    fused: npt.NDArray[np.float32]
    dense: npt.NDArray[np.float32]
    lexical: npt.NDArray[np.float32]
    query: Vectors
    terms: list[str]
    sentence_sims: dict[int, float]  # cosine to the query of every candidate chunk's sentences


@functools.lru_cache(maxsize=1)
def _blas() -> object:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def small_product(matrix: Vectors, vector: Vectors) -> npt.NDArray[np.float32]:
    """Return ``matrix @ vector`` on one BLAS thread.

    On a 2-core machine, BLAS threads spinning up for a tiny product fight torch's threads
    and cost more than the product itself.
    """
    with _blas().limit(limits=1, user_api="blas"):  # type: ignore[attr-defined]
        return np.asarray(matrix @ vector, dtype=np.float32)


class Retriever:
    """Rank chunks for a question and score the sentences of the best ones.

    Args:
        embedder: The model the store was built with.
        store: The built index.
        fusion: How dense and keyword scores combine (see :mod:`redbook_qa.fusion`).
        alpha: Weight of the dense side in convex fusion.
        aliases: Name aliases used to expand the keyword query.
    """

    def __init__(
        self,
        embedder: Embedder,
        store: Store,
        *,
        fusion: FusionMethod = DEFAULT_FUSION,
        alpha: float = DEFAULT_ALPHA,
        aliases: AliasTable | None = None,
        sentence_weight: float = DEFAULT_SENTENCE_WEIGHT,
    ) -> None:
        if store.manifest.embedder != embedder.name:
            raise ValueError(
                f"index built with {store.manifest.embedder!r}, embedder is {embedder.name!r}"
            )
        self._embedder = embedder
        self._store = store
        self._fusion: FusionMethod = fusion
        self._alpha = alpha
        self._sentence_weight = sentence_weight
        self._aliases = aliases or AliasTable()
        self._chunk_rows = {chunk.id: i for i, chunk in enumerate(store.chunks)}
        self._field_index: dict[str, dict[str, npt.NDArray[np.int64]]] = {}
        self._chunk_term_cache: dict[int, frozenset[str]] = {}
        self._sentence_term_cache: dict[int, frozenset[str]] = {}

    @functools.cached_property
    def corpus_is_cjk(self) -> bool:
        """Say whether the articles are mostly Chinese (over a third of chunks hold some)."""
        chunks = self._store.chunks
        cjk = sum(1 for c in chunks if _CJK.search(c.text))
        return bool(chunks) and cjk * 3 > len(chunks)

    @property
    def aliases(self) -> AliasTable:
        """The name variants that expand the keyword query."""
        return self._aliases

    @property
    def store(self) -> Store:
        """Return the index this retriever searches."""
        return self._store

    def retrieve(
        self, question: str, *, k: int = 5, filters: Filters | None = None
    ) -> list[Passage]:
        """Return the ``k`` best passages, best first (ties by position)."""
        ranked = self._rank(question, k=k, filters=filters)
        return self._passages(ranked)

    def context(self, question: str, *, k: int = 5, filters: Filters | None = None) -> Context:
        """Return the ``k`` best passages and their sentences scored as evidence."""
        ranked = self._rank(question, k=max(k, EVIDENCE_PASSAGES), filters=filters)
        evidence = self._evidence(ranked)
        passages = self._passages(ranked, limit=k)
        return Context(question=question, passages=tuple(passages), evidence=tuple(evidence))

    def sentence_vectors(self, evidence: Sequence[Evidence]) -> Vectors | None:
        """Return the index-time vectors of evidence sentences, or ``None`` if one is unknown."""
        rows = []
        for e in evidence:
            position = self._chunk_rows.get(e.chunk_id)
            if position is None:
                return None
            found = [
                int(r)
                for r in self._store.chunk_sentences[position]
                if self._store.sentences[int(r)].start == e.start
            ]
            if not found:
                return None
            rows.append(found[0])
        return self._store.sentence_vectors[rows]

    def _rank(self, question: str, *, k: int, filters: Filters | None) -> _Ranked:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        query = self._embedder.embed_query(question)
        terms = self._aliases.expand(analyze(question))
        bm25 = self._store.lexical.scores(terms)  # every chunk, once per query
        candidates = self._candidates(query, bm25, k, filters)
        dense = small_product(self._store.chunk_vectors[candidates], query[0])
        groups_rows = [self._store.chunk_sentences[int(c)] for c in candidates]
        rows = np.concatenate(groups_rows) if groups_rows else np.zeros(0, dtype=np.int64)
        sims = small_product(self._store.sentence_vectors[rows], query[0])
        if self._sentence_weight > 0 and len(rows):
            best = _best_sentence(dense, np.array([len(g) for g in groups_rows]), sims)
            dense = (1 - self._sentence_weight) * dense + self._sentence_weight * best
        lexical = saturate(bm25[candidates], scale=DEFAULT_BM25_SCALE)
        fused = fuse(dense, lexical, method=self._fusion, alpha=self._alpha)
        order, groups = self._merge_overlapping(candidates, np.lexsort((candidates, -fused)), k)
        return _Ranked(
            groups=groups,
            fused=fused[order],
            dense=dense[order],
            lexical=lexical[order],
            query=query,
            terms=terms,
            # Evidence sentences belong to candidate chunks: _evidence reuses these.
            sentence_sims=dict(zip(rows.tolist(), sims.tolist(), strict=True)),
        )

    def _chunk_terms(self, position: int) -> frozenset[str]:
        # Memoised: analysing text is per-corpus work, so it is done once per chunk.
        terms = self._chunk_term_cache.get(position)
        if terms is None:
            chunk = self._store.chunks[position]
            terms = frozenset(analyze(f"{chunk.section}\n{chunk.text}"))
            self._chunk_term_cache[position] = terms
        return terms

    def _sentence_terms(self, row: int, chunk: Chunk) -> frozenset[str]:
        terms = self._sentence_term_cache.get(row)
        if terms is None:
            text = f"{chunk.section}\n{self._store.sentences[row].text}"
            terms = frozenset(self._aliases.canonicalize(analyze(text)))
            self._sentence_term_cache[row] = terms
        return terms

    def _merge_overlapping(
        self, candidates: npt.NDArray[np.int64], ranking: npt.NDArray[np.int64], k: int
    ) -> tuple[list[int], list[list[int]]]:
        """Walk the ranking, folding a chunk that overlaps a chosen passage into it.

        Neighbouring chunks share sentences; showing both would repeat text and waste a slot
        of ``k``. The merged passage keeps the best chunk's scores and exact offsets.
        """
        order: list[int] = []
        groups: list[list[int]] = []
        for index in ranking:
            chunk = self._store.chunks[int(candidates[index])]
            for group in groups:
                head = self._store.chunks[group[0]]
                spans = [self._store.chunks[g] for g in group]
                if (
                    head.source == chunk.source
                    and head.section == chunk.section
                    and any(s.start < chunk.end and chunk.start < s.end for s in spans)
                ):
                    group.append(int(candidates[index]))
                    break
            else:
                if len(groups) == k:
                    break
                order.append(int(index))
                groups.append([int(candidates[index])])
        return order, groups

    def _candidates(
        self,
        query: Vectors,
        bm25: npt.NDArray[np.float32],
        k: int,
        filters: Filters | None,
    ) -> npt.NDArray[np.int64]:
        allowed = self._allowed(filters)
        if allowed is not None:
            return allowed
        pool = min(self._store.index.size, max(4 * k, _MIN_POOL))
        if pool == 0:
            return np.zeros(0, dtype=np.int64)
        dense_positions, _ = self._store.index.search(query, pool)
        matched = np.flatnonzero(bm25 > 0)
        lexical_positions = (
            matched[np.argpartition(-bm25[matched], pool - 1)[:pool]]
            if len(matched) > pool
            else matched
        )
        merged = np.union1d(dense_positions[0], lexical_positions)
        return merged[merged >= 0].astype(np.int64)

    def _allowed(self, filters: Filters | None) -> npt.NDArray[np.int64] | None:
        if not filters:
            return None
        allowed: npt.NDArray[np.int64] | None = None
        for field, wanted in filters.items():
            values = [wanted] if isinstance(wanted, str) else list(wanted)
            index = self._index_field(field)
            rows = [index.get(value, np.zeros(0, dtype=np.int64)) for value in values]
            matched = np.unique(np.concatenate(rows)) if rows else np.zeros(0, dtype=np.int64)
            allowed = matched if allowed is None else np.intersect1d(allowed, matched)
        return allowed

    def _index_field(self, field: str) -> dict[str, npt.NDArray[np.int64]]:
        if field not in self._field_index:
            groups: dict[str, list[int]] = {}
            for row, chunk in enumerate(self._store.chunks):
                value = _field_value(chunk, field)
                if value is not None:
                    groups.setdefault(value, []).append(row)
            self._field_index[field] = {
                value: np.asarray(rows, dtype=np.int64) for value, rows in groups.items()
            }
        return self._field_index[field]

    def _passages(self, ranked: _Ranked, *, limit: int | None = None) -> list[Passage]:
        wanted = set(ranked.terms)
        passages = []
        for i, group in enumerate(ranked.groups[:limit]):
            chunk = self._store.chunks[group[0]]
            start, text = _union([self._store.chunks[g] for g in group])
            present = set().union(*(self._chunk_terms(g) for g in group))
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
                )
            )
        return passages

    def _evidence(self, ranked: _Ranked) -> list[Evidence]:
        store = self._store
        rows: dict[int, float] = {}
        for i, group in enumerate(ranked.groups):
            for position in group:
                for row in store.chunk_sentences[position]:
                    rows.setdefault(int(row), float(ranked.fused[i]))
        if not rows:
            return []
        order = list(rows)
        similarity = [ranked.sentence_sims[row] for row in order]
        question_terms = self._aliases.canonicalize(ranked.terms)
        weights = {term: store.lexical.idf(term) for term in question_terms}
        total = sum(weights.values())
        w_sim, w_passage, w_cover = SENTENCE_WEIGHTS
        evidence = []
        for row, sim in zip(order, similarity, strict=True):
            sentence = store.sentences[row]
            chunk = store.chunks[self._chunk_rows[sentence.chunk_id]]
            present = self._sentence_terms(row, chunk)
            coverage = sum(w for t, w in weights.items() if t in present) / total if total else 0.0
            score = w_sim * float(sim) + w_passage * rows[row] + w_cover * coverage
            evidence.append(
                _to_evidence(sentence.text, sentence.start, chunk, score, sim, coverage)
            )
        evidence.sort(key=lambda e: (-e.score, e.source, e.start))
        return evidence


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


def _to_evidence(
    text: str, start: int, chunk: Chunk, score: float, similarity: float, coverage: float
) -> Evidence:
    return Evidence(
        text=text,
        start=start,
        end=start + len(text),
        chunk_id=chunk.id,
        source=chunk.source,
        title=chunk.title,
        section=chunk.section,
        score=score,
        similarity=float(similarity),
        coverage=coverage,
    )


def _field_value(chunk: Chunk, field: str) -> str | None:
    if field in {"source", "section", "title", "doc_id"}:
        return str(getattr(chunk, field))
    return chunk.metadata.get(field)
