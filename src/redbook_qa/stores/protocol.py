"""The protocol of an index store: what a question reads from it, wherever it lives.

Two stores implement :class:`VectorStore`:

- :class:`redbook_qa.stores.memory.Store`: everything in this process (FAISS + BM25
  matrices), built here or loaded from an index folder. The default.
- :class:`redbook_qa.stores.postgres.PgVectorStore`: PostgreSQL + pgvector, searched at query
  time, so any number of stateless app replicas serve one shared index.

Where an index lives, and how it is kept fresh, is :mod:`redbook_qa.stores.location`'s part.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from redbook_qa.embedding.base import Vectors
from redbook_qa.models import Chunk
from redbook_qa.stores.base import Candidates, Filters, Manifest, StoreKind

if TYPE_CHECKING:
    from redbook_qa.stores.memory import Store


class VectorStore(Protocol):
    """A built index that can be searched: in memory, or in a database shared by replicas."""

    @property
    def manifest(self) -> Manifest:
        """What the index holds: model, chunking, corpus fingerprint, documents, aliases."""
        ...

    @property
    def kind(self) -> StoreKind:
        """Where the index is searched: ``"process"`` or ``"postgresql"``."""
        ...

    def candidates(
        self,
        query: Vectors,
        terms: Sequence[str],
        *,
        pool: int,
        filters: Filters | None = None,
    ) -> Candidates:
        """Return the union of the ``pool`` nearest and ``pool`` best keyword chunks.

        With ``filters`` (field → value or values; fields are ``source``, ``section``,
        ``title``, ``doc_id`` or a metadata key), every chunk that matches all of them.
        """
        ...

    def all_chunks(self) -> list[Chunk]:
        """Every chunk, in position order (for listing articles; not for the query path)."""
        ...

    def snapshot(self) -> Store:
        """The whole index in this process (itself, or read back from the database)."""
        ...

    def close(self) -> None:
        """Release what the store holds open (connections); it may be used again after."""
        ...
