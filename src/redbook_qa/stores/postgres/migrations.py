"""Upgrading an index's tables written by an older redbook_qa, in place, keeping every vector.

Each step in :data:`MIGRATIONS` takes the tables from one version to the next; they all run
in the writer's transaction (see :meth:`~redbook_qa.stores.postgres.PgVectorStore.migrate`),
so readers see the old version or the new one, and a failed step leaves nothing changed.
Steps rebuild what can be derived from the stored chunks and never re-embed anything.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, LiteralString

from redbook_qa.models import Chunk
from redbook_qa.stores.postgres.keywords import write_keywords
from redbook_qa.stores.postgres.schema import KEYWORD_TABLES, SCHEMA_VERSION, Schema
from redbook_qa.text.cjk import is_cjk_corpus

if TYPE_CHECKING:
    from redbook_qa.stores.postgres.schema import Conn

logger = logging.getLogger(__name__)


def migrate(conn: Conn, schema: Schema, version: int) -> None:
    """Apply every step from ``version`` up, in the caller's transaction."""
    for step in range(version, SCHEMA_VERSION):
        logger.info("migrating schema %r: table version %d → %d", schema.name, step, step + 1)
        MIGRATIONS[step](schema, conn)
    # A new generation: replicas drop what they cached of the old tables.
    schema.write_meta(
        conn,
        {
            "schema_version": str(SCHEMA_VERSION),
            "generation": json.dumps(f"migrated-v{SCHEMA_VERSION}-{uuid.uuid4().hex}"),
        },
    )


def _v1_to_v2(schema: Schema, conn: Conn) -> None:
    """Version 2 records whether the corpus is Chinese (and adds BM25: see version 3)."""
    meta = schema.meta(conn)
    if "manifest" in meta:
        manifest = json.loads(meta["manifest"])
        manifest["cjk"] = is_cjk_corpus(_stored_chunks(schema, conn))
        schema.write_meta(conn, {"manifest": json.dumps(manifest)})


_DIGESTS: tuple[LiteralString, ...] = (
    "ALTER TABLE {s}.chunks ADD COLUMN IF NOT EXISTS digest text",
    "ALTER TABLE {s}.sentences ADD COLUMN IF NOT EXISTS digest text",
)


def _v2_to_v3(schema: Schema, conn: Conn) -> None:
    """Version 3 adds row digests and keeps BM25 as term counts, rebuilt from stored chunks.

    Rows get no digest here: a digest says what a save wrote, so the next save rewrites
    each row once (keeping its stored vector) and records it.
    """
    for template in _DIGESTS:
        conn.execute(schema.sql(template))
    conn.execute(schema.sql("DROP TABLE IF EXISTS {s}.postings, {s}.terms, {s}.lengths"))
    for template in KEYWORD_TABLES:
        conn.execute(schema.sql(template))
    chunks = _stored_chunks(schema, conn)
    write_keywords(conn, schema, chunks, range(len(chunks)))


def _stored_chunks(schema: Schema, conn: Conn) -> list[Chunk]:
    rows = conn.execute(schema.sql("SELECT data::text FROM {s}.chunks ORDER BY position"))
    return [Chunk.model_validate_json(r[0]) for r in rows.fetchall()]


MIGRATIONS: dict[int, Callable[[Schema, Conn], None]] = {1: _v1_to_v2, 2: _v2_to_v3}
