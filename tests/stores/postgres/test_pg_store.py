from __future__ import annotations

import json
import queue
import threading

import numpy as np
import pytest

from redbook_qa.errors import IndexNotFoundError
from redbook_qa.stores.faiss_index import VectorIndex

from conftest import PATIENCE, ROOT, SEEDS, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def pg_store(pg_url, local_pg, request):
    """A PgVectorStore in a fresh schema named after the test."""
    from redbook_qa.stores.postgres.store import PgVectorStore

    schema = request.node.name.lower().replace("[", "_").replace("]", "")[:50]
    store = PgVectorStore(pg_url, schema=schema, diagnose=local_pg.explain_failure)
    yield store
    store.close()


@pytest.fixture
def closing():
    """Close, after the test, every PostgreSQL store handed to it (their connection pools)."""
    stores = []
    yield stores.append
    for store in stores:
        store.close()


@pytest.fixture(scope="module")
def smaller_store(seeds_qa, embedder):
    """The seeds store rebuilt without its first document (vectors reused, nothing embedded)."""
    from redbook_qa.stores.building import build_store
    from redbook_qa.text.corpus import load_corpus
    from redbook_qa.text.tokens import TiktokenCounter

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
def test_pgvector_top10_equals_exact_faiss_search(closing, plan, pg_url, seeds_qa, embedder):
    from redbook_qa.stores.postgres.store import PgVectorStore

    store = seeds_qa.store
    # On 32 rows the planner prefers an exact scan; "hnsw" forbids it so the index is used.
    url = pg_url + ("&options=-c%20enable_seqscan%3Doff" if plan == "hnsw" else "")
    pg_store = PgVectorStore(url, schema=f"top10_{plan}")
    closing(pg_store)
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


def _saves_step_by_step(monkeypatch, pg_store, stores):
    """Save ``stores`` in turn from a thread, pausing at each step until the loop body has run.

    Yields ``("written", store)`` once every row of a save is written but not committed, and
    ``("committed", store)`` once it is: the test reads at those points, whatever the speed of
    the machine, instead of hoping that a busy loop overlaps the writes.
    """
    from redbook_qa.stores.postgres import store as pg_module

    steps: queue.Queue[str] = queue.Queue()
    go: queue.Queue[None] = queue.Queue()
    real = pg_module.write_store

    def paused(*args):
        written = real(*args)
        steps.put("written")
        go.get(timeout=PATIENCE)
        return written

    monkeypatch.setattr(pg_module, "write_store", paused)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for store in stores:
                pg_store.save(store)
                steps.put("committed")
                go.get(timeout=PATIENCE)
        except BaseException as err:
            errors.append(err)
            steps.put(f"failed: {err!r}")

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    for i, store in enumerate(stores):
        for expected in ("written", "committed"):
            step = steps.get(timeout=PATIENCE)
            assert step == expected, f"waited for save {i} to be {expected}; saw {step}"
            yield step, store
            go.put(None)
    writer.join(PATIENCE)
    assert not errors


@pytest.mark.faults
def test_reader_sees_the_old_or_the_new_corpus_never_a_mix(
    pg_store, pg_url, seeds_qa, smaller_store, monkeypatch
):
    import psycopg

    big, small = seeds_qa.store, smaller_store
    pg_store.save(big)
    schema = pg_store._schema.name
    live = big
    with psycopg.connect(pg_url, autocommit=True) as reader:
        for step, store in _saves_step_by_step(monkeypatch, pg_store, [small, big, small]):
            with reader.transaction():
                reader.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                count = reader.execute(f"SELECT count(*) FROM {schema}.chunks").fetchone()[0]
                manifest = reader.execute(
                    f"SELECT value->>'n_chunks' FROM {schema}.meta WHERE key = 'manifest'"
                ).fetchone()[0]
            live = store if step == "committed" else live
            assert (count, int(manifest)) == (len(live.chunks),) * 2, (
                f"with a save {step}, expected the {len(live.chunks)} chunks of the live corpus; "
                f"saw {count} chunks and a manifest of {manifest}"
            )
    assert pg_store.count_chunks() == len(small.chunks)


def test_the_seeds_eval_gives_the_same_figures_on_both_stores(closing, pg_url, seeds_qa, embedder):
    from redbook_qa.api import RedbookQA
    from redbook_qa.evaluation.cases import load_cases
    from redbook_qa.evaluation.evals import run_evals

    corpus = seeds_qa.settings.corpus_dir
    settings = seeds_qa.settings.model_copy(update={"store": pg_url})
    built = RedbookQA.from_dir(corpus, settings=settings, embedder=embedder)  # builds, saves
    closing(built.store)
    shared = RedbookQA.from_dir(corpus, settings=settings, embedder=embedder)  # loads it back
    closing(shared.store)
    assert shared.store.manifest == built.store.manifest
    cases = load_cases(ROOT / "evals" / "questions.jsonl")
    on_faiss = run_evals(seeds_qa, cases, corpus).summary
    on_postgres = run_evals(shared, cases, corpus).summary
    for name in ("hit@5", "mrr@10", "keyword_accuracy", "abstention_recall", "citation_precision"):
        assert on_postgres[name] == on_faiss[name], name


def _same_candidates(got, want) -> None:
    assert [c.id for c in got.chunks] == [c.id for c in want.chunks]
    np.testing.assert_array_equal(got.vectors, want.vectors)
    np.testing.assert_allclose(got.bm25, want.bm25, rtol=1e-6)
    for a, b in zip(got.sentence_rows, want.sentence_rows, strict=True):
        np.testing.assert_array_equal(a, b)
    assert got.sentences == want.sentences
    for row, vector in want.sentence_vectors.items():
        np.testing.assert_array_equal(got.sentence_vectors[row], vector)
    assert got.idf == pytest.approx(want.idf)


def test_candidates_from_postgres_equal_the_in_process_ones(pg_store, seeds_qa, embedder):
    from redbook_qa.text.terms import analyze

    store = seeds_qa.store
    pg_store.save(store)
    for question in [*_questions(12), "小红书 why", "zzzz unknownword"]:
        query = embedder.embed_query(question)
        terms = analyze(question) + analyze(question)[:1]  # a repeated term counts twice
        _same_candidates(
            pg_store.candidates(query, terms, pool=32), store.candidates(query, terms, pool=32)
        )
    source = store.chunks[-1].source
    for filters in ({"source": source}, {"source": [source, "nope.txt"], "title": "x"}):
        _same_candidates(
            pg_store.candidates(query, terms, pool=32, filters=filters),
            store.candidates(query, terms, pool=32, filters=filters),
        )


def test_chunks_and_a_whole_snapshot_are_read_from_postgres(pg_store, seeds_qa):
    store = seeds_qa.store
    pg_store.save(store)
    assert pg_store.all_chunks() == store.chunks
    assert pg_store.kind == "postgresql"
    snapshot = pg_store.snapshot()
    assert snapshot.kind == "process"
    np.testing.assert_array_equal(snapshot.sentence_vectors, store.sentence_vectors)


def test_a_replica_answers_from_a_rebuild_saved_by_another(
    closing, pg_url, seeds_qa, embedder, tmp_path
):
    """Two app instances over one PostgreSQL: neither keeps its own copy of the index."""
    import shutil

    from redbook_qa.api import RedbookQA

    corpus = tmp_path / "articles"
    shutil.copytree(seeds_qa.settings.corpus_dir, corpus)
    settings = seeds_qa.settings.model_copy(
        update={"store": pg_url, "store_schema": "replica_rebuild"}
    )
    first = RedbookQA.from_dir(corpus, settings=settings, embedder=embedder)
    closing(first.store)
    second = RedbookQA.from_dir(corpus, settings=settings, embedder=embedder)
    closing(second.store)
    question = "What colour is the Zorblat lighthouse?"
    assert second.ask(question).abstained
    (corpus / "zorblat.txt").write_text(
        "The Zorblat lighthouse\n\nThe Zorblat lighthouse on Pemberly Point is painted "
        "bright violet, so that fishing boats can see it through the winter fog.\n",
        encoding="utf-8",
    )
    change = first.refresh()
    assert change.added == ("zorblat.txt",)
    answer = second.ask(question)  # second never refreshed: it reads what first saved
    assert not answer.abstained
    assert {c.source for c in answer.citations} == {"zorblat.txt"}
    assert "violet" in answer.text
    assert "zorblat.txt" in {row[1] for row in _article_rows(second)}
    assert not second.refresh()  # the folder and the shared index already agree


def _waiting_on_advisory_locks(conn) -> int:
    return conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    ).fetchone()[0]


def _article_rows(qa):
    from redbook_qa.serving.render import article_rows

    return article_rows(qa.store.all_chunks())


@pytest.mark.faults
def test_replicas_starting_together_build_a_stale_index_once(closing, pg_url, seeds_qa, embedder):
    from redbook_qa.api import RedbookQA
    from redbook_qa.text.corpus import load_corpus

    embedded_by: list[int] = []

    class Counting:
        """The real model, noting which replica embeds."""

        def __getattr__(self, name):
            return getattr(embedder, name)

        def embed_documents(self, texts, *, show_progress=False):
            embedded_by.append(id(self))
            return embedder.embed_documents(texts, show_progress=show_progress)

        def embed_spans(self, tokenized, spans, *, show_progress=False):
            embedded_by.append(id(self))
            return embedder.embed_spans(tokenized, spans, show_progress=show_progress)

    settings = seeds_qa.settings.model_copy(
        update={"store": pg_url, "store_schema": "replicas_start"}
    )

    documents = load_corpus(seeds_qa.settings.corpus_dir)[:2]
    replicas = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            replicas.append(
                RedbookQA.from_documents(documents, settings=settings, embedder=Counting())
            )
        except BaseException as err:
            errors.append(err)

    import psycopg

    from redbook_qa.stores.postgres.store import _BUILD_LOCK

    threads = [threading.Thread(target=start) for _ in range(3)]
    with psycopg.connect(pg_url, autocommit=True) as holder:
        # Hold the build lock until all three replicas wait on it: they start together on
        # every machine, not only when threads happen to overlap.
        holder.execute("SELECT pg_advisory_lock(%s)", (_BUILD_LOCK,))
        for thread in threads:
            thread.start()
        wait_for(
            "three replicas to wait on the build lock",
            lambda: errors or _waiting_on_advisory_locks(holder),
            lambda seen: seen == 3 or bool(errors),  # a replica that failed ends the wait
        )
        holder.execute("SELECT pg_advisory_unlock(%s)", (_BUILD_LOCK,))
    for thread in threads:
        thread.join(PATIENCE)
    for qa in replicas:
        closing(qa.store)
    assert not errors
    assert len(replicas) == 3
    built = {qa.store.manifest.corpus_fingerprint for qa in replicas}
    assert len(built) == 1
    # One replica embedded the chunks and sentences; the others waited and found it fresh.
    assert len(embedded_by) == 2
    assert len(set(embedded_by)) == 1


def test_version_1_tables_are_migrated_in_place_keeping_every_vector(
    closing, pg_store, seeds_qa, pg_url
):
    import psycopg

    from redbook_qa.errors import IndexMismatchError

    store = seeds_qa.store
    pg_store.save(store)
    schema = pg_store._schema.name
    with psycopg.connect(pg_url) as conn:  # what redbook_qa 0.1 with table version 1 wrote
        conn.execute(f"DROP TABLE {schema}.postings, {schema}.terms")
        conn.execute(f"DELETE FROM {schema}.meta WHERE key = 'generation'")
        conn.execute(f"UPDATE {schema}.meta SET value = '1' WHERE key = 'schema_version'")
        conn.execute(f"UPDATE {schema}.meta SET value = value - 'cjk' WHERE key = 'manifest'")
    from redbook_qa.stores.postgres.store import PgVectorStore

    reader = PgVectorStore(pg_url, schema=schema)
    closing(reader)
    with pytest.raises(IndexMismatchError, match="run `redbook-qa index` once"):
        reader.candidates(np.zeros((1, 384), np.float32), ["labubu"], pool=8)
    assert reader.migrate()
    assert not reader.migrate()  # already current
    assert reader.manifest.cjk is False
    query = np.asarray(store.chunk_vectors[3:4])
    _same_candidates(
        reader.candidates(query, ["labubu", "pop", "mart"], pool=16),
        store.candidates(query, ["labubu", "pop", "mart"], pool=16),
    )
    np.testing.assert_array_equal(reader.load().chunk_vectors, store.chunk_vectors)


def test_tables_of_a_newer_version_are_refused_and_left_alone(pg_store, seeds_qa, pg_url):
    import psycopg

    from redbook_qa.errors import IndexMismatchError

    pg_store.save(seeds_qa.store)
    schema = pg_store._schema.name
    with psycopg.connect(pg_url) as conn:
        conn.execute(f"UPDATE {schema}.meta SET value = '99' WHERE key = 'schema_version'")
    for attempt in (pg_store.migrate, lambda: pg_store.save(seeds_qa.store), pg_store.load):
        with pytest.raises(IndexMismatchError, match="newer than this redbook_qa"):
            attempt()
    with psycopg.connect(pg_url) as conn:
        count = conn.execute(f"SELECT count(*) FROM {schema}.chunks").fetchone()[0]
    assert count == len(seeds_qa.store.chunks)


@pytest.mark.faults
def test_questions_during_saves_read_one_whole_generation(
    closing, pg_store, seeds_qa, smaller_store, monkeypatch
):
    """Each question's candidates come from one saved corpus, never a mix of two."""
    from redbook_qa.stores.postgres.store import PgVectorStore

    big, small = seeds_qa.store, smaller_store
    pg_store.save(big)
    reader = PgVectorStore(pg_store._url, schema=pg_store._schema.name)
    closing(reader)
    query = np.asarray(big.chunk_vectors[-1:])  # a chunk of the article the small one lacks
    removed = {c.id for c in big.chunks} - {c.id for c in small.chunks}
    live, generation = big, pg_store.generation
    for step, store in _saves_step_by_step(monkeypatch, pg_store, [small, big, small]):
        if step == "committed":
            live, generation = store, pg_store._seen[0]
        found = reader.candidates(query, ["labubu", "tiktok"], pool=40)
        ids = {c.id for c in found.chunks}
        assert found.generation == generation, f"with a save {step}: another generation"
        assert ids <= {c.id for c in live.chunks}, (
            f"with a save {step}: candidates from outside the live corpus: "
            f"{sorted(ids - {c.id for c in live.chunks})}"
        )
        state = "missing" if live is big else "found"
        assert bool(ids & removed) == (live is big), (
            f"with a save {step}: the removed article's chunks {state}"
        )


def test_an_unchanged_save_writes_no_row(pg_store, seeds_qa, pg_url, monkeypatch):
    import psycopg

    from redbook_qa.stores.postgres import writing

    pg_store.save(seeds_qa.store)
    schema = pg_store._schema.name
    counts = {}
    real = writing.write_keywords

    def counting(conn, *args):
        written = real(conn, *args)
        counts["rows"] = conn.execute(
            "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) "
            "FROM pg_stat_xact_user_tables WHERE schemaname = %s",
            (schema,),
        ).fetchone()[0]
        return written

    monkeypatch.setattr(writing, "write_keywords", counting)
    pg_store.save(seeds_qa.store)
    assert counts["rows"] == 0  # chunks, sentences and BM25 tables untouched
    with psycopg.connect(pg_url) as conn:
        missing = f"SELECT count(*) FROM {schema}.chunks WHERE digest IS NULL"
        assert conn.execute(missing).fetchone()[0] == 0


def test_bm25_stays_equal_to_in_process_across_partial_saves(
    pg_store, seeds_qa, smaller_store, embedder
):
    from redbook_qa.text.terms import analyze

    for store in (seeds_qa.store, smaller_store, seeds_qa.store):
        pg_store.save(store)
        for question in [*_questions(8), "labubu pop mart"]:
            query = embedder.embed_query(question)
            terms = analyze(question)
            _same_candidates(
                pg_store.candidates(query, terms, pool=8), store.candidates(query, terms, pool=8)
            )


def test_version_2_tables_are_migrated_in_place_keeping_every_vector(
    closing, pg_store, seeds_qa, pg_url
):
    import psycopg

    store = seeds_qa.store
    pg_store.save(store)
    schema = pg_store._schema.name
    with psycopg.connect(pg_url) as conn:  # what redbook_qa with table version 2 wrote
        conn.execute(f"DROP TABLE {schema}.postings, {schema}.terms, {schema}.lengths")
        conn.execute(f"CREATE TABLE {schema}.terms (term text PRIMARY KEY, df integer NOT NULL)")
        conn.execute(
            f"CREATE TABLE {schema}.postings (term text NOT NULL, position integer NOT NULL, "
            "score real NOT NULL, PRIMARY KEY (term, position))"
        )
        conn.execute(f"ALTER TABLE {schema}.chunks DROP COLUMN digest")
        conn.execute(f"ALTER TABLE {schema}.sentences DROP COLUMN digest")
        conn.execute(f"DELETE FROM {schema}.meta WHERE key = 'bm25'")
        conn.execute(f"UPDATE {schema}.meta SET value = '2' WHERE key = 'schema_version'")
    from redbook_qa.stores.postgres.store import PgVectorStore

    reader = PgVectorStore(pg_url, schema=schema)
    closing(reader)
    assert reader.migrate()
    query = np.asarray(store.chunk_vectors[3:4])
    _same_candidates(
        reader.candidates(query, ["labubu", "pop", "mart"], pool=16),
        store.candidates(query, ["labubu", "pop", "mart"], pool=16),
    )
    np.testing.assert_array_equal(reader.load().chunk_vectors, store.chunk_vectors)
    np.testing.assert_array_equal(reader.load().sentence_vectors, store.sentence_vectors)
    reader.save(store)  # the first save after it records every row's digest
    with psycopg.connect(pg_url) as conn:
        missing = f"SELECT count(*) FROM {schema}.chunks WHERE digest IS NULL"
        assert conn.execute(missing).fetchone()[0] == 0
    np.testing.assert_array_equal(reader.load().chunk_vectors, store.chunk_vectors)
