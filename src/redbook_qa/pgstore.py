"""An index kept in PostgreSQL with pgvector and searched there: one index, many replicas.

:class:`PgVectorStore` is a :class:`~redbook_qa.vectorstore.VectorStore`. Per question it runs,
in one repeatable-read transaction on a pooled connection: pgvector's HNSW search for the
nearest chunks, a BM25 top-k over the ``postings`` table, and one fetch of the candidates
with their vectors, sentences and BM25 scores. Fusion and evidence scoring then run in the
retriever exactly as over the in-process store, so both give the same answers (a CI test runs
the seeds eval on both). An app process holds no copy of the index: any number of replicas
serve the same answers, and a rebuild by one of them is seen by all at their next question.

:meth:`PgVectorStore.save` writes a whole built :class:`~redbook_qa.store.Store` in one
transaction: chunks upserted by id with vectors sent only when the chunk hash changed, rows of
removed articles deleted, the BM25 tables and the manifest replaced, and a new ``generation``
recorded. Readers see the old corpus or the new one, never a mix. Table layout and migrations:
:mod:`redbook_qa.pgschema`. psycopg (v3) is imported only when the store is used.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from redbook_qa.chunking import embedding_text
from redbook_qa.embedding import Vectors
from redbook_qa.errors import IndexMismatchError, IndexNotFoundError, StoreUnavailableError
from redbook_qa.index import IndexKind, VectorIndex
from redbook_qa.lexical import LexicalIndex, bm25_idf
from redbook_qa.models import Chunk, Sentence
from redbook_qa.pgschema import SCHEMA_VERSION, VECTOR_INDEX, Schema, vector_literal
from redbook_qa.store import FORMAT_VERSION, Manifest, Store
from redbook_qa.vectorstore import Candidates, Filters

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

    from redbook_qa.pgschema import Conn

__all__ = ["SCHEMA_VERSION", "PgVectorStore"]

logger = logging.getLogger(__name__)

DEFAULT_SCHEMA = "redbook_qa"
# recall@10 at 1M chunks: 0.914 at 100, 0.973 at 200 (benchmarks/bench_pgvector.py).
DEFAULT_EF_SEARCH = 200
DEFAULT_POOL_SIZE = 4
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_KINDS: tuple[IndexKind, ...] = ("flat", "hnsw", "ivfsq8", "ivfpq")
# Any constants work: they only have to be the same in every process using this database.
_WRITER_LOCK = 0x7265_6462_6F6F_6B  # "redbook": one save at a time
_BUILD_LOCK = 0x7265_6462_6F6F_6C  # one build at a time (held while embedding)
_TIE_MARGIN = 8
_CHUNK_FIELDS = frozenset({"source", "section", "title", "doc_id"})


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
            reads its log: see :meth:`redbook_qa.localpg.LocalPostgres.explain_failure`).
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
        self._pool_size = pool_size
        self._diagnose = diagnose
        self._pool: ConnectionPool[Any] | None = None
        self._pool_lock = threading.Lock()
        self._seen: tuple[str, Manifest] | None = None  # (generation, its manifest)
        self._chunks_seen: tuple[str, list[Chunk]] | None = None

    @classmethod
    def open(cls, spec: str, *, schema: str = DEFAULT_SCHEMA, local_dir: Path) -> PgVectorStore:
        """Open the store named by ``REDBOOK_QA_STORE``: a URL, or ``local[:DIR]``.

        ``local`` starts (or joins) the bundled PostgreSQL on ``local_dir``; ``local:DIR`` on
        ``DIR``. Its log explains any crashed backend in the errors raised.
        """
        if spec != "local" and not spec.startswith("local:"):
            return cls(spec, schema=schema)
        from redbook_qa.localpg import LocalPostgres

        server = LocalPostgres(spec.partition(":")[2] or local_dir)
        return cls(server.start(), schema=schema, diagnose=server.explain_failure)

    # -- the VectorStore protocol: what a question reads ------------------------------------

    @property
    def manifest(self) -> Manifest:
        """The manifest of the index as stored now.

        Raises:
            IndexNotFoundError: Nothing was saved in this schema yet.
        """
        with self._snapshot() as conn:
            return self._current(conn)[1]

    @property
    def generation(self) -> str:
        """An id of the stored build, new at every save (replicas compare it per question)."""
        with self._snapshot() as conn:
            return self._current(conn)[0]

    def candidates(
        self, query: Vectors, terms: Sequence[str], *, pool: int, filters: Filters | None = None
    ) -> Candidates:
        """Nearest chunks by HNSW joined with the BM25 top-``pool``, or the filtered ones."""
        with self._snapshot() as conn:
            generation, manifest = self._current(conn)
            if filters:
                positions = self._filtered(conn, filters)
            else:
                dense = self._nearest(conn, np.asarray(query, np.float32)[0], pool)
                positions = np.union1d(dense, self._keyword_top(conn, terms, pool))
            found = self._fetch(conn, positions.astype(np.int64), terms, manifest)
        return Candidates(generation=generation, **found)

    def sentence_vectors_of(self, keys: Sequence[tuple[str, int]]) -> Vectors | None:
        """Index-time vectors of sentences named by (chunk id, start), or ``None``."""
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        with self._snapshot() as conn, conn.cursor(binary=True) as cursor:
            rows = cursor.execute(
                self._schema.sql(
                    "SELECT DISTINCT ON (k.i) k.i, s.embedding FROM unnest(%s::text[], "
                    "%s::int[]) WITH ORDINALITY AS k(chunk_id, start, i) "
                    "JOIN {s}.chunks c ON c.id = k.chunk_id JOIN {s}.sentences s "
                    "ON s.position = ANY(c.sentence_rows) AND (s.data->>'start')::int = k.start "
                    "ORDER BY k.i, s.position"
                ),
                ([c for c, _ in keys], [s for _, s in keys]),
            ).fetchall()
        if len(rows) != len(keys):
            return None
        return np.stack([row[1] for row in rows])

    def all_chunks(self) -> list[Chunk]:
        """Every chunk, in position order (read once per stored generation)."""
        with self._snapshot() as conn:
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
        schema = self._schema
        with self._connect() as conn, conn.transaction():
            # One writer at a time; readers are never blocked by it.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITER_LOCK,))
            version = schema.check(conn, writer=True)
            if version is not None and version < SCHEMA_VERSION:
                schema.migrate(conn, version)
            old = self._stored_manifest(conn) if version is not None else None
            if old is not None and old.dimension != store.manifest.dimension:
                schema.drop(conn)  # DDL is transactional: readers still see the old rows
            fresh = not schema.chunks_exist(conn)
            # On a fresh table the HNSW graph is built once after the bulk load (much faster
            # than inserting into it row by row).
            schema.create(conn, store.manifest.dimension, vector_index=not fresh)
            stored = dict(conn.execute(schema.sql("SELECT id, hash FROM {s}.chunks")).fetchall())
            if old is not None and old.embedder != store.manifest.embedder:
                stored = {}  # a chunk hash names the text, not the model: send every vector
            sent = self._upsert_chunks(conn, store, stored)
            if fresh:
                conn.execute(schema.sql(VECTOR_INDEX))
            self._replace_sentences(conn, store)
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
        self._seen = (generation, store.manifest)
        logger.info(
            "saved %d chunks (%d vectors sent), %d sentences and %d postings to PostgreSQL "
            "in %.1f s",
            len(store.chunks),
            sent,
            len(store.sentences),
            postings,
            time.perf_counter() - started,
        )

    def migrate(self) -> bool:
        """Upgrade tables written by an older redbook_qa in place; return whether it did.

        All steps run in one transaction under the writer lock: a failure leaves the tables
        as they were, and readers see the old or the new version, never a mix.

        Raises:
            IndexMismatchError: The tables were written by a newer redbook_qa.
        """
        with self._connect() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITER_LOCK,))
            version = self._schema.check(conn, writer=True)
            if version is None or version == SCHEMA_VERSION:
                return False
            self._schema.migrate(conn, version)
        self._seen = None
        return True

    @contextmanager
    def building(self) -> Iterator[None]:
        """Hold the build lock: replicas starting together build a stale index once.

        The holder re-reads the stored manifest inside, since another process may have
        saved a fresh index while this one waited.
        """
        with self._connect() as conn:
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
        found: list[list[tuple[int, float]]] = []
        with self._snapshot() as conn:
            self._current(conn)
            for vector in matrix:
                found.append(self._nearest_scored(conn, vector, k))
        width = min((len(rows) for rows in found), default=0)
        positions = np.array([[r[0] for r in rows[:width]] for rows in found], np.int64)
        scores = np.array([[r[1] for r in rows[:width]] for rows in found], np.float32)
        return positions.reshape(len(matrix), width), scores.reshape(len(matrix), width)

    def count_chunks(self) -> int:
        """Return the number of stored chunks (0 when nothing was saved yet)."""
        try:
            with self._snapshot() as conn:
                self._current(conn)
                row = conn.execute(self._schema.sql("SELECT count(*) FROM {s}.chunks")).fetchone()
        except IndexNotFoundError:
            return 0
        return int(row[0]) if row else 0

    def load(self) -> Store:
        """Read the stored index back as an in-process :class:`Store` (one snapshot).

        Used to reuse stored vectors when a build must run; questions don't need it.

        Raises:
            IndexNotFoundError: Nothing was saved in this schema yet.
            IndexMismatchError: The tables were written with another schema or format version.
        """
        with self._snapshot() as conn, conn.cursor(binary=True) as cursor:
            _, manifest = self._current(conn)
            chunk_rows = cursor.execute(
                self._schema.sql(
                    "SELECT data::text, hash, sentence_rows, embedding "
                    "FROM {s}.chunks ORDER BY position"
                )
            ).fetchall()
            sentence_rows = cursor.execute(
                self._schema.sql(
                    "SELECT data::text, hash, embedding FROM {s}.sentences ORDER BY position"
                )
            ).fetchall()
        chunks = [Chunk.model_validate_json(r[0]) for r in chunk_rows]
        chunk_vectors = _stack([r[3] for r in chunk_rows], manifest.dimension)
        kind = manifest.index.get("kind")
        return Store(
            manifest=manifest,
            chunks=chunks,
            chunk_hashes=[r[1] for r in chunk_rows],
            sentence_hashes=[r[1] for r in sentence_rows],
            sentences=[Sentence.model_validate_json(r[0]) for r in sentence_rows],
            chunk_vectors=chunk_vectors,
            sentence_vectors=_stack([r[2] for r in sentence_rows], manifest.dimension),
            chunk_sentences=[np.asarray(r[2], dtype=np.int64) for r in chunk_rows],
            index=VectorIndex.build(chunk_vectors, kind=kind if kind in _KINDS else "auto"),
            lexical=LexicalIndex.build([embedding_text(c) for c in chunks]),
        )

    def close(self) -> None:
        """Close the pooled connections (a later question opens new ones)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    # -- internals ------------------------------------------------------------------------

    @property
    def _redacted_url(self) -> str:
        return re.sub(r"://([^:@/]*):[^@/]*@", r"://\1:***@", self._url)

    def _not_found(self) -> IndexNotFoundError:
        return IndexNotFoundError(
            f"no index in schema {self._schema.name!r} of {self._redacted_url}; save one first "
            "(`REDBOOK_QA_STORE=… redbook-qa index` builds it)"
        )

    @contextmanager
    def _connect(self) -> Iterator[Conn]:
        """A new connection of its own (writers; they must not hold a reader's snapshot)."""
        psycopg = _psycopg()
        with self._explained_failures(), psycopg.connect(self._url) as conn:
            yield conn

    @contextmanager
    def _snapshot(self) -> Iterator[Conn]:
        """A pooled connection in a repeatable-read transaction: one snapshot for a question."""
        with self._explained_failures(), self._connections().connection() as conn:
            _ensure_vector_loader(conn)
            with conn.transaction():
                yield conn

    @contextmanager
    def _explained_failures(self) -> Iterator[None]:
        """Turn a dropped or refused connection into one error that says why and what to do.

        After a backend crashes, PostgreSQL restarts in recovery mode and every client only
        sees dropped or refused connections; the cause is in the server's log.
        """
        psycopg = _psycopg()
        try:
            yield
        except psycopg.OperationalError as err:
            # No SQLSTATE: the connection broke or never opened; 08…: connection exception;
            # 57P0…: the server shut down, crashed, or is still recovering.
            state = err.sqlstate or ""
            if state and not state.startswith(("08", "57P")):
                raise
            why = self._diagnose() if self._diagnose is not None else None
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise StoreUnavailableError(
                f"PostgreSQL at {self._redacted_url} failed: {reason}. "
                + (
                    why
                    or "If the server is yours, its log says why (a crashed backend "
                    "shows as 'terminated by signal'); check it, then retry"
                )
            ) from err

    def _connections(self) -> ConnectionPool[Any]:
        with self._pool_lock:
            if self._pool is None:
                psycopg = _psycopg()
                try:
                    from psycopg_pool import ConnectionPool
                except ImportError as err:
                    raise ImportError(
                        'the PostgreSQL store needs psycopg-pool: pip install "redbook_qa[pg]"'
                    ) from err

                def configure(conn: Conn) -> None:
                    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ

                self._pool = ConnectionPool(
                    self._url,
                    min_size=1,
                    max_size=self._pool_size,
                    configure=configure,
                    open=True,
                    name=f"redbook_qa-{self._schema.name}",
                )
            return self._pool

    def _current(self, conn: Conn) -> tuple[str, Manifest]:
        """The stored generation and manifest, re-read only when the generation changed."""
        psycopg = _psycopg()
        try:
            rows: dict[str, str] = dict(
                conn.execute(
                    self._schema.sql(
                        "SELECT key, value::text FROM {s}.meta "
                        "WHERE key IN ('generation', 'schema_version')"
                    )
                ).fetchall()
            )
        except psycopg.errors.UndefinedTable:
            raise self._not_found() from None
        if "schema_version" in rows and int(json.loads(rows["schema_version"])) != SCHEMA_VERSION:
            self._schema.check(conn, writer=False)  # raises, saying what to do
        if "generation" not in rows:
            raise self._not_found()
        generation = str(json.loads(rows["generation"]))
        seen = self._seen
        if seen is not None and seen[0] == generation:
            return seen
        manifest = self._stored_manifest(conn)
        if manifest is None:
            raise self._not_found()
        self._seen = (generation, manifest)
        return self._seen

    def _stored_manifest(self, conn: Conn) -> Manifest | None:
        value = self._schema.meta(conn).get("manifest")
        if value is None:
            return None
        manifest = Manifest.model_validate_json(value)
        if manifest.format_version != FORMAT_VERSION:
            raise IndexMismatchError(
                f"schema {self._schema.name!r} holds format version {manifest.format_version}, "
                f"this redbook_qa reads {FORMAT_VERSION}; run `redbook-qa index` to save it again"
            )
        return manifest

    def _nearest_scored(self, conn: Conn, vector: Vectors, k: int) -> list[tuple[int, float]]:
        fetch = k + _TIE_MARGIN
        conn.execute(
            self._schema.sql("SET LOCAL hnsw.ef_search = {n}", n=max(self._ef_search, fetch))
        )
        literal = vector_literal(vector.tolist())
        rows = conn.execute(
            self._schema.sql(
                "SELECT position, -(embedding <#> %s::vector) FROM {s}.chunks "
                "ORDER BY embedding <#> %s::vector LIMIT %s"
            ),
            (literal, literal, fetch),
        ).fetchall()
        return sorted(((int(p), float(s)) for p, s in rows), key=lambda r: (-r[1], r[0]))[:k]

    def _nearest(self, conn: Conn, vector: Vectors, pool: int) -> npt.NDArray[np.int64]:
        return np.array([p for p, _ in self._nearest_scored(conn, vector, pool)], np.int64)

    def _keyword_top(self, conn: Conn, terms: Sequence[str], pool: int) -> npt.NDArray[np.int64]:
        if not terms:
            return np.zeros(0, dtype=np.int64)
        rows = conn.execute(
            self._schema.sql(
                "SELECT p.position FROM {s}.postings p JOIN unnest(%s::text[]) AS q(term) "
                "ON p.term = q.term GROUP BY p.position HAVING sum(p.score) > 0 "
                "ORDER BY sum(p.score) DESC, p.position LIMIT %s"
            ),
            (list(terms), pool),
        ).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def _filtered(self, conn: Conn, filters: Filters) -> npt.NDArray[np.int64]:
        from psycopg import sql

        conditions = []
        params: list[list[str]] = []
        for name, wanted in filters.items():
            values = [wanted] if isinstance(wanted, str) else [str(v) for v in wanted]
            path = (
                sql.SQL("data->>{}").format(sql.Literal(name))
                if name in _CHUNK_FIELDS
                else sql.SQL("data->'metadata'->>{}").format(sql.Literal(name))
            )
            conditions.append(sql.SQL("{} = ANY(%s)").format(path))
            params.append(values)
        query = sql.SQL("SELECT position FROM {} WHERE {} ORDER BY position").format(
            sql.Identifier(self._schema.name, "chunks"), sql.SQL(" AND ").join(conditions)
        )
        return np.array([r[0] for r in conn.execute(query, params).fetchall()], dtype=np.int64)

    def _fetch(
        self,
        conn: Conn,
        positions: npt.NDArray[np.int64],
        terms: Sequence[str],
        manifest: Manifest,
    ) -> dict[str, Any]:
        """Everything scoring needs of the candidate chunks, in four statements."""
        schema = self._schema
        wanted = positions.tolist()
        distinct = sorted(set(terms))
        with conn.cursor(binary=True) as cursor:
            chunk_rows = cursor.execute(
                schema.sql(
                    "SELECT data::text, embedding, sentence_rows FROM {s}.chunks "
                    "WHERE position = ANY(%s) ORDER BY position"
                ),
                (wanted,),
            ).fetchall()
            members = sorted({int(r) for row in chunk_rows for r in row[2]})
            sentence_rows = cursor.execute(
                schema.sql(
                    "SELECT position, data::text, embedding FROM {s}.sentences "
                    "WHERE position = ANY(%s)"
                ),
                (members,),
            ).fetchall()
            postings = cursor.execute(
                schema.sql(
                    "SELECT term, position, score FROM {s}.postings "
                    "WHERE term = ANY(%s) AND position = ANY(%s)"
                ),
                (distinct, wanted),
            ).fetchall()
            df: dict[str, int] = dict(
                cursor.execute(
                    schema.sql("SELECT term, df FROM {s}.terms WHERE term = ANY(%s)"),
                    (distinct,),
                ).fetchall()
            )
        return {
            "chunks": [Chunk.model_validate_json(r[0]) for r in chunk_rows],
            "vectors": _stack([r[1] for r in chunk_rows], manifest.dimension),
            "bm25": _bm25(positions, terms, postings),
            "sentence_rows": [np.asarray(r[2], dtype=np.int64) for r in chunk_rows],
            "sentences": {int(r[0]): Sentence.model_validate_json(r[1]) for r in sentence_rows},
            "sentence_vectors": {int(r[0]): r[2] for r in sentence_rows},
            "idf": {t: bm25_idf(int(df.get(t, 0)), manifest.n_chunks) for t in terms},
        }

    def _upsert_chunks(self, conn: Conn, store: Store, stored: dict[str, str]) -> int:
        """Stage every chunk, vectors only where the hash changed; return vectors sent."""
        schema = self._schema
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
                "DELETE FROM {s}.chunks c WHERE NOT EXISTS "
                "(SELECT 1 FROM staged s WHERE s.id = c.id)"
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

    def _replace_sentences(self, conn: Conn, store: Store) -> None:
        schema = self._schema
        conn.execute(schema.sql("DELETE FROM {s}.sentences"))
        with conn.cursor().copy(schema.sql("COPY {s}.sentences FROM STDIN")) as copy:
            for position, (sentence, digest) in enumerate(
                zip(store.sentences, store.sentence_hashes, strict=True)
            ):
                vector = vector_literal(store.sentence_vectors[position].tolist())
                copy.write_row((position, digest, sentence.model_dump_json(), vector))


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as err:
        raise ImportError(
            'the PostgreSQL store needs psycopg: pip install "redbook_qa[pg]"'
        ) from err
    return psycopg


def _ensure_vector_loader(conn: Conn) -> None:
    """Read pgvector values in binary straight into float32 arrays (no text parsing)."""
    if conn.adapters.types.get("vector") is not None:
        return
    from psycopg.adapt import Loader
    from psycopg.pq import Format
    from psycopg.types import TypeInfo

    info = TypeInfo.fetch(conn, "vector")
    conn.rollback()  # the lookup opened a transaction; the caller starts its own
    if info is None:
        return  # no pgvector yet: nothing was saved, and _current says so

    class VectorLoader(Loader):
        format = Format.BINARY

        def load(self, data: Any) -> npt.NDArray[np.float32]:
            # pgvector's binary form: int16 dimension, int16 unused, then big-endian float4s.
            return np.frombuffer(bytes(data), dtype=">f4", offset=4).astype(np.float32)

    info.register(conn)
    conn.adapters.register_loader(info.oid, VectorLoader)


def _stack(vectors: Sequence[npt.NDArray[np.float32]], dimension: int) -> Vectors:
    if not vectors:
        return np.zeros((0, dimension), dtype=np.float32)
    return np.stack(vectors).astype(np.float32, copy=False)


def _bm25(
    positions: npt.NDArray[np.int64], terms: Sequence[str], postings: Sequence[Any]
) -> npt.NDArray[np.float32]:
    """Sum stored term scores per candidate in query-term order, in float32 as ``bm25s`` does."""
    index = {int(p): i for i, p in enumerate(positions.tolist())}
    by_term: dict[str, tuple[list[int], list[float]]] = {}
    for term, position, score in postings:
        rows, scores = by_term.setdefault(term, ([], []))
        rows.append(index[int(position)])
        scores.append(float(score))
    out = np.zeros(len(positions), dtype=np.float32)
    for term in terms:
        if term in by_term:
            rows, scores = by_term[term]
            out[rows] += np.asarray(scores, dtype=np.float32)
    return out
