"""The PostgreSQL tables of a saved index, and the migrations between their versions.

Tables, in one PostgreSQL schema per index (``redbook_qa`` unless told otherwise)::

    meta(key, value)        "schema_version", "manifest" (JSON) and "generation"
    chunks(id, position, hash, data, sentence_rows, embedding)    HNSW on embedding
    sentences(position, hash, data, embedding)
    terms(term, df)                                    BM25 document frequencies
    postings(term, position, score)                    precomputed BM25 term scores

The version of these tables is ``meta.schema_version``. A newer redbook_qa upgrades older
tables in place with the steps in :data:`MIGRATIONS`, all of them in the writer's transaction:
readers keep seeing the old tables until it commits, and a failed step leaves them untouched.
Tables written by a newer redbook_qa are refused, never altered.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, LiteralString

from redbook_qa.errors import IndexMismatchError
from redbook_qa.models import Chunk
from redbook_qa.stores.bm25 import LexicalIndex
from redbook_qa.text.chunking import embedding_text
from redbook_qa.text.cjk import is_cjk_corpus

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql
    from psycopg.rows import TupleRow

    Conn = psycopg.Connection[TupleRow]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2

_TABLES: tuple[LiteralString, ...] = (
    "CREATE EXTENSION IF NOT EXISTS vector",
    "CREATE SCHEMA IF NOT EXISTS {s}",
    "CREATE TABLE IF NOT EXISTS {s}.meta (key text PRIMARY KEY, value jsonb NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {s}.chunks (id text PRIMARY KEY, "
    "position integer NOT NULL UNIQUE DEFERRABLE INITIALLY DEFERRED, hash text NOT NULL, "
    "data jsonb NOT NULL, sentence_rows integer[] NOT NULL, embedding vector({n}))",
    "CREATE TABLE IF NOT EXISTS {s}.sentences (position integer PRIMARY KEY, "
    "hash text NOT NULL, data jsonb NOT NULL, embedding vector({n}) NOT NULL)",
)
_KEYWORD_TABLES: tuple[LiteralString, ...] = (
    "CREATE TABLE IF NOT EXISTS {s}.terms (term text PRIMARY KEY, df integer NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {s}.postings (term text NOT NULL, position integer NOT NULL, "
    "score real NOT NULL, PRIMARY KEY (term, position))",
)
VECTOR_INDEX: LiteralString = (
    "CREATE INDEX IF NOT EXISTS chunks_embedding_hnsw ON {s}.chunks "
    "USING hnsw (embedding vector_ip_ops)"
)


class Schema:
    """SQL of one index's tables, with ``{s}`` filled by its quoted schema name."""

    def __init__(self, name: str) -> None:
        self.name = name

    def sql(self, template: LiteralString, *, n: int = 0) -> sql.Composed:
        """Fill ``{s}`` with the quoted schema name and ``{n}`` with an integer literal."""
        from psycopg import sql

        return sql.SQL(template).format(s=sql.Identifier(self.name), n=sql.Literal(n))

    def exists(self, conn: Conn) -> bool:
        """Say whether the index tables were ever created here."""
        row = conn.execute("SELECT to_regclass(%s)", (f"{self.name}.meta",)).fetchone()
        return bool(row and row[0] is not None)

    def chunks_exist(self, conn: Conn) -> bool:
        """Say whether the chunks table exists (before a first save, it does not)."""
        row = conn.execute("SELECT to_regclass(%s)", (f"{self.name}.chunks",)).fetchone()
        return bool(row and row[0] is not None)

    def meta(self, conn: Conn) -> dict[str, str]:
        """Every meta row, values as JSON text."""
        rows = conn.execute(self.sql("SELECT key, value::text FROM {s}.meta")).fetchall()
        return {str(key): str(value) for key, value in rows}

    def version(self, conn: Conn) -> int | None:
        """The stored table version, ``None`` when nothing was saved here."""
        if not self.exists(conn):
            return None
        value = self.meta(conn).get("schema_version")
        return None if value is None else int(json.loads(value))

    def create(self, conn: Conn, dimension: int, *, vector_index: bool) -> None:
        """Create missing tables (and the HNSW index unless the caller adds it after a load)."""
        for template in (*_TABLES, *_KEYWORD_TABLES, *((VECTOR_INDEX,) if vector_index else ())):
            conn.execute(self.sql(template, n=dimension))

    def drop(self, conn: Conn) -> None:
        """Drop every index table (inside the caller's transaction)."""
        conn.execute(
            self.sql(
                "DROP TABLE IF EXISTS {s}.chunks, {s}.sentences, {s}.terms, {s}.postings, {s}.meta"
            )
        )

    def write_meta(self, conn: Conn, values: dict[str, str]) -> None:
        """Upsert meta rows; each value is JSON text."""
        with conn.cursor() as cursor:
            cursor.executemany(
                self.sql(
                    "INSERT INTO {s}.meta VALUES (%s, %s::jsonb) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                ),
                list(values.items()),
            )

    def write_keywords(self, conn: Conn, lexical: LexicalIndex) -> int:
        """Replace the BM25 tables with ``lexical``'s postings; return the rows written.

        Scores are precomputed per (term, chunk) with corpus-wide statistics (IDF, average
        length), so they are rewritten whole on each save.
        """
        conn.execute(self.sql("DELETE FROM {s}.postings"))
        conn.execute(self.sql("DELETE FROM {s}.terms"))
        written = 0
        with conn.cursor() as cursor:
            with cursor.copy(self.sql("COPY {s}.terms FROM STDIN")) as copy:
                for term, _, df, _, _ in lexical.postings():
                    copy.write_row((term, df))
            with cursor.copy(self.sql("COPY {s}.postings FROM STDIN")) as copy:
                for term, _, _, positions, scores in lexical.postings():
                    for position, score in zip(positions.tolist(), scores.tolist(), strict=True):
                        copy.write_row((term, position, score))
                        written += 1
        return written

    def check(self, conn: Conn, *, writer: bool) -> int | None:
        """Return the stored version after checking this redbook_qa can use it.

        Raises:
            IndexMismatchError: Newer tables (never touched), or older ones when reading.
        """
        version = self.version(conn)
        if version is None or version == SCHEMA_VERSION:
            return version
        if version > SCHEMA_VERSION:
            raise IndexMismatchError(
                f"schema {self.name!r} has table version {version}, newer than this "
                f"redbook_qa's {SCHEMA_VERSION}; upgrade redbook_qa to read it (nothing changed)"
            )
        if not writer:
            raise IndexMismatchError(
                f"schema {self.name!r} has table version {version}, older than this "
                f"redbook_qa's {SCHEMA_VERSION}; run `redbook-qa index` once (it migrates the "
                "tables in place, keeping every vector)"
            )
        return version

    def migrate(self, conn: Conn, version: int) -> None:
        """Apply every step from ``version`` up, in the caller's transaction."""
        for step in range(version, SCHEMA_VERSION):
            logger.info("migrating schema %r: table version %d → %d", self.name, step, step + 1)
            MIGRATIONS[step](self, conn)
        self.write_meta(conn, {"schema_version": str(SCHEMA_VERSION)})


def _v1_to_v2(schema: Schema, conn: Conn) -> None:
    """Version 2 keeps BM25 in tables and records whether the corpus is Chinese.

    The keyword index is rebuilt from the stored chunks: no vector is re-embedded.
    """
    meta = schema.meta(conn)
    manifest = json.loads(meta["manifest"]) if "manifest" in meta else None
    rows = conn.execute(schema.sql("SELECT data::text FROM {s}.chunks ORDER BY position"))
    chunks = [Chunk.model_validate_json(r[0]) for r in rows.fetchall()]
    for template in _KEYWORD_TABLES:
        conn.execute(schema.sql(template))
    if chunks:
        schema.write_keywords(conn, LexicalIndex.build([embedding_text(c) for c in chunks]))
    if manifest is not None:
        manifest["cjk"] = is_cjk_corpus(chunks)
        schema.write_meta(conn, {"manifest": json.dumps(manifest)})
    # A new generation: replicas drop what they cached of the old tables.
    schema.write_meta(conn, {"generation": json.dumps(f"migrated-v2-{uuid.uuid4().hex}")})


MIGRATIONS: dict[int, Callable[[Schema, Conn], None]] = {1: _v1_to_v2}


def vector_literal(values: Iterable[float]) -> str:
    """Pgvector's text form of a vector (repr of each float32 is exact, and parsed exactly)."""
    return "[" + ",".join(repr(float(x)) for x in values) + "]"
