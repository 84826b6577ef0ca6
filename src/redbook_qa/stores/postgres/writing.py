"""Writing an index into its tables: only the rows whose digest changed cross the wire.

A save used to stage every chunk, rewrite every sentence (with its vector) and every BM25
posting: 317 s for an unchanged 100k-chunk index. Now each chunk and sentence row carries a
digest of what was written (:func:`chunk_digest`, :func:`sentence_digest`); a save reads the
stored digests (a few MB), sends the rows that differ in binary COPY, deletes those that are
gone, and replaces the BM25 counts of the chunks whose text changed
(:mod:`.keywords`). A vector is sent only when its text hash changed, and an unchanged row
is not touched at all (an UPDATE is also an HNSW insert and a dead tuple).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from redbook_qa.models import Chunk, Sentence
from redbook_qa.stores.base import Manifest
from redbook_qa.stores.memory import Store
from redbook_qa.stores.postgres.keywords import stale_positions, write_keywords
from redbook_qa.stores.postgres.schema import SCHEMA_VERSION, VECTOR_INDEX, Schema
from redbook_qa.stores.postgres.wire import register_vector

if TYPE_CHECKING:
    from redbook_qa.stores.postgres.schema import Conn


def write_store(
    conn: Conn, schema: Schema, store: Store, old: Manifest | None
) -> tuple[int, int, str]:
    """Write ``store`` over the index in ``schema`` (inside the caller's transaction).

    Returns the rows written (chunks, sentences and postings), the vectors sent and the new
    generation id. ``old`` is the manifest stored before, if any: another dimension drops
    the tables, another embedder sends every vector again (a chunk hash names the text, not
    the model).
    """
    if old is not None and old.dimension != store.manifest.dimension:
        schema.drop(conn)  # DDL is transactional: readers still see the old rows
    fresh = not schema.chunks_exist(conn)
    # On a fresh table the HNSW graph is built once after the bulk load (much faster than
    # inserting into it row by row).
    schema.create(conn, store.manifest.dimension, vector_index=not fresh)
    register_vector(conn)
    rows = conn.execute(schema.sql("SELECT id, position, hash, digest FROM {s}.chunks"))
    stored = {str(i): (int(p), str(h), d) for i, p, h, d in rows.fetchall()}
    same_model = old is None or old.embedder == store.manifest.embedder
    chunks, sent = upsert_chunks(conn, schema, store, stored, same_model=same_model)
    if fresh:
        conn.execute(schema.sql(VECTOR_INDEX))
    sentences = upsert_sentences(conn, schema, store, same_model=same_model)
    by_position = {p: h for p, h, _ in stored.values()}
    postings = write_keywords(
        conn, schema, store.chunks, stale_positions(by_position, store.chunk_hashes)
    )
    generation = uuid.uuid4().hex
    schema.write_meta(
        conn,
        {
            "schema_version": str(SCHEMA_VERSION),
            "manifest": store.manifest.model_dump_json(),
            "generation": json.dumps(generation),
        },
    )
    return chunks + sentences + postings, sent, generation


def chunk_digest(chunk: Chunk, position: int, text_hash: str, rows: npt.NDArray[np.int64]) -> str:
    """A digest of everything a chunk row stores but its vector (named by ``text_hash``)."""
    head = f"{position}\x00{text_hash}\x00{','.join(map(str, rows.tolist()))}\x00"
    return hashlib.blake2b((head + chunk.model_dump_json()).encode(), digest_size=16).hexdigest()


def sentence_digest(sentence: Sentence, text_hash: str) -> str:
    """A digest of a sentence row but its vector (named by ``text_hash``)."""
    payload = f"{text_hash}\x00{sentence.model_dump_json()}".encode()
    return hashlib.blake2b(payload, digest_size=16).hexdigest()


def upsert_chunks(
    conn: Conn,
    schema: Schema,
    store: Store,
    stored: dict[str, tuple[int, str, str | None]],
    *,
    same_model: bool,
) -> tuple[int, int]:
    """Write the chunks whose digest changed, delete the gone; return (rows, vectors) sent.

    ``stored`` maps each stored id to its (position, hash, digest). Without ``same_model``
    every row is rewritten with its vector.
    """
    gone = list(set(stored) - {chunk.id for chunk in store.chunks})
    if gone:
        conn.execute(schema.sql("DELETE FROM {s}.chunks WHERE id = ANY(%s)"), (gone,))
    changed = []
    for position, (chunk, text_hash) in enumerate(
        zip(store.chunks, store.chunk_hashes, strict=True)
    ):
        digest = chunk_digest(chunk, position, text_hash, store.chunk_sentences[position])
        before = stored.get(chunk.id) if same_model else None
        if before is None or before[2] != digest:
            changed.append((position, digest, before is None or before[1] != text_hash))
    if not changed:
        return 0, 0
    conn.execute(
        "CREATE TEMP TABLE staged_chunks (id text, position integer, hash text, digest text, "
        "data text, sentence_rows integer[], embedding vector) ON COMMIT DROP"
    )
    with conn.cursor().copy("COPY staged_chunks FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["text", "int4", "text", "text", "text", "int4[]", "vector"])
        for position, digest, needs_vector in changed:
            chunk = store.chunks[position]
            copy.write_row(
                (
                    chunk.id,
                    position,
                    store.chunk_hashes[position],
                    digest,
                    chunk.model_dump_json(),
                    store.chunk_sentences[position].tolist(),
                    store.chunk_vectors[position] if needs_vector else None,
                )
            )
    conn.execute(
        schema.sql(
            # Columns named: a migrated table may hold them in another order.
            "INSERT INTO {s}.chunks (id, position, hash, digest, data, sentence_rows, embedding) "
            "SELECT id, position, hash, digest, data::jsonb, "
            "sentence_rows, embedding FROM staged_chunks ON CONFLICT (id) DO UPDATE SET "
            "position = excluded.position, hash = excluded.hash, digest = excluded.digest, "
            "data = excluded.data, sentence_rows = excluded.sentence_rows, "
            "embedding = coalesce(excluded.embedding, {s}.chunks.embedding)"
        )
    )
    return len(changed), sum(needs for _, _, needs in changed)


def upsert_sentences(conn: Conn, schema: Schema, store: Store, *, same_model: bool) -> int:
    """Write the sentence rows whose digest changed, drop the rows past the end.

    Rows are positions, which a rebuild may move; a moved sentence is rewritten whole (its
    vector is small next to a chunk's row, and the table has no vector index).
    """
    stored: dict[int, str | None] = {}
    if same_model:
        rows = conn.execute(schema.sql("SELECT position, digest FROM {s}.sentences"))
        stored = {int(p): d for p, d in rows.fetchall()}
    count = len(store.sentences)
    conn.execute(schema.sql("DELETE FROM {s}.sentences WHERE position >= %s"), (count,))
    changed = _changed_sentences(store.sentences, store.sentence_hashes, stored)
    if not changed:
        return 0
    conn.execute(
        "CREATE TEMP TABLE staged_sentences (position integer, hash text, digest text, "
        "data text, embedding vector) ON COMMIT DROP"
    )
    with conn.cursor().copy("COPY staged_sentences FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["int4", "text", "text", "text", "vector"])
        for position, digest in changed:
            sentence = store.sentences[position]
            vector = store.sentence_vectors[position]
            hashed = store.sentence_hashes[position]
            copy.write_row((position, hashed, digest, sentence.model_dump_json(), vector))
    conn.execute(
        schema.sql(
            "INSERT INTO {s}.sentences (position, hash, digest, data, embedding) "
            "SELECT position, hash, digest, data::jsonb, embedding FROM staged_sentences "
            "ON CONFLICT (position) DO UPDATE SET hash = excluded.hash, "
            "digest = excluded.digest, data = excluded.data, embedding = excluded.embedding"
        )
    )
    return len(changed)


def _changed_sentences(
    sentences: Sequence[Sentence], hashes: Sequence[str], stored: dict[int, str | None]
) -> list[tuple[int, str]]:
    digests = (sentence_digest(s, h) for s, h in zip(sentences, hashes, strict=True))
    return [(p, d) for p, d in enumerate(digests) if stored.get(p) != d]
