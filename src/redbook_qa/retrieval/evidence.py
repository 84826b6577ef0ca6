"""Evidence: every sentence of the top passages, with the signals the answerers weigh.

For each candidate sentence: its cosine to the question (index-time vector, with its title
and heading) and the best of its neighbours', the IDF-weighted share of the question's
terms it holds (alone, with its neighbours, over the question's names and over the rest),
what it adds to the question, its passage's score, and the whitespace to the next sentence
when the two can be quoted as one span. Text is analysed once per index build: the terms of
chunks, sentences, headings and titles are memoised until the store's generation changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from redbook_qa.embedding.base import Vectors
from redbook_qa.models import Chunk, Evidence, Sentence
from redbook_qa.stores.base import Candidates
from redbook_qa.stores.bm25 import bm25_idf
from redbook_qa.text.names import AliasTable
from redbook_qa.text.pages import page_at
from redbook_qa.text.terms import analyze

# Weights of an evidence sentence's retrieval score: its own similarity to the question, the
# fused score of its passage, and how much of the question's (IDF-weighted) terms it holds.
SENTENCE_WEIGHTS = (0.5, 0.25, 0.25)
# "Unmatched" question terms are those none of the best few passages holds.
UNMATCHED_PASSAGES = 3
# Weight of a question term the index has never seen (df = 0 in a corpus of one).
_UNSEEN_IDF = bm25_idf(0, 1)


@dataclass(frozen=True)
class Ranked:
    """The candidates of one query, fused, ranked and merged into passages."""

    found: Candidates
    groups: list[list[int]]  # candidates merged into each passage, its best first
    fused: npt.NDArray[np.float32]
    dense: npt.NDArray[np.float32]
    lexical: npt.NDArray[np.float32]
    query: Vectors
    sentence_sims: dict[int, float]  # cosine to the query of every candidate's sentences


@dataclass(frozen=True)
class _Row:
    passage_score: float
    chunk: Chunk
    before: int | None  # the neighbouring sentences' store rows, within the chunk
    after: int | None


class EvidenceScorer:
    """Score sentences as evidence; owns the memo of analysed text for one index build."""

    def __init__(self, aliases: AliasTable) -> None:
        self._aliases = aliases
        self._generation = ""
        self._memo: dict[object, frozenset[str]] = {}

    def follow(self, generation: str) -> None:
        """Drop what was memoised when the index was rebuilt."""
        if generation != self._generation:
            self._memo.clear()
            self._generation = generation

    def term_weights(self, terms: tuple[str, ...], found: Candidates) -> dict[str, float]:
        """IDF of each (canonical) question term: rare terms say more about the answer."""
        return {t: found.idf.get(t, _UNSEEN_IDF) for t in self._aliases.canonicalize(list(terms))}

    def evidence(
        self, ranked: Ranked, names: frozenset[str], weights: dict[str, float]
    ) -> tuple[list[Evidence], Vectors]:
        """Every sentence of the top passages with its signals, best first, and its vectors."""
        rows = _rows(ranked)
        if not rows:
            return [], np.zeros((0, ranked.query.shape[1]), dtype=np.float32)
        found = ranked.found
        parts = (
            weights,
            {t: w for t, w in weights.items() if t in names},
            {t: w for t, w in weights.items() if t not in names},
        )
        scored = [(self._one(ranked, row, place, parts), row) for row, place in rows.items()]
        scored.sort(key=lambda pair: (-pair[0].score, pair[0].source, pair[0].start))
        vectors = np.stack([found.sentence_vectors[row] for _, row in scored])
        return [e for e, _ in scored], vectors

    def unmatched(
        self, ranked: Ranked, names: frozenset[str], weights: dict[str, float]
    ) -> dict[str, float]:
        """IDF-weighted shares of the question's terms found in none of the top passages.

        Split by what the terms are: names (the topic) and the rest (the relation asked).
        An unanswerable question about a known topic usually misses only the latter.
        """
        chunks = ranked.found.chunks
        held: set[str] = set()
        for group in ranked.groups[:UNMATCHED_PASSAGES]:
            for index in group:
                held |= self._canonical_chunk_terms(chunks[index])
        split = {
            "unmatched": weights,
            "unmatched_names": {t: w for t, w in weights.items() if t in names},
            "unmatched_relation": {t: w for t, w in weights.items() if t not in names},
        }
        return {key: 1.0 - _share(part, held) if part else 0.0 for key, part in split.items()}

    def chunk_terms(self, chunk: Chunk) -> frozenset[str]:
        """The terms of a chunk and its heading (as searched, not canonicalised)."""
        return self._memoised(("chunk", chunk.id), f"{chunk.section}\n{chunk.text}", canon=False)

    def _one(
        self,
        ranked: Ranked,
        row: int,
        place: _Row,
        parts: tuple[dict[str, float], dict[str, float], dict[str, float]],
    ) -> Evidence:
        found, chunk = ranked.found, place.chunk
        sentence = found.sentences[row]
        weights, named, related = parts
        neighbours = [n for n in (place.before, place.after) if n is not None]
        present = self._sentence_terms(sentence, chunk.section)
        window = set(present).union(
            *(self._sentence_terms(found.sentences[n], chunk.section) for n in neighbours)
        )
        coverage = _share(weights, present)
        own = self._own_terms(sentence) - self._title_terms(chunk)
        sim = ranked.sentence_sims[row]
        w_sim, w_passage, w_cover = SENTENCE_WEIGHTS
        # Built from a validated index: no re-validation on the query path.
        return Evidence.model_construct(
            text=sentence.text,
            start=sentence.start,
            end=sentence.end,
            chunk_id=sentence.chunk_id,
            source=chunk.source,
            title=chunk.title,
            section=chunk.section,
            page=page_at(chunk.metadata, sentence.start),
            score=w_sim * float(sim) + w_passage * place.passage_score + w_cover * coverage,
            similarity=float(sim),
            coverage=coverage,
            window_coverage=_share(weights, window),
            neighbour_similarity=max((ranked.sentence_sims[n] for n in neighbours), default=0.0),
            name_coverage=_share(named, window) if named else 1.0,
            relation_coverage=_share(related, window) if related else 1.0,
            novelty=len(own - set(weights)) / len(own) if own else 0.0,
            new_terms=len(own - set(weights)),
            passage_score=place.passage_score,
            after=_gap(
                chunk, sentence, None if place.after is None else found.sentences[place.after]
            ),
        )

    def _sentence_terms(self, sentence: Sentence, heading: str) -> frozenset[str]:
        """A sentence's terms with its heading's: what it says under that heading."""
        return self._own_terms(sentence) | self._memoised(("heading", heading), heading)

    def _own_terms(self, sentence: Sentence) -> frozenset[str]:
        return self._memoised(("sentence", sentence.chunk_id, sentence.start), sentence.text)

    def _title_terms(self, chunk: Chunk) -> frozenset[str]:
        # A title is part of what every sentence under it says.
        return self._memoised(("title", chunk.title), chunk.title)

    def _canonical_chunk_terms(self, chunk: Chunk) -> frozenset[str]:
        key = ("canonical", chunk.id)
        terms = self._memo.get(key)
        if terms is None:
            terms = frozenset(self._aliases.canonicalize(sorted(self.chunk_terms(chunk))))
            self._memo[key] = terms
        return terms

    def _memoised(self, key: object, text: str, *, canon: bool = True) -> frozenset[str]:
        terms = self._memo.get(key)
        if terms is None:
            analysed = analyze(text)
            terms = frozenset(self._aliases.canonicalize(analysed) if canon else analysed)
            self._memo[key] = terms
        return terms


def _rows(ranked: Ranked) -> dict[int, _Row]:
    """Each sentence row of the ranked passages, with its passage and its neighbours."""
    found = ranked.found
    rows: dict[int, _Row] = {}
    for i, group in enumerate(ranked.groups):
        for index in group:
            members = [int(r) for r in found.sentence_rows[index]]
            for j, row in enumerate(members):
                before = members[j - 1] if j > 0 else None
                after = members[j + 1] if j + 1 < len(members) else None
                rows.setdefault(
                    row, _Row(float(ranked.fused[i]), found.chunks[index], before, after)
                )
    return rows


def _gap(chunk: Chunk, sentence: Sentence, following: Sentence | None) -> str:
    """The text between a sentence and the next one of its chunk, if it is only whitespace."""
    if following is None or following.start < sentence.end:
        return ""
    between = chunk.text[sentence.end - chunk.start : following.start - chunk.start]
    return between if between and not between.strip() else ""


def _share(weights: dict[str, float], present: set[str] | frozenset[str]) -> float:
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in present) / total if total else 0.0
