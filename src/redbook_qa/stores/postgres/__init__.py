"""The index in PostgreSQL + pgvector (extra ``pg``): the store, its tables, a bundled server."""

from __future__ import annotations

from redbook_qa.stores.postgres.local import LocalPostgres
from redbook_qa.stores.postgres.store import PgVectorStore

__all__ = ["LocalPostgres", "PgVectorStore"]
