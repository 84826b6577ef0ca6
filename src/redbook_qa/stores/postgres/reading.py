"""The SQL of a question: HNSW neighbours, BM25 top-k, filters, and one fetch of candidates."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from redbook_qa.embedding.base import Vectors
from redbook_qa.errors import IndexMismatchError
from redbook_qa.models import Chunk, Sentence
from redbook_qa.stores.base import FILTER_FIELDS, FORMAT_VERSION, Filters, Manifest
from redbook_qa.stores.bm25 import LexicalIndex, bm25_idf
from redbook_qa.stores.faiss_index import TIE_MARGIN, IndexKind, VectorIndex
from redbook_qa.stores.memory import Store
from redbook_qa.stores.postgres.connections import psycopg_module
from redbook_qa.stores.postgres.schema import SCHEMA_VERSION, Schema, vector_literal
from redbook_qa.text.chunking import embedding_text

if TYPE_CHECKING:
    from redbook_qa.stores.postgres.schema import Conn

_KINDS: tuple[IndexKind, ...] = ("flat", "hnsw", "ivfsq8", "ivfpq")


def nearest_scored(
    conn: Conn, schema: Schema, vector: Vectors, k: int, *, ef_search: int
) -> list[tuple[int, float]]:
    """Chunk positions and cosines of the ``k`` nearest chunks (HNSW), ties by position."""
    fetch = k + TIE_MARGIN
    conn.execute(schema.sql("SET LOCAL hnsw.ef_search = {n}", n=max(ef_search, fetch)))
    literal = vector_literal(vector.tolist())
    rows = conn.execute(
        schema.sql(
            "SELECT position, -(embedding <#> %s::vector) FROM {s}.chunks "
            "ORDER BY embedding <#> %s::vector LIMIT %s"
        ),
        (literal, literal, fetch),
    ).fetchall()
    return sorted(((int(p), float(s)) for p, s in rows), key=lambda r: (-r[1], r[0]))[:k]


def nearest_many(
    conn: Conn, schema: Schema, matrix: Vectors, k: int, *, ef_search: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """:func:`nearest_scored` for each row of ``matrix``, as [q, k] positions and scores."""
    found = [nearest_scored(conn, schema, vector, k, ef_search=ef_search) for vector in matrix]
    width = min((len(rows) for rows in found), default=0)
    positions = np.array([[r[0] for r in rows[:width]] for rows in found], np.int64)
    scores = np.array([[r[1] for r in rows[:width]] for rows in found], np.float32)
    return positions.reshape(len(matrix), width), scores.reshape(len(matrix), width)


def stored_generation(conn: Conn, schema: Schema) -> str | None:
    """The id of the stored build, or None when nothing was saved in ``schema`` yet.

    Raises:
        IndexMismatchError: The tables have another schema version (saying what to do).
    """
    psycopg = psycopg_module()
    try:
        rows: dict[str, str] = dict(
            conn.execute(
                schema.sql(
                    "SELECT key, value::text FROM {s}.meta "
                    "WHERE key IN ('generation', 'schema_version')"
                )
            ).fetchall()
        )
    except psycopg.errors.UndefinedTable:
        return None
    if "schema_version" in rows and int(json.loads(rows["schema_version"])) != SCHEMA_VERSION:
        schema.check(conn, writer=False)  # raises, saying what to do
    return str(json.loads(rows["generation"])) if "generation" in rows else None


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


def keyword_top(
    conn: Conn, schema: Schema, terms: Sequence[str], pool: int
) -> npt.NDArray[np.int64]:
    """Positions of the ``pool`` best BM25 chunks (summed stored term scores)."""
    if not terms:
        return np.zeros(0, dtype=np.int64)
    rows = conn.execute(
        schema.sql(
            "SELECT p.position FROM {s}.postings p JOIN unnest(%s::text[]) AS q(term) "
            "ON p.term = q.term GROUP BY p.position HAVING sum(p.score) > 0 "
            "ORDER BY sum(p.score) DESC, p.position LIMIT %s"
        ),
        (list(terms), pool),
    ).fetchall()
    return np.array([r[0] for r in rows], dtype=np.int64)


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


def fetch(
    conn: Conn,
    schema: Schema,
    positions: npt.NDArray[np.int64],
    terms: Sequence[str],
    manifest: Manifest,
) -> dict[str, Any]:
    """Everything scoring needs of the candidate chunks, in four statements."""
    wanted = positions.tolist()
    distinct = sorted(set(terms))
    with conn.cursor(binary=True) as cursor:
        chunk_rows = cursor.execute(
            schema.sql(
                "SELECT data::text, embedding, sentence_rows FROM {s}.chunks "
                "WHERE position = ANY(%s) ORDER BY position"
            ),
            (wanted,),
        ).fetchall()
        members = sorted({int(r) for row in chunk_rows for r in row[2]})
        sentence_rows = cursor.execute(
            schema.sql(
                "SELECT position, data::text, embedding FROM {s}.sentences WHERE position = ANY(%s)"
            ),
            (members,),
        ).fetchall()
        postings = cursor.execute(
            schema.sql(
                "SELECT term, position, score FROM {s}.postings "
                "WHERE term = ANY(%s) AND position = ANY(%s)"
            ),
            (distinct, wanted),
        ).fetchall()
        df: dict[str, int] = dict(
            cursor.execute(
                schema.sql("SELECT term, df FROM {s}.terms WHERE term = ANY(%s)"),
                (distinct,),
            ).fetchall()
        )
    return {
        "chunks": [Chunk.model_validate_json(r[0]) for r in chunk_rows],
        "vectors": stack([r[1] for r in chunk_rows], manifest.dimension),
        "bm25": _bm25(positions, terms, postings),
        "sentence_rows": [np.asarray(r[2], dtype=np.int64) for r in chunk_rows],
        "sentences": {int(r[0]): Sentence.model_validate_json(r[1]) for r in sentence_rows},
        "sentence_vectors": {int(r[0]): r[2] for r in sentence_rows},
        "idf": {t: bm25_idf(int(df.get(t, 0)), manifest.n_chunks) for t in terms},
    }


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


def _bm25(
    positions: npt.NDArray[np.int64], terms: Sequence[str], postings: Sequence[Any]
) -> npt.NDArray[np.float32]:
    """Sum stored term scores per candidate in query-term order, in float32 as ``bm25s`` does."""
    index = {int(p): i for i, p in enumerate(positions.tolist())}
    by_term: dict[str, tuple[list[int], list[float]]] = {}
    for term, position, score in postings:
        rows, scores = by_term.setdefault(term, ([], []))
        rows.append(index[int(position)])
        scores.append(float(score))
    out = np.zeros(len(positions), dtype=np.float32)
    for term in terms:
        if term in by_term:
            rows, scores = by_term[term]
            out[rows] += np.asarray(scores, dtype=np.float32)
    return out
