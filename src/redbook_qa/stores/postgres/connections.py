"""Connections to an index's PostgreSQL: pooled snapshots for questions, one-offs for writers.

Every failure of the server to answer (a dropped connection, recovery mode after a crashed
backend, a refused connection) comes out as one :class:`StoreUnavailableError` that says why,
when it can be known (a local server reads its log), and what to do.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from redbook_qa.errors import StoreUnavailableError
from redbook_qa.stores.postgres.wire import register_vector

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

    from redbook_qa.stores.postgres.schema import Conn


class Connections:
    """The connections of one store: a pool for readers, new ones for writers.

    Args:
        url: The libpq URL.
        name: Names the pool (one per schema), for the server's activity views.
        pool_size: Connections kept open for questions (one per concurrent question).
        diagnose: Called when the server drops a connection, to say why.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str,
        pool_size: int,
        diagnose: Callable[[], str | None] | None = None,
    ) -> None:
        self.url = url
        self._name = name
        self._pool_size = pool_size
        self._diagnose = diagnose
        self._pool: ConnectionPool[Any] | None = None
        self._lock = threading.Lock()

    @property
    def redacted_url(self) -> str:
        """The URL with its password starred out, for messages."""
        return re.sub(r"://([^:@/]*):[^@/]*@", r"://\1:***@", self.url)

    @contextmanager
    def connect(self) -> Iterator[Conn]:
        """A new connection of its own (writers; they must not hold a reader's snapshot)."""
        psycopg = psycopg_module()
        with self._explained_failures(), psycopg.connect(self.url) as conn:
            yield conn

    @contextmanager
    def snapshot(self) -> Iterator[Conn]:
        """A pooled connection in a repeatable-read transaction: one snapshot for a question.

        The connection is in pipeline mode: statements go out without waiting, and the
        first read sends everything queued in one round trip (see
        :meth:`~redbook_qa.stores.postgres.PgVectorStore.candidates`).
        """
        with self.pipelined() as conn, conn.transaction():
            yield conn

    @contextmanager
    def pipelined(self) -> Iterator[Conn]:
        """A pooled connection in pipeline mode; the caller opens its transaction in it."""
        with self._explained_failures(), self._connections().connection() as conn:
            _ensure_vector_types(conn)
            with conn.pipeline():
                yield conn

    @contextmanager
    def statement(self) -> Iterator[Conn]:
        """A pooled connection in autocommit, for reads of one statement (its own snapshot).

        One round trip where a snapshot costs two (BEGIN with the query, then COMMIT): the
        retriever reads the manifest once per question, before the search.
        """
        with self._explained_failures(), self._connections().connection() as conn:
            _ensure_vector_types(conn)
            conn.autocommit = True
            try:
                yield conn
            finally:
                conn.autocommit = False

    def close(self) -> None:
        """Close the pooled connections (a later question opens new ones)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    @contextmanager
    def _explained_failures(self) -> Iterator[None]:
        """Turn a dropped or refused connection into one error that says why and what to do.

        After a backend crashes, PostgreSQL restarts in recovery mode and every client only
        sees dropped or refused connections; the cause is in the server's log.
        """
        psycopg = psycopg_module()
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
                f"PostgreSQL at {self.redacted_url} failed: {reason}. "
                + (
                    why
                    or "If the server is yours, its log says why (a crashed backend "
                    "shows as 'terminated by signal'); check it, then retry"
                )
            ) from err

    def _connections(self) -> ConnectionPool[Any]:
        with self._lock:
            if self._pool is None:
                psycopg = psycopg_module()
                try:
                    from psycopg_pool import ConnectionPool
                except ImportError as err:
                    raise ImportError(
                        'the PostgreSQL store needs psycopg-pool: pip install "redbook_qa[pg]"'
                    ) from err

                def configure(conn: Conn) -> None:
                    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ

                self._pool = ConnectionPool(
                    self.url,
                    min_size=1,
                    max_size=self._pool_size,
                    configure=configure,
                    open=True,
                    name=self._name,
                )
            return self._pool


def psycopg_module() -> Any:
    """Import psycopg, saying how to install it when it is missing."""
    try:
        import psycopg
    except ImportError as err:
        raise ImportError(
            'the PostgreSQL store needs psycopg: pip install "redbook_qa[pg]"'
        ) from err
    return psycopg


def _ensure_vector_types(conn: Conn) -> None:
    """Send and read vectors in binary (:mod:`.wire`), looked up once per pooled connection."""
    if conn.adapters.types.get("vector") is not None:
        return
    register_vector(conn)  # False with no pgvector yet: nothing was saved, _current says so
    conn.rollback()  # the lookup opened a transaction; the caller starts its own
