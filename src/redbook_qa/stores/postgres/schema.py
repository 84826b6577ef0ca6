"""The PostgreSQL tables of a saved index, and the migrations between their versions.

Tables, in one PostgreSQL schema per index (``redbook_qa`` unless told otherwise)::

    meta(key, value)        "schema_version", "manifest" (JSON), "generation", "bm25"
    chunks(id, position, hash, digest, data, sentence_rows, embedding)    HNSW on embedding
    sentences(position, hash, digest, data, embedding)
    terms(term, df)                             BM25 document frequencies
    postings(term, position, tf, length)        term counts and chunk lengths
    lengths(position, length)                   BM25 length of every chunk

Every row that a save may rewrite carries a digest of its stored form, so a save compares
digests and writes only the rows that differ: an unchanged re-save writes nothing. BM25 is
kept as raw counts (version 3) rather than precomputed scores (version 2): a score depends on
corpus-wide IDF and average length, so storing scores meant rewriting every posting whenever
any chunk changed; counts change only with their chunk, and the corpus-wide figures (``df``,
``meta.bm25``) are a few small rows, combined at query time.

The version of these tables is ``meta.schema_version``. A newer redbook_qa upgrades older
tables in place (:mod:`~redbook_qa.stores.postgres.migrations`), in the writer's transaction:
readers keep seeing the old tables until it commits, and a failed step leaves them untouched.
Tables written by a newer redbook_qa are refused, never altered.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, LiteralString

from redbook_qa.errors import IndexMismatchError

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql
    from psycopg.rows import TupleRow

    Conn = psycopg.Connection[TupleRow]

SCHEMA_VERSION = 3

_TABLES: tuple[LiteralString, ...] = (
    "CREATE EXTENSION IF NOT EXISTS vector",
    "CREATE SCHEMA IF NOT EXISTS {s}",
    "CREATE TABLE IF NOT EXISTS {s}.meta (key text PRIMARY KEY, value jsonb NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {s}.chunks (id text PRIMARY KEY, "
    "position integer NOT NULL UNIQUE DEFERRABLE INITIALLY DEFERRED, hash text NOT NULL, "
    "digest text, data jsonb NOT NULL, sentence_rows integer[] NOT NULL, "
    "embedding vector({n}))",
    "CREATE TABLE IF NOT EXISTS {s}.sentences (position integer PRIMARY KEY, "
    "hash text NOT NULL, digest text, data jsonb NOT NULL, embedding vector({n}) NOT NULL)",
)
KEYWORD_TABLES: tuple[LiteralString, ...] = (
    "CREATE TABLE IF NOT EXISTS {s}.terms (term text PRIMARY KEY, df integer NOT NULL)",
    # length rides along with each posting so a keyword query reads one table.
    "CREATE TABLE IF NOT EXISTS {s}.postings (term text NOT NULL, position integer NOT NULL, "
    "tf integer NOT NULL, length integer NOT NULL, PRIMARY KEY (term, position))",
    # A save replaces the postings of changed chunks: found by position, not by term.
    "CREATE INDEX IF NOT EXISTS postings_position ON {s}.postings (position)",
    "CREATE TABLE IF NOT EXISTS {s}.lengths (position integer PRIMARY KEY, "
    "length integer NOT NULL)",
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
        for template in (*_TABLES, *KEYWORD_TABLES, *((VECTOR_INDEX,) if vector_index else ())):
            conn.execute(self.sql(template, n=dimension))

    def drop(self, conn: Conn) -> None:
        """Drop every index table (inside the caller's transaction)."""
        conn.execute(
            self.sql(
                "DROP TABLE IF EXISTS {s}.chunks, {s}.sentences, {s}.terms, {s}.postings, "
                "{s}.lengths, {s}.meta"
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
