"""The SQL of a question: HNSW neighbours, BM25 top-k, filters, and one fetch of candidates.

Vectors travel in pgvector's binary form both ways (:mod:`.wire`). BM25 is computed here
from stored term counts and the corpus figures of ``meta.bm25`` (:mod:`.keywords`): in SQL
for ranking the keyword top-k, in numpy for the candidates' scores, with bm25s's rounding,
so they equal the in-process index's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, LiteralString

import numpy as np
import numpy.typing as npt

from redbook_qa.embedding.base import Vectors
from redbook_qa.errors import IndexMismatchError
from redbook_qa.models import Chunk, Sentence
from redbook_qa.stores.base import FILTER_FIELDS, FORMAT_VERSION, Filters, Manifest
from redbook_qa.stores.bm25 import K1, B, LexicalIndex
from redbook_qa.stores.faiss_index import TIE_MARGIN, IndexKind, VectorIndex
from redbook_qa.stores.memory import Store
from redbook_qa.stores.postgres.connections import psycopg_module
from redbook_qa.stores.postgres.keywords import CorpusStats
from redbook_qa.stores.postgres.schema import SCHEMA_VERSION, Schema
from redbook_qa.text.chunking import embedding_text

if TYPE_CHECKING:
    from redbook_qa.stores.postgres.schema import Conn

_KINDS: tuple[IndexKind, ...] = ("flat", "hnsw", "ivfsq8", "ivfpq")


def send_nearest(
    conn: Conn, schema: Schema, vector: Vectors, k: int, *, ef_search: int
) -> Callable[[], list[tuple[int, float]]]:
    """Send the HNSW query now; the returned call reads its positions and cosines.

    Split in two so a pipelined snapshot (:meth:`.Connections.snapshot`) sends this and the
    keyword query before waiting for either: one round trip instead of one each.
    """
    fetch = k + TIE_MARGIN
    conn.execute(schema.sql("SET LOCAL hnsw.ef_search = {n}", n=max(ef_search, fetch)))
    cursor = conn.execute(
        schema.sql(
            "SELECT position, -(embedding <#> %(q)b) FROM {s}.chunks "
            "ORDER BY embedding <#> %(q)b LIMIT %(n)s"
        ),
        {"q": np.asarray(vector, np.float32), "n": fetch},
    )

    def read() -> list[tuple[int, float]]:
        rows = ((int(p), float(s)) for p, s in cursor.fetchall())
        return sorted(rows, key=lambda r: (-r[1], r[0]))[:k]

    return read


def nearest_scored(
    conn: Conn, schema: Schema, vector: Vectors, k: int, *, ef_search: int
) -> list[tuple[int, float]]:
    """Chunk positions and cosines of the ``k`` nearest chunks (HNSW), ties by position."""
    return send_nearest(conn, schema, vector, k, ef_search=ef_search)()


def nearest_many(
    conn: Conn, schema: Schema, matrix: Vectors, k: int, *, ef_search: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """:func:`nearest_scored` for each row of ``matrix``, as [q, k] positions and scores."""
    found = [nearest_scored(conn, schema, vector, k, ef_search=ef_search) for vector in matrix]
    width = min((len(rows) for rows in found), default=0)
    positions = np.array([[r[0] for r in rows[:width]] for rows in found], np.int64)
    scores = np.array([[r[1] for r in rows[:width]] for rows in found], np.float32)
    return positions.reshape(len(matrix), width), scores.reshape(len(matrix), width)


def stored_generation(conn: Conn, schema: Schema) -> tuple[str, CorpusStats] | None:
    """The id of the stored build and its BM25 figures; None when nothing was saved yet.

    Raises:
        IndexMismatchError: The tables have another schema version (saying what to do).
    """
    psycopg = psycopg_module()
    try:
        rows: dict[str, str] = dict(
            conn.execute(
                schema.sql(
                    "SELECT key, value::text FROM {s}.meta "
                    "WHERE key IN ('generation', 'schema_version', 'bm25')"
                )
            ).fetchall()
        )
    except psycopg.errors.UndefinedTable:
        return None
    if "schema_version" in rows and int(json.loads(rows["schema_version"])) != SCHEMA_VERSION:
        schema.check(conn, writer=False)  # raises, saying what to do
    if "generation" not in rows:
        return None
    return str(json.loads(rows["generation"])), CorpusStats.from_json(rows.get("bm25"))


def stored_manifest(conn: Conn, schema: Schema) -> Manifest | None:
    """The saved manifest, or None; refuses one of another on-disk format version."""
    value = schema.meta(conn).get("manifest")
    if value is None:
        return None
    manifest = Manifest.model_validate_json(value)
    if manifest.format_version != FORMAT_VERSION:
        raise IndexMismatchError(
            f"schema {schema.name!r} holds format version {manifest.format_version}, "
            f"this redbook_qa reads {FORMAT_VERSION}; run `redbook-qa index` to save it again"
        )
    return manifest


# bm25s's Lucene BM25 in SQL, with its rounding (see term_scores): IDF as real, the rest
# in double precision, each term's score as real. The corpus figures come from meta.bm25
# in the same statement, so this needs no earlier read.
_KEYWORD_TOP: LiteralString = (
    "WITH st AS (SELECT (value->>'n_docs')::float8 AS n, (value->>'avg_length')::float8 AS avg "
    "FROM {s}.meta WHERE key = 'bm25'), "
    "q AS (SELECT t.term, ln(1 + (st.n - t.df + 0.5) / (t.df + 0.5))::real::float8 AS idf "
    "FROM unnest(%(terms)s::text[]) AS u(term) JOIN {s}.terms t ON t.term = u.term, st), "
    "scored AS (SELECT p.position, (q.idf * (p.tf / (%(k1)s * ((1 - %(b)s) + %(b)s * p.length "
    "/ st.avg) + p.tf)))::real AS score FROM {s}.postings p JOIN q ON p.term = q.term, st) "
    "SELECT position FROM scored GROUP BY position HAVING sum(score) > 0 "
    "ORDER BY sum(score) DESC, position LIMIT %(pool)s"
)


def send_keyword_top(
    conn: Conn, schema: Schema, terms: Sequence[str], pool: int
) -> Callable[[], npt.NDArray[np.int64]]:
    """Send the BM25 top-``pool`` query now; the returned call reads its positions.

    A repeated query term counts again, as in the in-process index.
    """
    if not terms:
        return lambda: np.zeros(0, dtype=np.int64)
    params = {"terms": list(terms), "k1": K1, "b": B, "pool": pool}
    cursor = conn.execute(schema.sql(_KEYWORD_TOP), params)
    return lambda: np.array([r[0] for r in cursor.fetchall()], dtype=np.int64)


def filtered(conn: Conn, schema: Schema, filters: Filters) -> npt.NDArray[np.int64]:
    """Positions of every chunk that matches all ``filters``."""
    from psycopg import sql

    conditions = []
    params: list[list[str]] = []
    for name, wanted in filters.items():
        values = [wanted] if isinstance(wanted, str) else [str(v) for v in wanted]
        path = (
            sql.SQL("data->>{}").format(sql.Literal(name))
            if name in FILTER_FIELDS
            else sql.SQL("data->'metadata'->>{}").format(sql.Literal(name))
        )
        conditions.append(sql.SQL("{} = ANY(%s)").format(path))
        params.append(values)
    query = sql.SQL("SELECT position FROM {} WHERE {} ORDER BY position").format(
        sql.Identifier(schema.name, "chunks"), sql.SQL(" AND ").join(conditions)
    )
    return np.array([r[0] for r in conn.execute(query, params).fetchall()], dtype=np.int64)


def read_store(conn: Conn, schema: Schema, manifest: Manifest) -> Store:
    """The whole stored index as an in-process :class:`Store` (in the caller's snapshot)."""
    with conn.cursor(binary=True) as cursor:
        chunk_rows = cursor.execute(
            schema.sql(
                "SELECT data::text, hash, sentence_rows, embedding "
                "FROM {s}.chunks ORDER BY position"
            )
        ).fetchall()
        sentence_rows = cursor.execute(
            schema.sql("SELECT data::text, hash, embedding FROM {s}.sentences ORDER BY position")
        ).fetchall()
    chunks = [Chunk.model_validate_json(r[0]) for r in chunk_rows]
    chunk_vectors = stack([r[3] for r in chunk_rows], manifest.dimension)
    kind = manifest.index.get("kind")
    return Store(
        manifest=manifest,
        chunks=chunks,
        chunk_hashes=[r[1] for r in chunk_rows],
        sentence_hashes=[r[1] for r in sentence_rows],
        sentences=[Sentence.model_validate_json(r[0]) for r in sentence_rows],
        chunk_vectors=chunk_vectors,
        sentence_vectors=stack([r[2] for r in sentence_rows], manifest.dimension),
        chunk_sentences=[np.asarray(r[2], dtype=np.int64) for r in chunk_rows],
        index=VectorIndex.build(chunk_vectors, kind=kind if kind in _KINDS else "auto"),
        lexical=LexicalIndex.build([embedding_text(c) for c in chunks]),
    )


def stack(vectors: Sequence[npt.NDArray[np.float32]], dimension: int) -> Vectors:
    """Rows of vectors as one float32 matrix (``[0, dimension]`` when there are none)."""
    if not vectors:
        return np.zeros((0, dimension), dtype=np.float32)
    return np.stack(vectors).astype(np.float32, copy=False)
