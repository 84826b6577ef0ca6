"""Where an index lives, and how it is kept fresh there: in memory, in a folder, in PostgreSQL.

Each home answers one request, :meth:`IndexHome.open`: "the index of these documents, built
this way". It returns the saved index when it is fresh, and otherwise builds one (re-embedding
only chunks whose text changed, from the previous index or the saved one) and saves it
before it is used. The facade picks a home once, from its settings (:func:`home_for`), and
never asks which kind it holds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from redbook_qa.embedding.base import Embedder
from redbook_qa.errors import IndexNotFoundError, RedbookQAError
from redbook_qa.models import Document
from redbook_qa.stores.base import BuildSpec, Manifest
from redbook_qa.stores.building import build_store, corpus_fingerprint, fingerprint
from redbook_qa.stores.folder import load_store, save_store, tidy, write_lock
from redbook_qa.stores.memory import Store
from redbook_qa.stores.protocol import VectorStore
from redbook_qa.text.tokens import TokenCounter

if TYPE_CHECKING:
    from redbook_qa.stores.postgres.store import PgVectorStore

logger = logging.getLogger(__name__)


class IndexHome(Protocol):
    """A place an index is kept: it hands back a fresh index of the documents given."""

    def open(
        self,
        documents: Sequence[Document],
        embedder: Embedder,
        spec: BuildSpec,
        counter: TokenCounter,
        *,
        previous: VectorStore | None = None,
    ) -> VectorStore:
        """Return the index of ``documents``: the saved one if fresh, else built and saved."""
        ...


class InMemory:
    """No home: every index is built in this process (reusing ``previous``'s vectors)."""

    def open(
        self,
        documents: Sequence[Document],
        embedder: Embedder,
        spec: BuildSpec,
        counter: TokenCounter,
        *,
        previous: VectorStore | None = None,
    ) -> VectorStore:
        """Build the index of ``documents`` now."""
        kept = previous.snapshot() if previous is not None else None
        return _build(documents, embedder, spec, counter, kept)


class Folder:
    """An index folder (atomic generations, see :mod:`redbook_qa.stores.folder`)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def open(
        self,
        documents: Sequence[Document],
        embedder: Embedder,
        spec: BuildSpec,
        counter: TokenCounter,
        *,
        previous: VectorStore | None = None,
    ) -> VectorStore:
        """Load the folder's index if fresh; else build one and save it there atomically."""
        wanted = corpus_fingerprint(fingerprint(documents))
        saved = self._try_load()
        if saved is not None and spec.is_fresh(saved.manifest, wanted, embedder):
            tidy(self.root)
            return saved
        with write_lock(self.root):
            latest = self._try_load()  # another process may have rebuilt while we waited
            if latest is not None and spec.is_fresh(latest.manifest, wanted, embedder):
                return latest
            logger.info("index in %s is %s; building it", self.root, _state(latest))
            store = _build(documents, embedder, spec, counter, latest)
            save_store(store, self.root)
            return store

    def _try_load(self) -> Store | None:
        try:
            return load_store(self.root)
        except RedbookQAError as err:
            if self.root.exists() and any(self.root.glob("gen-*")):
                logger.warning("cannot use the index in %s (%s); rebuilding it", self.root, err)
            return None


class Postgres:
    """An index kept and searched in PostgreSQL: nothing of it is loaded into this process."""

    def __init__(self, store: PgVectorStore) -> None:
        self.store = store  # one store (and connection pool) for every open and refresh

    def open(
        self,
        documents: Sequence[Document],
        embedder: Embedder,
        spec: BuildSpec,
        counter: TokenCounter,
        *,
        previous: VectorStore | None = None,
    ) -> VectorStore:
        """Search the stored index if fresh; else build it and save it (one transaction).

        Tables of an older redbook_qa are migrated in place first. Replicas starting
        together wait on a build lock: the first builds, the others find it fresh.
        """
        pg = self.store
        pg.migrate()
        wanted = corpus_fingerprint(fingerprint(documents))
        if _is_fresh(_stored_manifest(pg), spec, wanted, embedder):
            return pg
        with pg.building():
            if _is_fresh(_stored_manifest(pg), spec, wanted, embedder):
                return pg
            try:
                saved: Store | None = pg.snapshot()  # to reuse vectors of unchanged chunks
            except IndexNotFoundError:
                saved = None
            pg.save(_build(documents, embedder, spec, counter, saved))
        return pg


def home_for(
    store: str | None, index_dir: Path | None, *, schema: str, local_dir: Path
) -> IndexHome:
    """Pick the home a configuration names.

    Args:
        store: ``REDBOOK_QA_STORE``: a PostgreSQL URL, or ``local[:DIR]`` for the bundled
            PostgreSQL (on ``local_dir`` unless DIR is given); ``None`` for a folder.
        index_dir: The index folder; ``None`` keeps the index in memory only.
        schema: The PostgreSQL schema of the index.
        local_dir: Where ``local`` keeps the bundled PostgreSQL's data.
    """
    if store is not None:
        from redbook_qa.stores.postgres.store import PgVectorStore

        return Postgres(PgVectorStore.open(store, schema=schema, local_dir=local_dir))
    return InMemory() if index_dir is None else Folder(index_dir)


def _build(
    documents: Sequence[Document],
    embedder: Embedder,
    spec: BuildSpec,
    counter: TokenCounter,
    previous: Store | None,
) -> Store:
    return build_store(
        documents,
        embedder,
        counter,
        chunking=spec.chunking,
        index_kind=spec.index_kind,
        previous=previous,
        show_progress=spec.show_progress,
    )


def _stored_manifest(pg: PgVectorStore) -> Manifest | None:
    try:
        return pg.manifest
    except IndexNotFoundError:
        return None


def _is_fresh(manifest: Manifest | None, spec: BuildSpec, wanted: str, embedder: Embedder) -> bool:
    return manifest is not None and spec.is_fresh(manifest, wanted, embedder)


def _state(store: Store | None) -> str:
    return "missing" if store is None else "stale"
