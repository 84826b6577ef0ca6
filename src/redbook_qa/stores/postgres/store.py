"""An index kept in PostgreSQL with pgvector and searched there: one index, many replicas.

:class:`PgVectorStore` is a :class:`~redbook_qa.stores.protocol.VectorStore`. Per question it
runs, in one repeatable-read transaction on a pooled, pipelined connection: pgvector's HNSW
search for the nearest chunks, a BM25 top-k computed from stored term counts, and one fetch
of the candidates' BM25 counts and of the chunk rows this process has not read yet in this
generation (:mod:`~redbook_qa.stores.postgres.reading`, :mod:`.candidates`): two round trips.
Fusion and evidence scoring then run in the retriever exactly as over the in-process store,
so both give the same answers (a CI test runs the seeds eval on both). An app process holds
no copy of the index, only a bounded cache of rows it read: any number of replicas serve the
same answers, and a rebuild by one of them is seen by all at their next question.

:meth:`PgVectorStore.save` writes a built :class:`~redbook_qa.stores.memory.Store` in one
transaction under an advisory lock, sending only the rows whose digest changed
(:mod:`~redbook_qa.stores.postgres.writing`); readers see the old corpus or the new one,
never a mix. Table layout: :mod:`redbook_qa.stores.postgres.schema`; upgrades:
:mod:`.migrations`. psycopg (v3) is imported only when the store is used.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from redbook_qa.embedding.base import Vectors
from redbook_qa.errors import IndexNotFoundError
from redbook_qa.models import Chunk
from redbook_qa.stores.base import (
    Candidates,
    Filters,
    Manifest,
    StoreKind,
)
from redbook_qa.stores.memory import Store
from redbook_qa.stores.postgres.candidates import RowCache, send_fetch
from redbook_qa.stores.postgres.connections import Connections, psycopg_module
from redbook_qa.stores.postgres.keywords import CorpusStats
from redbook_qa.stores.postgres.migrations import migrate
from redbook_qa.stores.postgres.reading import (
    filtered,
    nearest_many,
    read_store,
    send_keyword_top,
    send_nearest,
    stored_generation,
    stored_manifest,
)
from redbook_qa.stores.postgres.schema import SCHEMA_VERSION, Schema
from redbook_qa.stores.postgres.writing import write_store

if TYPE_CHECKING:
    from redbook_qa.stores.postgres.schema import Conn


__all__ = ["SCHEMA_VERSION", "PgVectorStore"]

logger = logging.getLogger(__name__)

DEFAULT_SCHEMA = "redbook_qa"

# recall@10 at 1M chunks: 0.914 at 100, 0.973 at 200 (benchmarks/bench_pgvector.py).
DEFAULT_EF_SEARCH = 200

DEFAULT_POOL_SIZE = 4

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


# Any constants work: they only have to be the same in every process using this database.
_WRITER_LOCK = 0x7265_6462_6F6F_6B  # "redbook": one save at a time

_BUILD_LOCK = 0x7265_6462_6F6F_6C  # one build at a time (held while embedding)


class PgVectorStore:
    """Save, search and load a built index in PostgreSQL with pgvector.

    Args:
        url: A libpq connection string, e.g. ``postgresql://user@host/db``. Server settings
            travel in it too, e.g. ``?options=-c%20maintenance_work_mem%3D2GB`` for big builds.
        schema: The PostgreSQL schema holding the tables, so one database can hold several
            indexes. Lower-case letters, digits and ``_``.
        ef_search: HNSW candidate list size per query; it is raised to the pool when smaller.
        pool_size: Connections kept open for questions (one per concurrent question).
        diagnose: Called when the server drops a connection, to say why (a local server
            reads its log: see :meth:`~redbook_qa.stores.postgres.LocalPostgres.explain_failure`).
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        ef_search: int = DEFAULT_EF_SEARCH,
        pool_size: int = DEFAULT_POOL_SIZE,
        diagnose: Callable[[], str | None] | None = None,
    ) -> None:
        if not _IDENTIFIER.match(schema):
            raise ValueError(
                f"schema must be lower-case letters, digits and '_' (at most 63), got {schema!r}"
            )
        if ef_search <= 0:
            raise ValueError(f"ef_search must be positive, got {ef_search}")
        if pool_size <= 0:
            raise ValueError(f"pool_size must be positive, got {pool_size}")
        self._url = url
        self._schema = Schema(schema)
        self._ef_search = ef_search
        self._db = Connections(
            url, name=f"redbook_qa-{schema}", pool_size=pool_size, diagnose=diagnose
        )
        self._seen: tuple[str, Manifest] | None = None  # (generation, its manifest)
        self._chunks_seen: tuple[str, list[Chunk]] | None = None
        self._rows: RowCache | None = None

    @classmethod
    def open(cls, spec: str, *, schema: str = DEFAULT_SCHEMA, local_dir: Path) -> PgVectorStore:
        """Open the store named by ``REDBOOK_QA_STORE``: a URL, or ``local[:DIR]``.

        ``local`` starts (or joins) the bundled PostgreSQL on ``local_dir``; ``local:DIR`` on
        ``DIR``. Its log explains any crashed backend in the errors raised.
        """
        if spec != "local" and not spec.startswith("local:"):
            return cls(spec, schema=schema)
        from redbook_qa.stores.postgres.local import LocalPostgres

        server = LocalPostgres(spec.partition(":")[2] or local_dir)
        return cls(server.start(), schema=schema, diagnose=server.explain_failure)

    # -- the VectorStore protocol: what a question reads ------------------------------------

    @property
    def manifest(self) -> Manifest:
        """The manifest of the index as stored now.

        Raises:
            IndexNotFoundError: Nothing was saved in this schema yet.
        """
        # One statement reads the generation; the manifest is re-read only when it changed.
        with self._db.statement() as conn:
            return self._current(conn)[1]

    @property
    def generation(self) -> str:
        """An id of the stored build, new at every save (replicas compare it per question)."""
        with self._db.statement() as conn:
            return self._current(conn)[0]

    def candidates(
        self, query: Vectors, terms: Sequence[str], *, pool: int, filters: Filters | None = None
    ) -> Candidates:
        """Nearest chunks by HNSW joined with the BM25 top-``pool``, or the filtered ones.

        Two round trips in all, on a pipelined connection: the searches with the generation
        read (and BEGIN), then the candidates' rows with the COMMIT. Each round trip wakes
        the server's backend, and a question used to make eleven, plus three for reading
        the manifest; on a busy host that was most of the gap to the in-process store.
        """
        psycopg = psycopg_module()
        try:
            return self._candidates(query, terms, pool, filters)
        except (psycopg.errors.ProgrammingError, IndexNotFoundError):
            # The searches went out before the version check, so their failure comes first:
            # say what is wrong with the tables (none yet, another version), not which
            # table or column is missing.
            self._not_current()
            raise

    def _candidates(
        self, query: Vectors, terms: Sequence[str], pool: int, filters: Filters | None
    ) -> Candidates:
        with self._db.pipelined() as conn:
            with conn.transaction():
                if filters:
                    generation, manifest, stats = self._state(conn)
                    positions = filtered(conn, self._schema, filters)
                else:
                    vector = np.asarray(query, np.float32)[0]
                    nearest = send_nearest(
                        conn, self._schema, vector, pool, ef_search=self._ef_search
                    )
                    keyword = send_keyword_top(conn, self._schema, terms, pool)
                    generation, manifest, stats = self._state(conn)
                    dense = np.array([p for p, _ in nearest()], np.int64)
                    positions = np.union1d(dense, keyword())
                cache = self._rows_of(generation)
                read = send_fetch(conn, self._schema, positions.astype(np.int64), terms, cache)
            found = read(manifest, stats)  # after the COMMIT was queued: one round trip
        return Candidates(generation=generation, **found)

    def _rows_of(self, generation: str) -> RowCache:
        """The cache of chunk rows read from ``generation`` (a new one when it changed)."""
        cache = self._rows
        if cache is None or cache.generation != generation:
            cache = self._rows = RowCache(generation)
        return cache

    def _not_current(self) -> None:
        """Raise the error that says why the tables can't be searched, if there is one."""
        with self._db.statement() as conn:
            self._current(conn)

    def all_chunks(self) -> list[Chunk]:
        """Every chunk, in position order (read once per stored generation)."""
        with self._db.snapshot() as conn:
            generation, _ = self._current(conn)
            cached = self._chunks_seen
            if cached is not None and cached[0] == generation:
                return cached[1]
            rows = conn.execute(
                self._schema.sql("SELECT data::text FROM {s}.chunks ORDER BY position")
            ).fetchall()
        chunks = [Chunk.model_validate_json(r[0]) for r in rows]
        self._chunks_seen = (generation, chunks)
        return chunks

    # -- writing --------------------------------------------------------------------------

    def save(self, store: Store) -> None:
        """Write ``store`` in one transaction, reusing stored vectors of unchanged chunks.

        Older tables are migrated first, in the same transaction.

        Raises:
            IndexMismatchError: The tables were written by a newer redbook_qa.
        """
        started = time.perf_counter()
        with self._db.connect() as conn, conn.transaction():
            # One writer at a time; readers are never blocked by it.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITER_LOCK,))
            version = self._schema.check(conn, writer=True)
            if version is not None and version < SCHEMA_VERSION:
                migrate(conn, self._schema, version)
            old = self._stored_manifest(conn) if version is not None else None
            written, sent, generation = write_store(conn, self._schema, store, old)
        self._seen = (generation, store.manifest)
        logger.info(
            "saved %d chunks and %d sentences to PostgreSQL in %.1f s: %d rows written, "
            "%d vectors sent",
            len(store.chunks),
            len(store.sentences),
            time.perf_counter() - started,
            written,
            sent,
        )

    def migrate(self) -> bool:
        """Upgrade tables written by an older redbook_qa in place; return whether it did.

        All steps run in one transaction under the writer lock: a failure leaves the tables
        as they were, and readers see the old or the new version, never a mix.

        Raises:
            IndexMismatchError: The tables were written by a newer redbook_qa.
        """
        with self._db.connect() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITER_LOCK,))
            version = self._schema.check(conn, writer=True)
            if version is None or version == SCHEMA_VERSION:
                return False
            migrate(conn, self._schema, version)
        self._seen = None
        return True

    @contextmanager
    def building(self) -> Iterator[None]:
        """Hold the build lock: replicas starting together build a stale index once.

        The holder re-reads the stored manifest inside, since another process may have
        saved a fresh index while this one waited.
        """
        with self._db.connect() as conn:
            conn.autocommit = True
            conn.execute("SELECT pg_advisory_lock(%s)", (_BUILD_LOCK,))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_BUILD_LOCK,))

    # -- whole-index reads (tests, benchmarks, vector reuse on rebuild) --------------------

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
        with self._db.snapshot() as conn:
            self._current(conn)
            return nearest_many(conn, self._schema, matrix, k, ef_search=self._ef_search)

    def count_chunks(self) -> int:
        """Return the number of stored chunks (0 when nothing was saved yet)."""
        try:
            with self._db.snapshot() as conn:
                self._current(conn)
                row = conn.execute(self._schema.sql("SELECT count(*) FROM {s}.chunks")).fetchone()
        except IndexNotFoundError:
            return 0
        return int(row[0]) if row else 0

    @property
    def kind(self) -> StoreKind:
        """Searched in PostgreSQL."""
        return "postgresql"

    def snapshot(self) -> Store:
        """Read the whole stored index into this process (see :meth:`load`)."""
        return self.load()

    def load(self) -> Store:
        """Read the stored index back as an in-process :class:`Store` (one snapshot).

        Used to reuse stored vectors when a build must run; questions don't need it.

        Raises:
            IndexNotFoundError: Nothing was saved in this schema yet.
            IndexMismatchError: The tables were written with another schema or format version.
        """
        with self._db.snapshot() as conn:
            _, manifest = self._current(conn)
            return read_store(conn, self._schema, manifest)

    def close(self) -> None:
        """Close the pooled connections (a later question opens new ones)."""
        self._db.close()

    # -- internals ------------------------------------------------------------------------

    @property
    def _redacted_url(self) -> str:
        return self._db.redacted_url

    def _not_found(self) -> IndexNotFoundError:
        return IndexNotFoundError(
            f"no index in schema {self._schema.name!r} of {self._redacted_url}; save one first "
            "(`REDBOOK_QA_STORE=… redbook-qa index` builds it)"
        )

    def _current(self, conn: Conn) -> tuple[str, Manifest]:
        """The stored generation and manifest, re-read only when the generation changed."""
        generation, manifest, _ = self._state(conn)
        return generation, manifest

    def _state(self, conn: Conn) -> tuple[str, Manifest, CorpusStats]:
        """The generation, its manifest (cached per generation) and its BM25 figures."""
        stored = stored_generation(conn, self._schema)
        if stored is None:
            raise self._not_found()
        generation, stats = stored
        seen = self._seen
        if seen is None or seen[0] != generation:
            manifest = self._stored_manifest(conn)
            if manifest is None:
                raise self._not_found()
            seen = self._seen = (generation, manifest)
        return seen[0], seen[1], stats

    def _stored_manifest(self, conn: Conn) -> Manifest | None:
        return stored_manifest(conn, self._schema)
