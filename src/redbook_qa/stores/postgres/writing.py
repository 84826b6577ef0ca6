"""Writing an index into its tables: chunks staged and upserted by hash, sentences replaced."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

from redbook_qa.stores.base import Manifest
from redbook_qa.stores.memory import Store
from redbook_qa.stores.postgres.schema import SCHEMA_VERSION, VECTOR_INDEX, Schema, vector_literal

if TYPE_CHECKING:
    from redbook_qa.stores.postgres.schema import Conn


def write_store(
    conn: Conn, schema: Schema, store: Store, old: Manifest | None
) -> tuple[int, int, str]:
    """Write ``store`` over the index in ``schema`` (inside the caller's transaction).

    Returns the vectors sent, the postings written and the new generation id. ``old`` is the
    manifest stored before, if any: another dimension drops the tables, another embedder
    sends every vector again (a chunk hash names the text, not the model).
    """
    if old is not None and old.dimension != store.manifest.dimension:
        schema.drop(conn)  # DDL is transactional: readers still see the old rows
    fresh = not schema.chunks_exist(conn)
    # On a fresh table the HNSW graph is built once after the bulk load (much faster than
    # inserting into it row by row).
    schema.create(conn, store.manifest.dimension, vector_index=not fresh)
    stored: dict[str, str] = dict(
        conn.execute(schema.sql("SELECT id, hash FROM {s}.chunks")).fetchall()
    )
    if old is not None and old.embedder != store.manifest.embedder:
        stored = {}
    sent = upsert_chunks(conn, schema, store, stored)
    if fresh:
        conn.execute(schema.sql(VECTOR_INDEX))
    replace_sentences(conn, schema, store)
    postings = schema.write_keywords(conn, store.lexical)
    generation = uuid.uuid4().hex
    schema.write_meta(
        conn,
        {
            "schema_version": str(SCHEMA_VERSION),
            "manifest": store.manifest.model_dump_json(),
            "generation": json.dumps(generation),
        },
    )
    return sent, postings, generation


def upsert_chunks(conn: Conn, schema: Schema, store: Store, stored: dict[str, str]) -> int:
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
            vector = vector_literal(store.chunk_vectors[position].tolist()) if fresh else None
            sent += fresh
            rows = "{" + ",".join(str(int(i)) for i in store.chunk_sentences[position]) + "}"
            copy.write_row((chunk.id, position, digest, chunk.model_dump_json(), rows, vector))
    conn.execute(
        schema.sql(
            "DELETE FROM {s}.chunks c WHERE NOT EXISTS (SELECT 1 FROM staged s WHERE s.id = c.id)"
        )
    )
    conn.execute(
        schema.sql(
            "INSERT INTO {s}.chunks SELECT id, position, hash, data, sentence_rows, "
            "embedding::vector FROM staged ON CONFLICT (id) DO UPDATE SET "
            "position = excluded.position, hash = excluded.hash, data = excluded.data, "
            "sentence_rows = excluded.sentence_rows, "
            "embedding = coalesce(excluded.embedding, {s}.chunks.embedding) "
            # Unchanged rows are not rewritten (a rewrite is also an HNSW insert).
            "WHERE excluded.embedding IS NOT NULL OR ({s}.chunks.position, "
            "{s}.chunks.hash, {s}.chunks.data, {s}.chunks.sentence_rows) IS DISTINCT FROM "
            "(excluded.position, excluded.hash, excluded.data, excluded.sentence_rows)"
        )
    )
    return sent


def replace_sentences(conn: Conn, schema: Schema, store: Store) -> None:
    """Rewrite the sentences table (rows are positions, which any rebuild may move)."""
    conn.execute(schema.sql("DELETE FROM {s}.sentences"))
    with conn.cursor().copy(schema.sql("COPY {s}.sentences FROM STDIN")) as copy:
        for position, (sentence, digest) in enumerate(
            zip(store.sentences, store.sentence_hashes, strict=True)
        ):
            vector = vector_literal(store.sentence_vectors[position].tolist())
            copy.write_row((position, digest, sentence.model_dump_json(), vector))
