"""A built index kept in PostgreSQL with pgvector, shared by every process that reads it.

Tables, in one PostgreSQL schema (``redbook_qa`` unless told otherwise)::

    meta(key, value)        "schema_version" and "manifest" (JSON)
    chunks(id, position, hash, data, sentence_rows, embedding)   HNSW index on embedding
    sentences(position, hash, data, embedding)

:meth:`PgVectorStore.save` writes a whole :class:`~redbook_qa.store.Store` in one transaction:
chunks are upserted by id, their vectors sent only when the chunk hash changed, and rows of
chunks no longer built are deleted. Readers in other connections see the old corpus or the new
one, never a mix, because PostgreSQL shows each statement (or repeatable-read transaction) one
committed snapshot. psycopg (v3) is imported only when the store is used.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, LiteralString

import numpy as np
import numpy.typing as npt

from redbook_qa.chunking import embedding_text
from redbook_qa.errors import IndexMismatchError, IndexNotFoundError
from redbook_qa.index import IndexKind, VectorIndex
from redbook_qa.lexical import LexicalIndex
from redbook_qa.models import Chunk, Sentence
from redbook_qa.store import FORMAT_VERSION, Manifest, Store

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql
    from psycopg.rows import TupleRow

    _Conn = psycopg.Connection[TupleRow]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DEFAULT_SCHEMA = "redbook_qa"
DEFAULT_EF_SEARCH = 100
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_KINDS: tuple[IndexKind, ...] = ("flat", "hnsw", "ivfsq8", "ivfpq")
# Any constant works: it only has to be the same in every writer of this database.
_WRITER_LOCK = 0x7265_6462_6F6F_6B  # "redbook"
_TIE_MARGIN = 8


class PgVectorStore:
    """Save, search and load a built index in PostgreSQL with pgvector.

    Args:
        url: A libpq connection string, e.g. ``postgresql://user@host/db``.
        schema: The PostgreSQL schema holding the tables, so one database can hold several
            indexes. Lower-case letters, digits and ``_``.
        ef_search: HNSW candidate list size per query; it is raised to ``k`` when smaller.
    """

    def __init__(
        self, url: str, *, schema: str = DEFAULT_SCHEMA, ef_search: int = DEFAULT_EF_SEARCH
    ) -> None:
        if not _IDENTIFIER.match(schema):
            raise ValueError(
                f"schema must be lower-case letters, digits and '_' (at most 63), got {schema!r}"
            )
        if ef_search <= 0:
            raise ValueError(f"ef_search must be positive, got {ef_search}")
        self._url = url
        self._schema = schema
        self._ef_search = ef_search

    def save(self, store: Store) -> None:
        """Write ``store`` in one transaction, reusing stored vectors of unchanged chunks.

        Raises:
            IndexMismatchError: The tables were written with another schema version.
        """
        started = time.perf_counter()
        with self._connect() as conn, conn.transaction():
            # One writer at a time; readers are never blocked by it.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITER_LOCK,))
            old = self._stored_manifest(conn)
            if old is not None and old.dimension != store.manifest.dimension:
                self._drop_tables(conn)  # DDL is transactional: readers still see the old rows
            self._create_tables(conn, store.manifest.dimension)
            stored = dict(conn.execute(self._sql("SELECT id, hash FROM {s}.chunks")).fetchall())
            if old is not None and old.embedder != store.manifest.embedder:
                stored = {}  # a chunk hash names the text, not the model: send every vector
            sent = self._upsert_chunks(conn, store, stored)
            self._replace_sentences(conn, store)
            self._write_meta(conn, store.manifest)
        logger.info(
            "saved %d chunks (%d vectors sent) and %d sentences to PostgreSQL in %.1f s",
            len(store.chunks),
            sent,
            len(store.sentences),
            time.perf_counter() - started,
        )

    def search(
        self, queries: npt.NDArray[np.float32], k: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Return chunk positions and cosine scores of the k best chunks per query, best first.

        Mirrors :meth:`VectorIndex.search`: queries are shaped [q, d] and L2-normalised, equal
        scores keep the smaller position first, and results come from pgvector's HNSW index.

        Raises:
            IndexNotFoundError: Nothing was saved in this schema yet.
        """
        if k <= 0:
            raise ValueError(f"k must be a positive number of results, got {k}")
        matrix = np.asarray(queries, dtype=np.float32)
        if matrix.ndim != 2:
            raise ValueError(f"queries must be shaped [q, d], got {matrix.shape}; use v[None, :]")
        fetch = k + _TIE_MARGIN
        rows_per_query: list[list[tuple[int, float]]] = []
        with self._connect() as conn, conn.transaction():
            if self._stored_manifest(conn) is None:
                raise IndexNotFoundError(
                    f"no index in schema {self._schema!r} of {self._redacted_url}; save one first"
                )
            ef_search = max(self._ef_search, fetch)
            conn.execute(self._sql("SET LOCAL hnsw.ef_search = {n}", n=ef_search))
            for vector in matrix:
                literal = _vector_literal(vector)
                found = conn.execute(
                    self._sql(
                        "SELECT position, -(embedding <#> %s::vector) FROM {s}.chunks "
                        "ORDER BY embedding <#> %s::vector LIMIT %s"
                    ),
                    (literal, literal, fetch),
                ).fetchall()
                rows_per_query.append(sorted(found, key=lambda r: (-r[1], r[0]))[:k])
        width = min((len(rows) for rows in rows_per_query), default=0)
        positions = np.array([[r[0] for r in rows[:width]] for rows in rows_per_query], np.int64)
        scores = np.array([[r[1] for r in rows[:width]] for rows in rows_per_query], np.float32)
        return positions.reshape(len(matrix), width), scores.reshape(len(matrix), width)

    def count_chunks(self) -> int:
        """Return the number of stored chunks (0 when nothing was saved yet)."""
        with self._connect() as conn:
            if self._stored_manifest(conn) is None:
                return 0
            row = conn.execute(self._sql("SELECT count(*) FROM {s}.chunks")).fetchone()
            return int(row[0]) if row else 0

    def load(self) -> Store:
        """Read the stored index back as a :class:`Store`, rebuilding FAISS and BM25 from it.

        All tables are read in one repeatable-read snapshot, so a concurrent save is seen
        whole or not at all.

        Raises:
            IndexNotFoundError: Nothing was saved in this schema yet.
            IndexMismatchError: The tables were written with another schema or format version.
        """
        with self._connect(snapshot=True) as conn:
            manifest = self._stored_manifest(conn)
            if manifest is None:
                raise IndexNotFoundError(
                    f"no index in schema {self._schema!r} of {self._redacted_url}; save one first"
                )
            chunk_rows = conn.execute(
                self._sql(
                    "SELECT data::text, hash, sentence_rows, embedding::text "
                    "FROM {s}.chunks ORDER BY position"
                )
            ).fetchall()
            sentence_rows = conn.execute(
                self._sql(
                    "SELECT data::text, hash, embedding::text FROM {s}.sentences ORDER BY position"
                )
            ).fetchall()
        chunks = [Chunk.model_validate_json(r[0]) for r in chunk_rows]
        chunk_vectors = _matrix([r[3] for r in chunk_rows], manifest.dimension)
        kind = manifest.index.get("kind")
        return Store(
            manifest=manifest,
            chunks=chunks,
            chunk_hashes=[r[1] for r in chunk_rows],
            sentence_hashes=[r[1] for r in sentence_rows],
            sentences=[Sentence.model_validate_json(r[0]) for r in sentence_rows],
            chunk_vectors=chunk_vectors,
            sentence_vectors=_matrix([r[2] for r in sentence_rows], manifest.dimension),
            chunk_sentences=[np.asarray(r[2], dtype=np.int64) for r in chunk_rows],
            index=VectorIndex.build(chunk_vectors, kind=kind if kind in _KINDS else "auto"),
            lexical=LexicalIndex.build([embedding_text(c) for c in chunks]),
        )

    @property
    def _redacted_url(self) -> str:
        return re.sub(r"://([^:@/]*):[^@/]*@", r"://\1:***@", self._url)

    @contextmanager
    def _connect(self, *, snapshot: bool = False) -> Iterator[_Conn]:
        """Open a connection; with ``snapshot`` its transaction reads one repeatable snapshot."""
        try:
            import psycopg
        except ImportError as err:
            raise ImportError(
                'the PostgreSQL store needs psycopg: pip install "psycopg[binary]>=3.2"'
            ) from err
        with psycopg.connect(self._url) as conn:
            if snapshot:
                conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            yield conn

    def _sql(self, template: LiteralString, *, n: int = 0) -> sql.Composed:
        """Fill ``{s}`` with the quoted schema name and ``{n}`` with an integer literal."""
        from psycopg import sql

        return sql.SQL(template).format(s=sql.Identifier(self._schema), n=sql.Literal(n))

    def _stored_manifest(self, conn: _Conn) -> Manifest | None:
        exists = conn.execute("SELECT to_regclass(%s)", (f"{self._schema}.meta",)).fetchone()
        if not exists or exists[0] is None:
            return None
        rows = conn.execute(self._sql("SELECT key, value::text FROM {s}.meta")).fetchall()
        meta = {str(key): str(value) for key, value in rows}
        version = meta.get("schema_version")
        if version != str(SCHEMA_VERSION):
            raise IndexMismatchError(
                f"schema {self._schema!r} has table version {version}, this redbook_qa uses "
                f"{SCHEMA_VERSION}; drop the schema and save the index again"
            )
        if "manifest" not in meta:
            return None
        manifest = Manifest.model_validate_json(meta["manifest"])
        if manifest.format_version != FORMAT_VERSION:
            raise IndexMismatchError(
                f"schema {self._schema!r} holds format version {manifest.format_version}, "
                f"this redbook_qa reads {FORMAT_VERSION}; save the index again"
            )
        return manifest

    def _create_tables(self, conn: _Conn, dimension: int) -> None:
        for template in (
            "CREATE EXTENSION IF NOT EXISTS vector",
            "CREATE SCHEMA IF NOT EXISTS {s}",
            "CREATE TABLE IF NOT EXISTS {s}.meta (key text PRIMARY KEY, value jsonb NOT NULL)",
            "CREATE TABLE IF NOT EXISTS {s}.chunks (id text PRIMARY KEY, "
            "position integer NOT NULL UNIQUE DEFERRABLE INITIALLY DEFERRED, hash text NOT NULL, "
            "data jsonb NOT NULL, sentence_rows integer[] NOT NULL, embedding vector({n}))",
            "CREATE TABLE IF NOT EXISTS {s}.sentences (position integer PRIMARY KEY, "
            "hash text NOT NULL, data jsonb NOT NULL, embedding vector({n}) NOT NULL)",
            "CREATE INDEX IF NOT EXISTS chunks_embedding_hnsw ON {s}.chunks "
            "USING hnsw (embedding vector_ip_ops)",
        ):
            conn.execute(self._sql(template, n=dimension))

    def _drop_tables(self, conn: _Conn) -> None:
        conn.execute(self._sql("DROP TABLE IF EXISTS {s}.chunks, {s}.sentences, {s}.meta"))

    def _upsert_chunks(self, conn: _Conn, store: Store, stored: dict[str, str]) -> int:
        """Stage every chunk, vectors only where the hash changed; return vectors sent."""
        conn.execute(
            "CREATE TEMP TABLE staged (id text, position integer, hash text, data jsonb, "
            "sentence_rows integer[], embedding text) ON COMMIT DROP"
        )
        sent = 0
        with conn.cursor().copy("COPY staged FROM STDIN") as copy:
            for position, (chunk, digest) in enumerate(
                zip(store.chunks, store.chunk_hashes, strict=True)
            ):
                fresh = stored.get(chunk.id) != digest
                vector = _vector_literal(store.chunk_vectors[position]) if fresh else None
                sent += fresh
                rows = "{" + ",".join(str(int(i)) for i in store.chunk_sentences[position]) + "}"
                copy.write_row((chunk.id, position, digest, chunk.model_dump_json(), rows, vector))
        conn.execute(self._sql("DELETE FROM {s}.chunks WHERE id NOT IN (SELECT id FROM staged)"))
        conn.execute(
            self._sql(
                "INSERT INTO {s}.chunks SELECT id, position, hash, data, sentence_rows, "
                "embedding::vector FROM staged ON CONFLICT (id) DO UPDATE SET "
                "position = excluded.position, hash = excluded.hash, data = excluded.data, "
                "sentence_rows = excluded.sentence_rows, "
                "embedding = coalesce(excluded.embedding, {s}.chunks.embedding)"
            )
        )
        return sent

    def _replace_sentences(self, conn: _Conn, store: Store) -> None:
        conn.execute(self._sql("DELETE FROM {s}.sentences"))
        with conn.cursor().copy(self._sql("COPY {s}.sentences FROM STDIN")) as copy:
            for position, (sentence, digest) in enumerate(
                zip(store.sentences, store.sentence_hashes, strict=True)
            ):
                vector = _vector_literal(store.sentence_vectors[position])
                copy.write_row((position, digest, sentence.model_dump_json(), vector))

    def _write_meta(self, conn: _Conn, manifest: Manifest) -> None:
        rows = [("schema_version", str(SCHEMA_VERSION)), ("manifest", manifest.model_dump_json())]
        with conn.cursor() as cursor:
            cursor.executemany(
                self._sql(
                    "INSERT INTO {s}.meta VALUES (%s, %s::jsonb) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                ),
                rows,
            )


def _vector_literal(vector: npt.NDArray[np.float32]) -> str:
    # repr of the float64 that holds a float32 is exact, and pgvector parses it back exactly.
    return "[" + ",".join(repr(x) for x in np.asarray(vector, np.float32).tolist()) + "]"


def _matrix(literals: Sequence[str], dimension: int) -> npt.NDArray[np.float32]:
    out = np.zeros((len(literals), dimension), dtype=np.float32)
    for row, text in enumerate(literals):
        out[row] = np.array(text.strip("[]").split(","), dtype=np.float32)
    return out
