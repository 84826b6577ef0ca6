"""What scoring needs of a question's candidates: chunk rows once per generation, BM25 per question.

A chunk's row (its JSON, vector, sentence rows, and those sentences with their vectors) never
changes within a stored generation, and questions keep drawing on the same popular chunks.
Reading and parsing those rows was most of a question's cost over PostgreSQL (~130 JSON
rows and vectors per question on the seeds, ~3-4 ms against 0.1 ms in process), so each
process keeps the rows it has read in a :class:`RowCache` of one generation, bounded (it is
a cache of recent candidates, not a copy of the index), and asks the database only for the
missing ones plus the question's BM25 counts. A new generation starts an empty cache, and a
question holds the cache of the generation it read, so rows of two builds never mix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, LiteralString

import numpy as np
import numpy.typing as npt

from redbook_qa.embedding.base import Vectors
from redbook_qa.models import Chunk, Sentence
from redbook_qa.stores.base import Manifest
from redbook_qa.stores.bm25 import bm25_idf, term_scores
from redbook_qa.stores.postgres.keywords import CorpusStats
from redbook_qa.stores.postgres.reading import stack
from redbook_qa.stores.postgres.schema import Schema

if TYPE_CHECKING:
    from redbook_qa.stores.postgres.schema import Conn

# ~2.5 KB a 384-d chunk with its sentences' vectors: ~10-20 MB per process when full.
CACHE_CHUNKS = 4096


@dataclass(frozen=True)
class ChunkRow:
    """One chunk as stored, with its sentences."""

    chunk: Chunk
    vector: Vectors
    sentence_rows: npt.NDArray[np.int64]
    sentences: dict[int, tuple[Sentence, Vectors]]


class RowCache:
    """Chunk rows of one stored generation already read, by position (emptied when full)."""

    def __init__(self, generation: str, *, capacity: int = CACHE_CHUNKS) -> None:
        self.generation = generation
        self._capacity = capacity
        self._rows: dict[int, ChunkRow] = {}

    def get(self, position: int) -> ChunkRow | None:
        """The cached row, if read before."""
        return self._rows.get(position)

    def add(self, rows: dict[int, ChunkRow]) -> None:
        """Keep ``rows`` (a full cache starts again: simpler than LRU, and as bounded)."""
        if len(self._rows) + len(rows) > self._capacity:
            self._rows = {}
        self._rows.update(rows)


def send_fetch(
    conn: Conn,
    schema: Schema,
    positions: npt.NDArray[np.int64],
    terms: Sequence[str],
    cache: RowCache,
) -> Callable[[Manifest, CorpusStats], dict[str, Any]]:
    """Send the statements for the candidates' missing rows and BM25 counts; return a reader.

    In a pipeline the reader may run after the transaction's COMMIT was queued: the rows
    and the COMMIT then share one round trip.
    """
    wanted = positions.tolist()
    known = {p: row for p in wanted if (row := cache.get(p)) is not None}
    missing = [p for p in wanted if p not in known]
    distinct = sorted(set(terms))
    queries: list[tuple[LiteralString, tuple[list[Any], ...]]] = [
        (
            "SELECT term, position, tf, length FROM {s}.postings "
            "WHERE term = ANY(%s) AND position = ANY(%s)",
            (distinct, wanted),
        ),
        ("SELECT term, df FROM {s}.terms WHERE term = ANY(%s)", (distinct,)),
    ]
    if missing:
        queries += [
            (
                "SELECT position, data::text, embedding, sentence_rows FROM {s}.chunks "
                "WHERE position = ANY(%s)",
                (missing,),
            ),
            (
                "SELECT position, data::text, embedding FROM {s}.sentences WHERE position IN "
                "(SELECT unnest(sentence_rows) FROM {s}.chunks WHERE position = ANY(%s))",
                (missing,),
            ),
        ]
    sent = [conn.cursor(binary=True).execute(schema.sql(q), params) for q, params in queries]

    def read(manifest: Manifest, stats: CorpusStats) -> dict[str, Any]:
        postings, df_rows, *rows = (cursor.fetchall() for cursor in sent)
        fresh = _chunk_rows(rows[0], rows[1]) if rows else {}
        cache.add(fresh)
        found = [known.get(p) or fresh[p] for p in wanted]
        df: dict[str, int] = {str(t): int(n) for t, n in df_rows}
        idf = {term: bm25_idf(count, stats.n_docs) for term, count in df.items()}
        return {
            "chunks": [r.chunk for r in found],
            "vectors": stack([r.vector for r in found], manifest.dimension),
            "bm25": _bm25(positions, terms, postings, idf, stats.avg_length),
            "sentence_rows": [r.sentence_rows for r in found],
            "sentences": {i: s for r in found for i, (s, _) in r.sentences.items()},
            "sentence_vectors": {i: v for r in found for i, (_, v) in r.sentences.items()},
            "idf": {t: bm25_idf(df.get(t, 0), stats.n_docs) for t in terms},
        }

    return read


def _chunk_rows(chunks: Sequence[Any], sentences: Sequence[Any]) -> dict[int, ChunkRow]:
    """Parse rows of ``chunks`` and their ``sentences`` (each once per generation)."""
    by_row = {int(r[0]): (Sentence.model_validate_json(r[1]), r[2]) for r in sentences}
    out = {}
    for position, data, vector, rows in chunks:
        members = np.asarray(rows, dtype=np.int64)
        mine = {int(i): by_row[int(i)] for i in members.tolist()}
        out[int(position)] = ChunkRow(Chunk.model_validate_json(data), vector, members, mine)
    return out


def _bm25(
    positions: npt.NDArray[np.int64],
    terms: Sequence[str],
    postings: Sequence[Any],
    idf: dict[str, float],
    avg_length: float,
) -> npt.NDArray[np.float32]:
    """Candidates' BM25 from stored counts, summed in query-term order in float32 as bm25s."""
    index = {int(p): i for i, p in enumerate(positions.tolist())}
    by_term: dict[str, list[tuple[int, int, int]]] = {}
    for term, position, tf, length in postings:
        by_term.setdefault(term, []).append((index[int(position)], int(tf), int(length)))
    scores: dict[str, tuple[list[int], npt.NDArray[np.float32]]] = {}
    for term, found in by_term.items():
        columns = np.array(found, dtype=np.int64).reshape(-1, 3)
        values = term_scores(columns[:, 1], columns[:, 2], idf[term], avg_length)
        scores[term] = (columns[:, 0].tolist(), values)
    out = np.zeros(len(positions), dtype=np.float32)
    for term in terms:
        if term in scores:
            where, values = scores[term]
            out[where] += values
    return out
